"""Shadowed reads: they never hold up the legacy app's writes (SQLite), and a difference is
confirmed before it is reported (a write that lands between legacy's read and the twin's is
no difference)."""

from __future__ import annotations

import asyncio

import pytest

from gateway import Settings
from tests.apps.hostile_twins import Hostile, hostile_gateway
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


def settings_for(url: str) -> Settings:
    return Settings.from_environ(
        {}, database_url=url, pool_size=3, max_overflow=2, shadow_timeout=60
    )


def row(gw, key: str) -> dict:
    return next(r for r in gw.shadow.local_report()["routes"] if r["route"] == key)


@pytest.mark.parametrize("action", ["read_waits", "read_writes"])
async def test_a_post_during_a_shadowed_get_does_not_wait_for_its_twin(sqlite_url, action):
    hostile = Hostile(action)
    gw = hostile_gateway(settings_for(sqlite_url), hostile)
    gw.build()
    async for client in started_client(gw.app):
        gw.modes.set_mode("GET /notes/count", "shadow", 100)
        read = await client.get("/notes/count")
        try:
            await asyncio.wait_for(hostile.mid.wait(), 30)  # the twin is mid-run
            # Were the twin holding SQLite's write lock, the POST would wait for it (30 s
            # busy timeout) and this wait would give up first.
            posted = await asyncio.wait_for(client.post("/notes", json={"text": "x"}), 20)
            assert not hostile.go.is_set()  # the POST finished while the twin still ran
        finally:
            hostile.go.set()
        await gw.shadow.settle()
    assert (read.status_code, read.json()) == (200, {"notes": 0})
    assert posted.status_code == 201
    found = row(gw, "GET /notes/count")
    if action == "read_writes":
        assert found["escaped"] == 1, found
        assert "during a shadowed read on SQLite" in found["examples"][0]["detail"]["escaped"][0]
    else:
        assert found["same"] == 1, found


async def test_a_write_between_legacys_read_and_the_twins_is_no_difference(database_url):
    """The twin reads once a write has landed after legacy answered: legacy saw 0 notes,
    the twin's pinned snapshot (taken before legacy read) 0 as well: the same. Without the
    pinned snapshot the twin saw 1 and was reported different."""
    hostile = Hostile("read_late")
    gw = hostile_gateway(settings_for(database_url), hostile)
    gw.build()
    async for client in started_client(gw.app):
        gw.modes.set_mode("GET /notes/count", "shadow", 100)
        # Past the learning runs, so each comparison is one run plus, if it differs, one more.
        gw.shadow.results.route("GET /notes/count").learned = 10**6
        read = await client.get("/notes/count")
        try:
            await asyncio.wait_for(hostile.mid.wait(), 30)
            assert (await client.post("/notes", json={"text": "x"})).status_code == 201
        finally:
            hostile.go.set()
        await gw.shadow.settle()
    assert read.json() == {"notes": 0}
    found = row(gw, "GET /notes/count")
    assert (found["same"], found["different"]) == (1, 0), found


async def test_a_real_difference_on_a_read_is_still_reported(database_url):
    gw = hostile_gateway(settings_for(database_url), Hostile("read_wrong"))
    gw.build()
    async for client in started_client(gw.app):
        gw.modes.set_mode("GET /notes/count", "shadow", 100)
        gw.shadow.results.route("GET /notes/count").learned = 10**6
        read = await client.get("/notes/count")
        await gw.shadow.settle()
    assert read.json() == {"notes": 0}
    found = row(gw, "GET /notes/count")
    assert (found["same"], found["different"]) == (0, 1), found
    assert found["examples"][0]["detail"]["fields"] == ["$.notes"]
