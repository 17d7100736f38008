"""FastAPI's request-body size limit (0.164+, `fastapi._body_limit`); none before."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Scope

__all__ = ["body_limit_error", "with_body_limit"]

get_body_limit_error: Any
wrap_app_with_body_limit: Any
try:
    # 0.164+: wraps a route's app with its limit; turns the read error into FastAPI's 413.
    from fastapi._body_limit import get_body_limit_error, wrap_app_with_body_limit
    from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
except ImportError:  # pragma: no cover - FastAPI < 0.164 has no body limit
    get_body_limit_error = wrap_app_with_body_limit = None
    MAX_BODY_SIZE_SCOPE_KEY = ""


def with_body_limit(app: ASGIApp, max_body_size: int | None) -> ASGIApp:
    """`app` reading at most `max_body_size` bytes of body, as the route's own app would."""
    if wrap_app_with_body_limit is None:  # pragma: no cover - FastAPI < 0.164
        return app
    wrapped: ASGIApp = wrap_app_with_body_limit(app, max_body_size)
    return wrapped


def body_limit_error(exc: Exception, scope: Scope) -> Any:
    """FastAPI's HTTPException for a body read that hit the limit, else None."""
    if get_body_limit_error is None or MAX_BODY_SIZE_SCOPE_KEY not in scope:
        return None
    return get_body_limit_error(exc)
