"""Twins that try to get out of shadow mode's rolled-back transaction, on SQLite and PostgreSQL.

For each: none of the twin's rows survive, the attempt is reported as `escaped` (never
"same"), the client gets what legacy alone gives and legacy's rows are all there, and the
client waits no longer than the shadow timeout for the twin.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from gateway import Settings
from tests.apps.hostile_twins import Hostile, hostile_gateway
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

TIMEOUT = 20.0  # generous: only the timeout case runs into it, with its own
CONTROL = [
    "COMMIT",
    "ROLLBACK",
    "END",
    "BEGIN",
    "SAVEPOINT twin",
    "RELEASE SAVEPOINT twin",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "SELECT 1; /* then */ commit",
]
ESCAPES = [
    ("connection_commit", "a commit of the shadow's connection"),
    ("run_sync_commit", "a commit of the shadow's connection"),
    *[(f"sql:{statement}", "sent as SQL") for statement in CONTROL],
    ("many_commits", "a commit of the shadow's connection"),
    ("own_engine", "a connection of its own"),
    ("gateway_database", "a connection of its own"),
]


def settings_for(url: str, timeout: float = TIMEOUT) -> Settings:
    return Settings.from_environ(
        {}, database_url=url, pool_size=3, max_overflow=2, shadow_timeout=timeout
    )


async def counts(gw) -> tuple[int, int]:
    async with gw.database.async_engine.connect() as connection:
        notes = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar()
        marks = (await connection.execute(text("SELECT count(*) FROM marks"))).scalar()
    return notes, marks


def row(gw, key: str) -> dict:
    return next(r for r in gw.shadow.local_report()["routes"] if r["route"] == key)


def answer(response) -> tuple[int, object]:
    found = response.json()
    return response.status_code, {k: v for k, v in found.items() if k != "id"}


async def shadowed_then_alone(gw, client, path: str = "/notes", key: str = "POST /notes"):
    """One shadowed POST and one to legacy alone: their answers and the shadowed one's wait."""
    gw.modes.set_mode(key, "shadow", 100)
    started = time.monotonic()
    shadowed = await client.post(path, json={"text": "hello"})
    waited = time.monotonic() - started
    await gw.shadow.settle()
    gw.modes.set_mode(key, "legacy", 0)
    alone = await client.post(path, json={"text": "hello"})
    return shadowed, alone, waited


@pytest.mark.parametrize(("action", "refused"), ESCAPES, ids=[e[0] for e in ESCAPES])
async def test_an_escape_is_stopped_reported_and_harms_no_one(database_url, action, refused):
    hostile = Hostile(action)
    gw = hostile_gateway(settings_for(database_url), hostile)
    gw.build()
    async for client in started_client(gw.app):
        shadowed, alone, waited = await shadowed_then_alone(gw, client)
        notes, marks = await counts(gw)
    assert answer(shadowed) == answer(alone) == (201, {"text": "hello"})
    assert (notes, marks) == (2, 0)  # legacy's two notes; nothing of the twin's
    found = row(gw, "POST /notes")
    assert (found["escaped"], found["same"], found["different"]) == (1, 0, 0), found
    assert any(refused in what for what in found["examples"][0]["detail"]["escaped"])
    assert hostile.errors and all("Refused in shadow mode" in e for e in hostile.errors)
    assert waited < TIMEOUT


async def test_a_twin_that_times_out_mid_write_leaves_nothing(database_url):
    timeout = 1.0
    gw = hostile_gateway(settings_for(database_url, timeout), Hostile("timeout"))
    gw.build()
    async for client in started_client(gw.app):
        shadowed, alone, waited = await shadowed_then_alone(gw, client)
        notes, marks = await counts(gw)
    assert answer(shadowed) == answer(alone) == (201, {"text": "hello"})
    assert (notes, marks) == (2, 0)
    found = row(gw, "POST /notes")
    assert (found["skipped"], found["same"], found["escaped"]) == (1, 0, 0), found
    # The twin's share of the wait is bounded by the timeout; legacy's own is a few ms.
    assert waited < timeout + 5.0


async def test_learning_noise_keeps_the_clients_wait_under_the_timeout(database_url):
    """While learning, the twin runs twice; both runs share one timeout. A twin taking 60 %
    of it finishes its first run, never its second, and the first is compared."""
    timeout = 3.0
    hostile = Hostile("slow", delay=0.6 * timeout)
    gw = hostile_gateway(settings_for(database_url, timeout), hostile)
    gw.build()
    async for client in started_client(gw.app):
        shadowed, alone, waited = await shadowed_then_alone(gw, client)
        notes, marks = await counts(gw)
    assert answer(shadowed) == answer(alone)
    assert (notes, marks) == (2, 0)
    assert hostile.finished == 1  # the second run was stopped at the deadline
    found = row(gw, "POST /notes")
    assert found["different"] == 1, found  # the first run's `marks` write, compared
    assert waited < 2 * 0.6 * timeout  # what two full runs would have cost, at least


async def test_a_task_the_twin_leaves_running_is_stopped_and_reported_late(database_url):
    hostile = Hostile("spawned_task")
    gw = hostile_gateway(settings_for(database_url), hostile)
    gw.build()
    async for client in started_client(gw.app):
        shadowed, alone, _ = await shadowed_then_alone(gw, client)
        await asyncio.gather(*hostile.spawned_tasks)
        notes, marks = await counts(gw)
    assert answer(shadowed) == answer(alone)
    assert (notes, marks) == (2, 0)
    assert len(hostile.errors) == 2, hostile.errors  # its async engine and its thread's
    assert all(e.startswith("ShadowEscape") for e in hostile.errors)
    found = row(gw, "POST /notes")
    # Each attempt is an escape, whether it came during the run or after it was compared
    # (then the run itself differed: it wrote `marks`); never "same".
    assert (found["escaped"], found["same"]) == (2, 0), found
    assert found["escaped"] + found["different"] in (2, 3), found


async def test_text_writes_are_compared_by_statement_and_parameters(database_url):
    gw = hostile_gateway(settings_for(database_url), Hostile(""))
    gw.build()
    async for client in started_client(gw.app):
        await shadowed_then_alone(gw, client, "/sql-notes", "POST /sql-notes")
    assert row(gw, "POST /sql-notes")["same"] == 1

    gw = hostile_gateway(settings_for(database_url), Hostile("text_other"))
    gw.build()
    async for client in started_client(gw.app):
        shadowed, alone, _ = await shadowed_then_alone(gw, client, "/sql-notes", "POST /sql-notes")
        notes, _ = await counts(gw)
    assert answer(shadowed) == answer(alone)
    assert notes == 4  # two from the first gateway, two from this one: legacy's
    found = row(gw, "POST /sql-notes")
    assert (found["different"], found["same"]) == (1, 0), found
    writes = found["examples"][0]["detail"]["writes"]
    assert any("async only: SQL 'INSERT INTO notes (text) VALUES (:t)'" in w for w in writes)


async def test_a_correct_twin_with_a_background_write_is_the_same(database_url):
    gw = hostile_gateway(settings_for(database_url), Hostile(""))
    gw.build()
    async for client in started_client(gw.app):
        gw.modes.set_mode("POST /audited-notes", "shadow", 100)
        for i in range(50):
            response = await client.post("/audited-notes", json={"text": f"n{i}"})
            assert response.status_code == 201
        async with gw.database.async_engine.connect() as connection:
            audits = (await connection.execute(text("SELECT count(*) FROM audit"))).scalar()
    found = row(gw, "POST /audited-notes")
    assert (found["same"], found["different"]) == (50, 0), found["examples"][:1]
    assert audits == 50  # legacy's background writes, and none of the twin's
