"""Cases gateway_legacy and gateway_async: the same route, paired, behind gateway.Gateway.

The legacy side is bare_def's route (`def`, sync generator get_db, response_model); the
async side is bare_async's. The mode comes from GATEWAY_DEFAULT_MODE (legacy or async) and
is set again through the Python API after build. Settings are the gateway's own GATEWAY_*.

`create_blocking_app` serves bare_async_sync's route (an `async def` using the sync
engine) as the async side, so the gateway's loop-blocking metrics show what it costs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bench.apps.common import User, UserOut
from gateway import Gateway, Settings
from gateway.database import get_async_session, get_session

ROUTE = "GET /users/{user_id}"

legacy = APIRouter()
migrated = APIRouter()
blocking = APIRouter()


@legacy.get("/users/{user_id}", response_model=UserOut)
def read_user(user_id: int, db: Session = Depends(get_session)) -> Any:
    user = db.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return user


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


def _build(async_router: APIRouter) -> FastAPI:
    settings = Settings.from_environ()
    gateway = Gateway(settings)
    gateway.include_legacy(legacy)
    gateway.include_async(async_router)
    app = gateway.build()
    gateway.modes.set_mode(ROUTE, settings.default_mode)
    return app


def create_app() -> FastAPI:
    return _build(migrated)


def create_blocking_app() -> FastAPI:
    return _build(blocking)
