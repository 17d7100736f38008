"""A legacy app's `async def` routes: served by FastAPI on the loop, measured, pairable.

An `async def` legacy route that calls the app's own sync session is the "worst of both
worlds" (the whole event loop waits on the database): the loop-blocking detector counts it
and the migration report lists it, on SQLite and on the real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from gateway import AsyncDB, Gateway, Settings
from gateway._compat import SYNC_POSTGRES_DRIVER
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

BLOCKING = {"route": "/status", "method": "GET"}


def legacy_engine_url(database_url: str) -> str:
    # The legacy app brings its own engine and driver, as a real one does.
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername=SYNC_POSTGRES_DRIVER)  # psycopg2 on SQLAlchemy 1.4
    return url.render_as_string(hide_password=False)


def legacy_app(database_url: str) -> tuple[FastAPI, object]:
    # QueuePool named, and SQLite's thread check off, as SQLAlchemy 2.x does by itself
    # (1.4 gives SQLite files a NullPool, which takes no sizes).
    url = legacy_engine_url(database_url)
    sqlite = {"check_same_thread": False} if url.startswith("sqlite") else {}
    engine = create_engine(
        url, poolclass=QueuePool, pool_size=2, max_overflow=0, connect_args=sqlite
    )
    SessionLocal = sessionmaker(engine)

    def get_db() -> Iterator[Session]:
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()

    app = FastAPI()

    @app.get("/status")
    async def status(db: Session = Depends(get_db)) -> dict[str, int]:
        # A sync session inside `async def`: runs on the event loop thread.
        return {"one": db.execute(text("SELECT 1")).scalar_one()}

    @app.get("/count")
    def count(db: Session = Depends(get_db)) -> dict[str, int]:
        return {"one": db.execute(text("SELECT 1")).scalar_one()}

    return app, engine


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_async_legacy_route_on_a_sync_session_is_reported_as_blocking_the_loop(
    settings: Settings, database_url: str
) -> None:
    app, engine = legacy_app(database_url)
    registry = CollectorRegistry()
    gateway = Gateway(settings, registry=registry)
    gateway.include_legacy(app)
    gateway.build()
    assert gateway.app is not None
    try:
        async for client in started_client(gateway.app):
            for _ in range(3):
                assert (await client.get("/status")).json() == {"one": 1}
            assert (await client.get("/count")).json() == {"one": 1}
            report = (await client.get("/_gateway/report")).json()
            routes = (await client.get("/_gateway/routes")).json()["routes"]
    finally:
        engine.dispose()
    legacy = {"implementation": "legacy"}
    assert value(registry, "gateway_loop_blocking_requests_total", **BLOCKING, **legacy) == 3
    assert value(registry, "gateway_loop_blocked_seconds_total", **BLOCKING, **legacy) > 0
    # The `def` route runs its session in a worker thread: the loop never waited.
    threaded = {"route": "/count", "method": "GET", **legacy}
    assert value(registry, "gateway_loop_blocking_requests_total", **threaded) == 0
    assert value(registry, "gateway_db_statements_total", **threaded) == 1
    [regression] = report["regressions"]
    assert regression["key"] == "GET /status"
    assert regression["implementation"] == "legacy"
    assert regression["requests_blocking"] == 3
    assert regression["where"].endswith("legacy_app.<locals>.status")
    kinds = {row["key"]: row["kinds"] for row in routes}
    assert kinds == {"GET /status": {"legacy": "async def"}, "GET /count": {"legacy": "def"}}


async def test_async_legacy_route_pairs_with_a_migrated_twin(
    settings: Settings, database_url: str
) -> None:
    from fastapi import APIRouter

    app, engine = legacy_app(database_url)
    migrated = APIRouter()

    @migrated.get("/status")
    async def status_async(db: AsyncDB) -> dict[str, int]:
        return {"one": (await db.execute(text("SELECT 1"))).scalar_one()}

    registry = CollectorRegistry()
    gateway = Gateway(settings, registry=registry)
    gateway.include_legacy(app)
    gateway.include_async(migrated)
    gateway.build()
    assert gateway.app is not None
    assert gateway.entries["GET /status"].paired
    try:
        async for client in started_client(gateway.app):
            for mode in ("legacy", "async", "legacy"):
                gateway.modes.set_mode("GET /status", mode)
                assert (await client.get("/status")).json() == {"one": 1}
    finally:
        engine.dispose()
    for implementation, requests, blocking in (("legacy", 2, 2), ("async", 1, 0)):
        labels = {**BLOCKING, "implementation": implementation}
        served = value(registry, "gateway_requests_total", **labels, status="200")
        assert served == requests, (implementation, served)
        assert value(registry, "gateway_loop_blocking_requests_total", **labels) == blocking
