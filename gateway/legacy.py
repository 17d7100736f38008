"""How legacy (`def`) routes are served.

For now: FastAPI's own handler for the route (see issue: fewer thread hand-offs).
"""

from __future__ import annotations

from fastapi.routing import RouteContext
from starlette.types import ASGIApp

__all__ = ["legacy_app_for"]


def legacy_app_for(context: RouteContext) -> ASGIApp:
    """The ASGI app that serves one legacy API route."""
    return context.app  # type: ignore[no-any-return]
