"""The admin JSON API, mounted under settings.admin_prefix (default /_gateway).

GET  /_gateway/routes                 every route: implementations, mode, percent
PUT  /_gateway/routes/{route_key}     change one route's mode (bearer token required)
GET  /_gateway/history                the audit history, newest first
GET  /_gateway/report                 the migration ranking (gateway.report) as JSON

    curl -X PUT -H "Authorization: Bearer $TOKEN" \\
         -d '{"mode": "canary", "percent": 10, "reason": "try async"}' \\
         http://127.0.0.1:8000/_gateway/routes/GET%20%2Fusers%2F%7Buser_id%7D
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import AdminAccess
from gateway.exceptions import FlagError, UnknownRouteError, first_line
from gateway.flag_follower import FlagFollower

__all__ = ["FlagBody", "admin_router"]

log = logging.getLogger("gateway.flags")


class FlagBody(BaseModel):
    """The body of PUT /routes/{route_key}."""

    model_config = ConfigDict(extra="forbid")

    mode: str = Field(description="legacy, async or canary")
    percent: float | None = Field(default=None, description="canary only: 0 to 100")
    reason: str = Field(default="", max_length=1000, description="why, for the history")


Describe = Callable[[], list[dict[str, Any]]]
ReportMaker = Callable[[], dict[str, Any]]


def admin_router(
    follower: FlagFollower,
    access: AdminAccess,
    describe: Describe,
    report: ReportMaker | None = None,
) -> APIRouter:
    """Routes mounted under settings.admin_prefix.

    `describe()` lists the routes, `report()` makes the migration report (None: metrics are
    off, and GET /report answers 404 saying so).
    """
    router = APIRouter(tags=["gateway admin"])
    # Dependencies as defaults: annotations are strings here and cannot name locals.
    reader = Depends(access.reader)
    writer = Depends(access.writer)

    @router.get("/routes")
    async def list_routes(_: str | None = reader) -> dict[str, Any]:
        """Every route with its implementations, mode and percent, and the store's state."""
        return {"routes": describe(), "store": follower.status()}

    @router.put("/routes/{route_key:path}")
    async def set_route(route_key: str, body: FlagBody, actor: str = writer) -> JSONResponse:
        """Change one paired route's mode; the store records it and every worker follows."""
        try:
            change = await follower.change(
                route_key, body.mode, body.percent, actor=actor, reason=body.reason
            )
        except UnknownRouteError as exc:
            return JSONResponse(
                {"detail": str(exc), "suggestions": exc.suggestions}, status_code=404
            )
        except FlagError as exc:
            return _unprocessable(exc, route_key, body)
        except Exception as exc:
            return _store_unavailable(exc)
        return JSONResponse(change.as_dict())

    @router.get("/history")
    async def history(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        route: Annotated[str | None, Query(description="only this route key")] = None,
        _: str | None = reader,
    ) -> JSONResponse:
        """The newest `limit` flag changes first."""
        try:
            rows = await follower.store.history(limit=limit, route=route)
        except Exception as exc:
            return _store_unavailable(exc)
        return JSONResponse({"history": [row.as_dict() for row in rows]})

    @router.get("/report")
    async def migration_report(_: str | None = reader) -> dict[str, Any]:
        """The migration ranking (async; never takes a worker thread)."""
        if report is None:
            raise HTTPException(
                status_code=404, detail="This app has no gateway metrics (GATEWAY_METRICS=false?)."
            )
        return report()

    return router


def _unprocessable(exc: FlagError, route_key: str, body: FlagBody) -> JSONResponse:
    # Same shape as FastAPI's own validation errors, so clients parse one format.
    loc: list[str] = ["body", exc.field]
    value: Any = getattr(body, exc.field, None)
    if exc.field == "route_key":
        loc, value = ["path", "route_key"], route_key
    error = {"loc": loc, "msg": str(exc), "type": "value_error", "input": value}
    return JSONResponse({"detail": [error]}, status_code=422)


def _store_unavailable(exc: Exception) -> JSONResponse:
    reason = first_line(exc)
    log.warning("admin request failed: flag store unreachable (%s)", reason)
    return JSONResponse(
        {
            "detail": f"The flag store is unreachable, so nothing was recorded ({reason}). "
            "Workers keep serving the last known flags; try again when the database is back."
        },
        status_code=503,
    )
