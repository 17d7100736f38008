"""Route enumeration for FastAPI 0.137+: an included router stays one nested route.

`app.routes` holds the included router (`fastapi.routing._IncludedRouter`); its routes are
served through per-inclusion contexts (prefix, dependencies, response class merged in) that
FastAPI builds lazily. Private names used here, each needed from 0.137 on:
`_iter_routes_with_context` (the contexts in matching order), `_effective_route_context_var`
(what `APIRoute.get_route_handler` reads to build a context's handler before 0.145), and
`_IncludedRouter` (to hand one context to `get_openapi` before `RouteContext`, 0.138).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import routing as _routing
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from gateway._compat.route_view import RouteView, view_of

__all__ = ["route_views"]

# 0.138+: public wrapper of one route context, accepted by get_openapi.
_RouteContext: Any = getattr(_routing, "RouteContext", None)


def route_views(routes: Sequence[BaseRoute]) -> Iterator[RouteView | BaseRoute]:
    """Each API route as a RouteView, in matching order; other routes as served."""
    for route, context in _routing._iter_routes_with_context(routes):
        if context is None:
            if isinstance(route, APIRoute):
                yield view_of(route, route, route.app, route)
            else:
                yield route
        elif isinstance(route, APIRoute):
            yield view_of(context, route, _context_app(route, context), _openapi(route, context))
        else:
            # Mounts, websockets and plain routes: the copy carrying the include prefix.
            yield context.starlette_route or route


def _context_app(route: APIRoute, context: Any) -> ASGIApp:
    app: ASGIApp | None = getattr(context, "app", None)  # built by FastAPI since 0.145
    if app is not None:
        return app
    # 0.137-0.144 built it per request, like this, in APIRoute.handle.
    token = _routing._effective_route_context_var.set(context)
    try:
        return _routing.request_response(route.get_route_handler())
    finally:
        _routing._effective_route_context_var.reset(token)


def _openapi(route: APIRoute, context: Any) -> Any:
    if _RouteContext is not None:
        return _RouteContext(route, context)
    return _OneContext(context)  # pragma: no cover - 0.137.x


class _OneContext(_routing._IncludedRouter):
    """An included router of one route context: how 0.137's get_openapi reads a context."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def effective_route_contexts(self) -> Iterator[Any]:
        yield self._context
