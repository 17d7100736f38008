"""Liveness and readiness: always alive; ready only while both engines and every check answer."""

from __future__ import annotations

import anyio
import pytest
from fastapi import APIRouter
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from example import SEED_USERS, create_gateway, prepare_database
from gateway import Gateway, Settings
from gateway.admin.health import EngineWatch, add_check
from tests.conftest import POSTGRES_ADMIN_URL, started_client

pytestmark = pytest.mark.anyio


def tiny_gateway(database_url: str) -> Gateway:
    router = APIRouter()

    @router.get("/ping")
    async def ping() -> str:
        return "pong"

    gw = Gateway(Settings.from_environ({}, database_url=database_url))
    gw.include_async(router)
    gw.build()
    return gw


async def test_live_and_ready_on_a_healthy_database(settings):
    gw = create_gateway(settings)
    gw.build()
    async for client in started_client(gw.app):
        live = await client.get("/_gateway/live")
        assert (live.status_code, live.json()) == (200, {"status": "alive"})
        ready = await client.get("/_gateway/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        checks = {"async_engine": "ok", "sync_engine": "ok", "flag_store": "ok"}
        assert ready.json()["checks"] == checks


async def test_unreachable_database_is_unready_but_alive():
    gw = tiny_gateway("postgresql://app:s3cret-pw@127.0.0.1:1/app")
    async for client in started_client(gw.app):
        assert (await client.get("/_gateway/live")).status_code == 200
        ready = await client.get("/_gateway/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unready"
        assert body["failing"][0] == "async_engine"
        assert "async_engine:" in body["detail"]
        assert "s3cret-pw" not in ready.text


def _admin_execute(statement: str) -> None:
    engine = create_engine(
        make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


@pytest.mark.postgres
async def test_database_that_goes_away_makes_ready_503_naming_both_engines(postgres_url):
    name = make_url(postgres_url).database
    settings = Settings.from_environ(
        {}, database_url=postgres_url, pool_size=2, flags_resync_interval=0.2
    )
    gw = create_gateway(settings)
    gw.on_startup(lambda g: prepare_database(g, seed_count=len(SEED_USERS)))
    gw.build()
    async for client in started_client(gw.app):
        assert (await client.get("/_gateway/ready")).status_code == 200
        assert (await client.get("/users/1")).status_code == 200  # the sync engine is in use

        # The database goes away: no new connections, every open one terminated.
        _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _admin_execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        ready = await client.get("/_gateway/ready")
        assert ready.status_code == 503
        assert ready.json()["failing"][0] == "async_engine"
        assert "sync_engine" not in ready.json()["failing"]

        # Once a legacy request hits the dead sync pool (a clean 503 for the client), the
        # sync engine is named too.
        assert (await client.get("/users/1")).status_code == 503
        ready = await client.get("/_gateway/ready")
        assert ready.status_code == 503
        assert ready.json()["failing"][:2] == ["async_engine", "sync_engine"]
        assert (await client.get("/_gateway/live")).status_code == 200

        # The flag store's next resync fails too, and readiness names it.
        for _ in range(200):
            ready = await client.get("/_gateway/ready")
            if "flag_store" in ready.json()["failing"]:
                break
            await anyio.sleep(0.05)
        assert ready.json()["failing"] == ["async_engine", "sync_engine", "flag_store"]

        # It comes back: readiness recovers without a restart.
        _admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await client.get("/users/1")).status_code == 200
        for _ in range(200):
            ready = await client.get("/_gateway/ready")
            if ready.status_code == 200:
                break
            await anyio.sleep(0.05)
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")


async def test_registered_check_failing_is_named(sqlite_url):
    gw = tiny_gateway(sqlite_url)

    async def cache() -> str | None:
        return "cache unreachable: serving from the database"

    add_check(gw, "cache", cache)
    async for client in started_client(gw.app):
        ready = await client.get("/_gateway/ready")
        assert ready.status_code == 503
        assert ready.json()["failing"] == ["cache"]
        assert ready.json()["checks"]["cache"].startswith("cache unreachable")


async def test_slow_check_times_out_as_failing(sqlite_url, monkeypatch):
    import gateway.admin.health

    monkeypatch.setattr(gateway.admin.health, "CHECK_TIMEOUT", 0.05)
    gw = tiny_gateway(sqlite_url)

    async def hangs() -> str | None:
        await anyio.sleep_forever()
        return None

    add_check(gw, "cache", hangs)
    async for client in started_client(gw.app):
        ready = await client.get("/_gateway/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache"] == "no answer within 0.05 s"


def test_engine_watch_forgets_old_failures(monkeypatch):
    import gateway.admin.health

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    watch = EngineWatch(engine)
    with pytest.raises(Exception):  # noqa: B017
        engine.connect()
    assert watch.problem() is not None and "Connection refused" in watch.problem()
    monkeypatch.setattr(gateway.admin.health, "FAILURE_MEMORY", -1.0)
    assert watch.problem() is None
