"""A legacy app with the mistake the report must blame correctly: an `async def` route that
uses the app's sync session (it blocks the event loop), an `async def` dependency that does
the same under a `def` route, and a `def` route that blocks a thread of its own for longer.
GET /stats has a correct async twin, which must never be blamed.

    gw = loop_blocking_gateway(settings, legacy_url)    # legacy_url: the legacy app's engine
    gateway routes tests.apps.loop_blocking:create_app  # GATEWAY_DATABASE_URL from the env
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, Depends, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from gateway import AsyncDB, Gateway, Settings
from gateway._compat import SYNC_POSTGRES_DRIVER

POOL_SIZE, MAX_OVERFLOW = 3, 2  # the legacy engine's pool: 5 connections at most
THREAD_SLEEP = 0.02  # seconds GET /slow holds its worker thread

SessionLocal = sessionmaker()  # bound to the legacy engine by `legacy_app`


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


async def stats(db: Session = Depends(get_db)) -> dict[str, int]:
    # The mistake: a sync session inside `async def` runs its query on the event loop.
    return {"n": db.execute(text("SELECT 1")).scalar_one()}


async def current_user(db: Session = Depends(get_db)) -> int:
    return int(db.execute(text("SELECT 7")).scalar_one())  # the same, in a dependency


def me(user: int = Depends(current_user)) -> dict[str, int]:
    return {"user": user}


def slow(db: Session = Depends(get_db)) -> dict[str, int]:
    db.execute(text("SELECT 1"))
    time.sleep(THREAD_SLEEP)  # blocks its own worker thread, not the loop
    return {"n": 1}


async def stats_async(db: AsyncDB) -> dict[str, int]:
    return {"n": (await db.execute(text("SELECT 1"))).scalar_one()}


def legacy_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername=SYNC_POSTGRES_DRIVER)
    sqlite = {"check_same_thread": False} if url.get_backend_name() == "sqlite" else {}
    return create_engine(
        url, poolclass=QueuePool, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
        connect_args=sqlite,
    )  # fmt: skip


def legacy_app(database_url: str) -> FastAPI:
    """The legacy app on its own engine at `database_url` (one app per process at a time)."""
    SessionLocal.configure(bind=legacy_engine(database_url))
    app = FastAPI()
    app.get("/stats")(stats)
    app.get("/me")(me)
    app.get("/slow")(slow)
    return app


def migrated() -> APIRouter:
    router = APIRouter()
    router.get("/stats")(stats_async)
    return router


def loop_blocking_gateway(
    settings: Settings, legacy_url: str, registry: CollectorRegistry | None = None
) -> Gateway:
    gateway = Gateway(settings, registry=registry)
    gateway.include_legacy(legacy_app(legacy_url))
    gateway.include_async(migrated())
    return gateway


def create_app() -> FastAPI:
    settings = Settings.from_environ()
    return loop_blocking_gateway(settings, settings.effective_database_url).build()
