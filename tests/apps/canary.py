"""Two paired routes for the canary judge: one async twin fails for a third of its ids.

    gateway serve tests.apps.canary:create_canary_app --workers 2

GET /broken/{item_id}: the async twin answers 500 for ids divisible by 3 (legacy never);
GET /fine/{item_id}: both answer alike, each after a `SELECT 1` on the gateway's database
(sync or async engine), so a database outage fails both arms alike. Every answer names its
worker's pid. GET /plain/{item_id}: both alike without a database.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from sqlalchemy import text

from gateway import AsyncDB, Gateway, Settings, SyncDB

__all__ = ["BROKEN", "FINE", "PLAIN", "create_canary_app", "create_canary_gateway"]

BROKEN = "GET /broken/{item_id}"
FINE = "GET /fine/{item_id}"
PLAIN = "GET /plain/{item_id}"


def create_canary_gateway(settings: Settings | None = None, **parts: Any) -> Gateway:
    """The two routes on both sides; not built. `parts` go to Gateway."""
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/broken/{item_id}")
    def broken(item_id: int) -> dict[str, Any]:
        return {"implementation": "legacy", "item": item_id, "pid": os.getpid()}

    @migrated.get("/broken/{item_id}")
    async def broken_async(item_id: int) -> dict[str, Any]:
        if item_id % 3 == 0:
            raise HTTPException(500, "the migrated query mishandles this id")
        return {"implementation": "async", "item": item_id, "pid": os.getpid()}

    @legacy.get("/fine/{item_id}")
    def fine(item_id: int, db: SyncDB) -> dict[str, Any]:
        db.execute(text("SELECT 1"))
        return {"implementation": "legacy", "item": item_id, "pid": os.getpid()}

    @migrated.get("/fine/{item_id}")
    async def fine_async(item_id: int, db: AsyncDB) -> dict[str, Any]:
        await db.execute(text("SELECT 1"))
        return {"implementation": "async", "item": item_id, "pid": os.getpid()}

    @legacy.get("/plain/{item_id}")
    def plain(item_id: int) -> dict[str, Any]:
        return {"implementation": "legacy", "item": item_id, "pid": os.getpid()}

    @migrated.get("/plain/{item_id}")
    async def plain_async(item_id: int) -> dict[str, Any]:
        return {"implementation": "async", "item": item_id, "pid": os.getpid()}

    gateway = Gateway(settings, **parts)
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    return gateway


def create_canary_app() -> FastAPI:
    """The canary app from GATEWAY_* variables (an app factory for `gateway serve`)."""
    return create_canary_gateway().build()
