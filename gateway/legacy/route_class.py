"""Custom `APIRoute` classes whose `get_route_handler` wraps FastAPI's handler.

Apps subclass `APIRoute` to post-process every response of a router (say, `last-modified`
and `Cache-Control` from the JSON body) by wrapping `super().get_route_handler()`. Such a
class's own handler can run around the fast path's: it is built once per plan on a copy of
the route whose `super().get_route_handler()` returns the fast path's handler instead.

    handler = wrapped_handler(route, fast_handler)   # None: the class does something else
    route_class_refusal(route)                       # why not, or None
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Handler", "route_class_refusal", "wrapped_handler"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def wrapped_handler(route: APIRoute, inner: Handler) -> Handler | None:
    """The route class's handler with `inner` as what its `super()` call returns, or None
    when the class's `get_route_handler` does not build on `super().get_route_handler()`."""
    handler, called = _build(route, inner)
    return handler if called else None


def route_class_refusal(route: APIRoute) -> str | None:
    """Why the route class's own handler cannot run around the fast path's, or None."""
    cls = type(route)

    async def probe(request: Request) -> Response:  # never called: only handed over
        raise RuntimeError("the probe handler is not served")

    try:
        _, called = _build(route, probe)
    except Exception as exc:
        return (
            f"route class {cls.__name__}'s get_route_handler failed on a copy of the route "
            f"({type(exc).__name__}: {exc})"
        )
    if not called:
        return (
            f"route class {cls.__name__} overrides get_route_handler without calling "
            "super().get_route_handler()"
        )
    return None


def _build(route: APIRoute, inner: Handler) -> tuple[Any, bool]:
    calls: list[bool] = []

    class Inner(APIRoute):
        def get_route_handler(self) -> Handler:
            calls.append(True)
            return inner

    cls = type(route)
    # MRO: Shim, cls, ..., Inner, APIRoute: the class's super() call reaches Inner.
    shim_class: type[APIRoute] = type(cls.__name__, (cls, Inner), {"__module__": cls.__module__})
    shim = object.__new__(shim_class)  # no __init__: a copy of the route as it is
    shim.__dict__.update(route.__dict__)
    handler = cls.get_route_handler(shim)
    return handler, bool(calls)
