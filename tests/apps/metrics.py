"""A small gateway for the metrics tests: an I/O-bound and a CPU-bound legacy route, a
paired route, and an async route that (wrongly) uses the sync engine on the event loop.

    gw = scenario_gateway(settings, registry=CollectorRegistry())
    uvicorn --factory tests.apps.metrics:create_app   (reads GATEWAY_* from the env)
"""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, Request
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from gateway import AsyncDB, Gateway, Settings, SyncDB

IO_SLEEP = 0.05  # seconds the I/O-bound route waits on the database
CPU_BURN = 0.03  # seconds of CPU the CPU-bound route burns

legacy = APIRouter()
migrated = APIRouter()


def _sleep_sql(database_url: str, seconds: float) -> str:
    return f"SELECT pg_sleep({seconds})" if database_url.startswith("postgres") else "SELECT 1"


@legacy.get("/io/{item_id}")
def io_bound(item_id: int, db: SyncDB) -> dict[str, int]:
    db.execute(text(_sleep_sql(str(db.get_bind().url), IO_SLEEP)))
    return {"item_id": item_id}


@legacy.get("/cpu")
def cpu_bound() -> dict[str, int]:
    started, total = time.thread_time(), 0
    while time.thread_time() - started < CPU_BURN:
        total += sum(range(200))
    return {"total": total}


@legacy.get("/pair/{item_id}")
def paired(item_id: int, db: SyncDB) -> dict[str, int]:
    db.execute(text("SELECT 1"))
    return {"item_id": item_id, "pid": os.getpid()}


@migrated.get("/pair/{item_id}")
async def paired_async(item_id: int, db: AsyncDB) -> dict[str, int]:
    await db.execute(text("SELECT 1"))
    return {"item_id": item_id, "pid": os.getpid()}


@legacy.get("/own-engine")
def own_engine() -> dict[str, int]:
    # A legacy app's own engine, unknown to the gateway: its statements still count.
    engine = create_engine(OWN_ENGINE_URL)
    with engine.connect() as connection:
        value = connection.execute(text("SELECT 41 + 1")).scalar_one()
    engine.dispose()
    return {"value": value}


@migrated.get("/blocks")
async def blocks_the_loop(request: Request) -> dict[str, int]:
    # The seed's "worst of both worlds": the sync engine inside an async route.
    engine = request.app.state.gateway.database.sync_engine
    with engine.connect() as connection:
        connection.execute(text(_sleep_sql(str(engine.url), 0.02)))
    return {"ok": 1}


@legacy.get("/boom")
def boom() -> dict[str, int]:
    raise RuntimeError("boom")


OWN_ENGINE_URL = "sqlite://"


def scenario_gateway(
    settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> Gateway:
    gw = Gateway(settings, registry=registry)
    gw.include_legacy(legacy)
    gw.include_async(migrated)
    return gw


def create_app():
    return scenario_gateway().build()
