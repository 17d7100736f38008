"""How the gateway names code in messages, logs and tables: "module.qualname".

qualified_name(read_user)   # "legacy_routes.users.read_user"
"""

from __future__ import annotations

from typing import Any

__all__ = ["qualified_name"]


def qualified_name(obj: Any) -> str:
    """`module.qualname` of a function or class; a callable instance is named by its class."""
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"
