"""The database fails while a twin runs in shadow: a restart, an outage, a killed backend.

On a private PostgreSQL cluster (never the shared server). The twin has written and waits
mid-run while the test breaks the server, then goes on into a dead connection: its rollback
fails. The client must get exactly what legacy alone gives (legacy's 201 and its row once the
server is back, the 503 legacy alone gives while it is down), none of the twin's rows
survive, and the client waits no longer than the shadow timeout for the twin.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from gateway import Settings
from tests.apps.hostile_twins import Hostile, hostile_gateway
from tests.apps.private_postgres import PrivatePostgres, private_postgres
from tests.conftest import started_client

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]

TIMEOUT = 60.0  # above a restart on a loaded machine: the twin is stopped by the fault


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    with private_postgres(max_connections=40) as started:
        yield started


def settings_for(cluster: PrivatePostgres) -> Settings:
    return Settings.from_environ(
        {},
        database_url=cluster.url,
        pool_size=2,
        max_overflow=2,
        shadow_timeout=TIMEOUT,
        pool_pre_ping=True,  # legacy alone survives a restart this way, as in production
    )


def accepting(cluster: PrivatePostgres) -> bool:
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={cluster.port} user=postgres", connect_timeout=2
        ):
            return True
    except psycopg.OperationalError:
        return False


async def wait_until(condition, what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting until {what}")
        await asyncio.sleep(0.2)


async def counts(gw) -> tuple[int, int]:
    async with gw.database.async_engine.connect() as connection:
        notes = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar()
        marks = (await connection.execute(text("SELECT count(*) FROM marks"))).scalar()
    return notes, marks


async def shadowed_post_through(gw, client, hostile: Hostile, fault) -> tuple[object, float]:
    """A shadowed POST whose twin waits mid-run while `fault()` runs; its answer and wait."""
    gw.modes.set_mode("POST /notes", "shadow", 100)
    started = time.monotonic()
    request = asyncio.ensure_future(client.post("/notes", json={"text": "hello"}))
    try:
        await asyncio.wait_for(hostile.mid.wait(), 60)
        await fault()
    finally:
        hostile.go.set()
    response = await request
    waited = time.monotonic() - started
    await gw.shadow.settle()
    gw.modes.set_mode("POST /notes", "legacy", 0)
    return response, waited


def answer(response) -> tuple[int, object]:
    return response.status_code, {k: v for k, v in response.json().items() if k != "id"}


async def run_fault(cluster: PrivatePostgres, fault) -> tuple:
    hostile = Hostile("wait")
    gw = hostile_gateway(settings_for(cluster), hostile)
    gw.build()
    async for client in started_client(gw.app):
        await client.post("/notes", json={"text": "warm"})  # legacy's pool has a connection
        response, waited = await shadowed_post_through(gw, client, hostile, lambda: fault(hostile))
        alone = await client.post("/notes", json={"text": "hello"})
        notes, marks = await counts(gw)
    report = next(r for r in gw.shadow.local_report()["routes"] if r["route"] == "POST /notes")
    return response, alone, waited, (notes, marks), report


async def test_a_restart_mid_shadow_loses_no_write(cluster):
    async def restart(_hostile) -> None:
        await asyncio.to_thread(cluster.stop)
        await asyncio.to_thread(cluster.start)

    response, alone, waited, rows, report = await run_fault(cluster, restart)
    assert answer(response) == answer(alone) == (201, {"text": "hello"})
    assert rows[1] == 0  # nothing of the twin's
    assert report["same"] == 0 and report["candidate_errors"] + report["skipped"] == 1, report
    assert waited < TIMEOUT


async def test_a_killed_backend_mid_shadow_loses_no_write(cluster):
    async def kill(hostile: Hostile) -> None:
        assert hostile.pid is not None
        os.kill(hostile.pid, signal.SIGKILL)  # the server restarts every backend
        await asyncio.sleep(0.5)
        await wait_until(lambda: accepting(cluster), "the server accepts connections again")

    response, alone, waited, rows, report = await run_fault(cluster, kill)
    assert answer(response) == answer(alone) == (201, {"text": "hello"})
    assert rows[1] == 0
    assert report["same"] == 0 and report["candidate_errors"] + report["skipped"] == 1, report
    assert waited < TIMEOUT


async def test_a_database_down_mid_shadow_answers_what_legacy_alone_does(cluster):
    hostile = Hostile("wait")
    gw = hostile_gateway(settings_for(cluster), hostile)
    gw.build()
    async for client in started_client(gw.app):
        await client.post("/notes", json={"text": "warm"})
        try:
            response, waited = await shadowed_post_through(
                gw, client, hostile, lambda: asyncio.to_thread(cluster.stop)
            )
            alone = await client.post("/notes", json={"text": "hello"})
        finally:
            await asyncio.to_thread(cluster.start)
        after = await client.post("/notes", json={"text": "after"})
    assert alone.status_code == 503
    assert (response.status_code, response.json()) == (alone.status_code, alone.json())
    assert after.status_code == 201
    assert waited < TIMEOUT
