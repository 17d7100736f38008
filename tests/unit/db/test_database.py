"""Engines and per-request sessions on both databases."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, HTTPException
from sqlalchemy import text

from gateway import AsyncDB, Database, DatabaseUnreachable, Gateway, SyncDB
from gateway._compat import SQLALCHEMY
from gateway.urls import derive_urls
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


def test_unreachable_database_is_one_masked_line():
    database = Database("postgresql://app:hunter2@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnreachable) as info:
        database.check()
    message = str(info.value)
    assert "hunter2" not in message
    assert message.startswith(
        "Cannot connect to the database at postgresql://app:***@127.0.0.1:1/none"
    )
    assert "\n" not in message


async def test_sessions_are_closed_on_every_path(settings):
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/ok")
    def ok(db: SyncDB):
        return {"one": db.execute(text("SELECT 1")).scalar()}

    @legacy.get("/fail")
    def fail(db: SyncDB):
        db.execute(text("SELECT 1"))
        raise HTTPException(status_code=409, detail="conflict")

    @migrated.get("/ok")
    async def ok_async(db: AsyncDB):
        return {"one": (await db.execute(text("SELECT 1"))).scalar()}

    @migrated.get("/fail")
    async def fail_async(db: AsyncDB):
        await db.execute(text("SELECT 1"))
        raise HTTPException(status_code=409, detail="conflict")

    gateway = Gateway(settings)
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    gateway.build()
    async for client in started_client(gateway.app):
        for mode in ("legacy", "async"):
            for key in gateway.modes:
                gateway.modes.set_mode(key, mode)
            for _ in range(3):
                assert (await client.get("/ok")).json() == {"one": 1}
                assert (await client.get("/fail")).status_code == 409
            assert gateway.database.sync_engine.pool.checkedout() == 0
            assert gateway.database.async_engine.pool.checkedout() == 0


@pytest.mark.postgres
async def test_statement_timeout_applies_to_both_engines(postgres_url):
    from sqlalchemy.exc import DBAPIError

    database = Database(postgres_url, statement_timeout_ms=50)
    try:
        with database.sync_engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "50ms"
            with pytest.raises(DBAPIError, match="statement timeout"):
                connection.execute(text("SELECT pg_sleep(1)"))
        async with database.async_engine.connect() as connection:
            assert (await connection.execute(text("SHOW statement_timeout"))).scalar() == "50ms"
            with pytest.raises(DBAPIError, match="statement timeout"):
                await connection.execute(text("SELECT pg_sleep(1)"))
    finally:
        await database.aclose()


async def test_threadpool_size_is_set_at_startup(sqlite_url):
    import anyio.to_thread

    from gateway import Settings

    gateway = Gateway(Settings.from_environ({}, database_url=sqlite_url, threadpool_size=7))
    gateway.build()
    async for _client in started_client(gateway.app):
        assert anyio.to_thread.current_default_thread_limiter().total_tokens == 7


def test_sync_driver_follows_sqlalchemy_unless_the_url_names_one():
    sync, async_ = derive_urls("postgresql://app@db/app")
    expected = "postgresql+psycopg" if SQLALCHEMY >= (2, 0, 0) else "postgresql+psycopg2"
    assert (sync.drivername, async_.drivername) == (expected, "postgresql+asyncpg")
    kept, _ = derive_urls("postgresql+psycopg2://app@db/app")
    assert kept.drivername == "postgresql+psycopg2"  # the app's own choice is never changed
    from_async, _ = derive_urls("postgresql+asyncpg://app@db/app")
    assert from_async.drivername == expected
    assert [u.drivername for u in derive_urls("sqlite:///x.db")] == [
        "sqlite+pysqlite",
        "sqlite+aiosqlite",
    ]
