"""How the gateway names things in messages, logs and tables: code as "module.qualname",
and many routes by what they share.

qualified_name(read_user)   # "legacy_routes.users.read_user"
by_reason(pairs)            # [(reason, [route keys]), ...], the most shared reason first
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["by_reason", "qualified_name"]


def qualified_name(obj: Any) -> str:
    """`module.qualname` of a function or class; a callable instance is named by its class."""
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


def by_reason(reasons: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(key, reason) pairs grouped by reason, the reason shared by most keys first.

    by_reason([("GET /a", "x"), ("GET /b", "y"), ("GET /c", "y")])
    # [("y", ["GET /b", "GET /c"]), ("x", ["GET /a"])]
    """
    grouped: dict[str, list[str]] = {}
    for key, reason in reasons:
        grouped.setdefault(reason, []).append(key)
    return sorted(grouped.items(), key=lambda item: -len(item[1]))  # stable: ties keep order
