"""Cases gateway_legacy and gateway_async: the same route, paired, behind gateway.Gateway.

The legacy side is bare_def's app object itself, mounted unchanged with
`include_legacy(app)`: its own engine, its own `get_db`, its response_model and its
lifespan, exactly what the bare_def case serves. The async side is bare_async's route on
the gateway's `get_async_session`. The mode comes from GATEWAY_DEFAULT_MODE (legacy or
async) and is set again through the Python API after build. Settings are the gateway's own
GATEWAY_*, which bare_def reads too, so both sides get the same pool and threadpool sizes.

`create_blocking_app` serves bare_async_sync's route (an `async def` using the sync
engine) as the async side, so the gateway's loop-blocking metrics show what it costs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bench.apps import bare_def
from bench.apps.common import User, UserOut
from gateway import Gateway, Settings
from gateway.db.database import get_async_session

__all__ = ["ROUTE", "create_app", "create_blocking_app", "create_gateway"]

ROUTE = "GET /users/{user_id}"

migrated = APIRouter()
blocking = APIRouter()


@migrated.get("/users/{user_id}", response_model=UserOut)
async def read_user_async(user_id: int, db: AsyncSession = Depends(get_async_session)) -> Any:
    user = await db.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return user


@blocking.get("/users/{user_id}", response_model=UserOut)
async def read_user_blocking(user_id: int, request: Request) -> Any:
    # sync I/O on the event loop (as bare_async_sync): what the metrics must catch
    with request.app.state.gateway.database.sync_sessions() as db:
        user = db.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return user


def create_gateway(async_router: APIRouter = migrated) -> Gateway:
    """The gateway of the pair, not yet built (bench.isolation_cost builds it itself)."""
    gateway = Gateway(Settings.from_environ())
    gateway.include_legacy(bare_def.create_app())
    gateway.include_async(async_router)
    return gateway


def _build(async_router: APIRouter) -> FastAPI:
    gateway = create_gateway(async_router)
    app = gateway.build()
    gateway.modes.set_mode(ROUTE, gateway.settings.default_mode)
    return app


def create_app() -> FastAPI:
    return _build(migrated)


def create_blocking_app() -> FastAPI:
    return _build(blocking)
