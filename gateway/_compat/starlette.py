"""Starlette internals the gateway needs, for every Starlette a supported FastAPI pins (0.27+)."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Scope

__all__ = ["get_route_path", "handling_exceptions"]

try:
    # Starlette 0.35+: the path a route matches against (scope path minus root_path).
    from starlette._utils import get_route_path
except ImportError:  # pragma: no cover - Starlette < 0.35, where Mount strips the path itself

    def get_route_path(scope: Scope) -> str:
        """The path a route matches: before 0.35, Mount already left only the rest."""
        return scope["path"]  # type: ignore[no-any-return]


_wrap_handlers: Any
try:
    # Starlette 0.28+: runs the app's exception handlers inside a route's own app, as
    # `starlette.routing.request_response` does.
    from starlette._exception_handler import wrap_app_handling_exceptions as _wrap_handlers
except ImportError:  # pragma: no cover - Starlette 0.27 (FastAPI 0.100): the middleware does it
    _wrap_handlers = None


def handling_exceptions(app: ASGIApp, connection: HTTPConnection) -> ASGIApp:
    """`app` with the app's exception handlers applied as its route's handler would have them.

    On Starlette 0.27 a route's app lets exceptions reach ExceptionMiddleware, which applies
    the same handlers one level up, so the app is returned as it is.
    """
    if _wrap_handlers is None:  # pragma: no cover - Starlette 0.27
        return app
    wrapped: ASGIApp = _wrap_handlers(app, connection)
    return wrapped
