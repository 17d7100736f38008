"""Routes that will block the event loop, found before any traffic: an `async def` endpoint or
dependency that takes a sync SQLAlchemy `Session`.

    sync_session_takers(view.dependant)   # ["tracker.api.stats"]: async def, db: Session

FastAPI runs an `async def` on the event loop, so every query its sync session makes stalls
every other request of the worker while it waits for the database. The tree is read from
FastAPI's `Dependant` (the endpoint and every dependency under it); a callable is flagged
when a parameter it gets from a dependency is annotated as a sync `Session` (or that
dependency is annotated to return or yield one).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from sqlalchemy.orm import Session

from gateway.naming import qualified_name

__all__ = ["sync_session_takers"]


def sync_session_takers(dependant: Dependant) -> list[str]:
    """`module.qualname` of each `async def` in the tree that takes a sync Session, once."""
    found: list[str] = []
    for node in _walk(dependant):
        call = node.call
        if call is None or not _is_async(call):
            continue
        hints = _hints(call)
        for sub in node.dependencies:
            if _is_sync_session(hints.get(sub.name or "")) or _returns_session(sub.call):
                name = qualified_name(call)
                if name not in found:
                    found.append(name)
                break
    return found


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _unwrap(call: Callable[..., Any]) -> Any:
    while hasattr(call, "func"):  # functools.partial
        call = call.func
    return call


def _is_async(call: Callable[..., Any]) -> bool:
    call = _unwrap(call)
    if inspect.isfunction(call) or inspect.ismethod(call):
        return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)
    method = getattr(call, "__call__", None)  # noqa: B004 - a callable instance
    return inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)


def _hints(call: Any) -> dict[str, Any]:
    call = _unwrap(call)
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
    try:
        return typing.get_type_hints(target)
    except Exception:  # an unresolvable forward reference: the plain annotations
        return dict(getattr(target, "__annotations__", {}))


def _is_sync_session(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Session)


def _returns_session(call: Callable[..., Any] | None) -> bool:
    if call is None:
        return False
    returned = _hints(call).get("return")
    if _is_sync_session(returned):
        return True
    # Generator[Session, None, None], Iterator[Session], ...: what a `get_db` yields.
    args = typing.get_args(returned)
    return bool(args) and _is_sync_session(args[0])
