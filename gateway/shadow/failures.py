"""What an implementation raised in shadow, kept so that a team can act on it.

    failure = Failure.of(exc, endpoint)     # in the runner's `except Exception as exc:`
    failure.type, failure.where             # "MissingGreenlet", "async_routes/users.py:42"
    failure.message                         # the whole message, without written values
    failure.raw                             # as raised (shown with GATEWAY_SHADOW_KEEP_BODIES)

A Failure is also the string "Type: first line", so code that compares errors as strings
(the runner's "did both sides raise the same kind of error") keeps working. `where` is the
last frame of the traceback in the application's own code: not the gateway's, not the
standard library's or an installed package's; when every frame is theirs (a response model
that failed validation in FastAPI's serializer), the endpoint's own `def` line.

The message is whole, but what often holds users' data is left out unless the operator keeps
bodies: the `input` of each validation error, the `DETAIL:` line of a database error (`Key
(email)=(ada@example.com) already exists.`) and a statement's bound parameters.
"""

from __future__ import annotations

import inspect
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Failure", "app_frame", "where_defined"]

_GATEWAY = str(Path(__file__).resolve().parents[1]) + os.sep
_NOT_APP = tuple(
    sorted(
        {
            str(Path(p).resolve()) + os.sep
            for name in ("stdlib", "platstdlib", "purelib", "platlib")
            if (p := sysconfig.get_paths().get(name))
        }
        | {_GATEWAY}
    )
)
HIDDEN = "(hidden: it may hold users' data; GATEWAY_SHADOW_KEEP_BODIES=true keeps it)"


class Failure(str):
    """An exception as shadow results show it: type, whole message, and where it was raised."""

    type: str
    message: str
    raw: str
    where: str | None

    def __new__(
        cls, type_: str, message: str, where: str | None = None, raw: str | None = None
    ) -> Failure:
        lines = message.strip().splitlines()
        self = super().__new__(cls, f"{type_}: {lines[0]}" if lines else type_)
        self.type, self.message, self.where = type_, message, where
        self.raw = message if raw is None else raw
        return self

    @classmethod
    def of(cls, exc: BaseException, endpoint: Callable[..., Any] | None = None) -> Failure:
        """The failure `exc` stands for; `endpoint` gives `where` when no frame is the app's."""
        where = app_frame(exc.__traceback__, _home(endpoint))
        if where is None and endpoint is not None:
            where = where_defined(endpoint)
        return cls(type(exc).__name__, _message(exc, keep=False), where, _message(exc, keep=True))

    def as_dict(self, *, keep_values: bool = False) -> dict[str, Any]:
        """{"type", "message", "where"}: the message as raised only when `keep_values`."""
        return {
            "type": self.type,
            "message": self.raw if keep_values else self.message,
            "where": self.where,
        }


def app_frame(tb: TracebackType | None, home: str | None = None) -> str | None:
    """The last frame of `tb` in the application's code as "path:line" (relative to the
    working directory when under it), or None. Files under `home` (the directory of the
    endpoint's top-level package) are the application's even when it is installed."""
    found = None
    for frame_tb in _frames(tb):
        filename = frame_tb.tb_frame.f_code.co_filename
        if _is_app(filename) or (home is not None and filename.startswith(home)):
            found = _shown(filename, frame_tb.tb_lineno)
    return found


def where_defined(func: Callable[..., Any]) -> str | None:
    """ "path:line" of `func`'s `def` (decorators unwrapped), or None for a builtin."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    return None if code is None else _shown(code.co_filename, code.co_firstlineno)


def _home(endpoint: Callable[..., Any] | None) -> str | None:
    """The directory of the package `endpoint` belongs to (its file, for a lone module)."""
    top = (getattr(endpoint, "__module__", None) or "").partition(".")[0]
    filename = getattr(sys.modules.get(top), "__file__", None)
    if not filename or top in ("", "gateway"):
        return None
    path = Path(filename)
    return str(path.parent) + os.sep if path.name == "__init__.py" else str(path)


def _frames(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _is_app(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False
    resolved = str(Path(filename).resolve())
    return not resolved.startswith(_NOT_APP) and "site-packages" not in resolved


def _shown(filename: str, line: int) -> str:
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        relative = filename
    return f"{filename if relative.startswith('..') else relative}:{line}"


def _message(exc: BaseException, *, keep: bool) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's and FastAPI's validation errors
        try:
            found = list(errors())
        except Exception:
            found = None
        if found is not None and all(isinstance(e, dict) for e in found):
            return _validation(found, keep=keep)
    if keep:
        return str(exc).strip() or type(exc).__name__
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError: the driver's own error
    if isinstance(orig, BaseException) and hasattr(exc, "statement"):
        lines = [line for line in str(orig).strip().splitlines() if line.strip()]
        kept = [HIDDEN if line.lstrip().startswith("DETAIL:") else line for line in lines]
        statement = " ".join(str(getattr(exc, "statement", "") or "").split())
        head = f"({type(orig).__module__}.{type(orig).__name__}) "
        return "\n".join([head + (kept[0] if kept else ""), *kept[1:], f"[SQL: {statement}]"])
    return str(exc).strip() or type(exc).__name__


def _validation(errors: list[dict[str, Any]], *, keep: bool) -> str:
    lines = [f"{len(errors)} validation error{'s' if len(errors) != 1 else ''}:"]
    for error in errors:
        loc = ".".join(str(part) for part in error.get("loc", ()))
        line = f"  {loc}: {error.get('msg', '?')} ({error.get('type', '?')})"
        if keep and "input" in error:
            line += f", input {error['input']!r}"[:500]
        lines.append(line)
    return "\n".join(lines)
