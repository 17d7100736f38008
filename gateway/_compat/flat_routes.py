"""Route enumeration for FastAPI 0.100-0.136: `include_router` copies routes into `app.routes`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from gateway._compat.route_view import RouteView, view_of

__all__ = ["route_views"]


def route_views(routes: Sequence[BaseRoute]) -> Iterator[RouteView | BaseRoute]:
    """Each API route as a RouteView, in matching order; other routes as they are."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield view_of(route, route, route.app, route)
        else:
            yield route
