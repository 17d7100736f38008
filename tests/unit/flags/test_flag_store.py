"""The flag store on SQLite and PostgreSQL: persistence, history, seeding, propagation."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from prometheus_client import CollectorRegistry

from gateway.exceptions import SettingsError
from gateway.flags.follower import FollowerMetrics
from gateway.flags.store import MemoryFlagStore, SqlFlagStore, StoredFlag
from gateway.flags.table import Flag
from gateway.modes import Mode
from tests.apps.probe import OTHER, PROBE, create_probe_gateway, probe_settings
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

CANARY = Flag(Mode.CANARY, 10)
ASYNC = Flag(Mode.ASYNC, 100)
LEGACY = Flag(Mode.LEGACY, 0)


def build(database_url: str, **overrides):
    gateway = create_probe_gateway(probe_settings(database_url, **overrides))
    gateway.build()
    return gateway


async def eventually(check, timeout: float = 20.0) -> None:
    """Wait until check() is true; the bound only guards against hanging forever."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


@pytest.fixture(params=["memory", "sql"])
async def store(request, database_url):
    store = MemoryFlagStore() if request.param == "memory" else SqlFlagStore(database_url)
    await store.prepare()
    yield store
    await store.aclose()


async def test_store_round_trip_and_history(store):
    assert await store.load() == {}
    first = await store.change(PROBE, CANARY, actor="ops", reason="try", default=LEGACY)
    second = await store.change(PROBE, ASYNC, actor="bot", reason="", default=LEGACY)
    assert (first.old, first.new, second.old, second.new) == (LEGACY, CANARY, CANARY, ASYNC)
    assert second.id > first.id
    assert await store.load() == {PROBE: StoredFlag(ASYNC, second.id)}
    history = await store.history()
    assert [(h.actor, h.old, h.new, h.reason) for h in history] == [
        ("bot", CANARY, ASYNC, ""),
        ("ops", LEGACY, CANARY, "try"),
    ]
    assert history[0].at.tzinfo is not None
    assert await store.history(route=OTHER) == []
    assert len(await store.history(limit=1)) == 1


async def test_only_if_missing_never_overwrites(store):
    seeded = await store.change(PROBE, ASYNC, actor="flags-file", reason="", default=LEGACY)
    skipped = await store.change(
        PROBE, CANARY, actor="flags-file", reason="", default=LEGACY, only_if_missing=True
    )
    assert seeded is not None
    assert skipped is None
    assert (await store.load())[PROBE].flag == ASYNC
    assert len(await store.history()) == 1


async def test_prepare_is_idempotent_and_concurrent(database_url):
    stores = [SqlFlagStore(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.prepare() for s in stores))
        await stores[0].prepare()
        await asyncio.gather(
            *(
                s.change(PROBE, CANARY, actor=f"w{i}", reason="", default=LEGACY)
                for i, s in enumerate(stores)
            )
        )
        history = await stores[0].history()
        # Serialized per key: each change saw the one before it.
        assert [h.old for h in reversed(history)] == [LEGACY, CANARY, CANARY, CANARY]
    finally:
        for s in stores:
            await s.aclose()


async def test_flags_and_history_survive_a_restart(database_url):
    first = build(database_url)
    async for _ in started_client(first.app):
        await first.follower.change(PROBE, "canary", 10, actor="ops", reason="half a day")
        assert first.modes.get(PROBE) == CANARY
    second = build(database_url)
    assert second.modes.get(PROBE) == LEGACY
    async for client in started_client(second.app):
        assert second.modes.get(PROBE) == CANARY
        history = (await client.get("/_gateway/history")).json()["history"]
        assert [(h["by"], h["reason"]) for h in history] == [("ops", "half a day")]


async def test_change_propagates_to_another_gateway(database_url):
    # PostgreSQL: by NOTIFY (the resync is far away); SQLite: by polling every 0.2 s.
    one = build(database_url, flags_resync_interval=3600)
    two = build(database_url, flags_resync_interval=3600)
    async with AsyncExitStack() as stack:
        for gateway in (one, two):
            await stack.enter_async_context(_running(gateway))
        for flag, (mode, percent) in [
            (CANARY, ("canary", 10)),
            (ASYNC, ("async", None)),
            (LEGACY, ("legacy", None)),
        ]:
            await one.follower.change(PROBE, mode, percent, actor="ops")
            assert one.modes.get(PROBE) == flag
            await eventually(lambda flag=flag: two.modes.get(PROBE) == flag)
        assert two.modes.get(OTHER) == LEGACY


def _running(gateway):
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run():
        async for client in started_client(gateway.app):
            yield client

    return run()


async def test_flags_file_seeds_once_and_later_flips_win(database_url, tmp_path):
    path = tmp_path / "flags.toml"
    path.write_text(
        f'[routes]\n"{PROBE}" = "async"\n"{OTHER}" = {{ mode = "canary", percent = 10 }}\n'
    )
    gateways = [build(database_url, flags_file=str(path)) for _ in range(3)]
    async with AsyncExitStack() as stack:
        for gateway in gateways:
            await stack.enter_async_context(_running(gateway))
        for gateway in gateways:
            assert gateway.modes.get(PROBE) == ASYNC
            assert gateway.modes.get(OTHER) == CANARY
        history = await gateways[0].follower.store.history()
        assert sorted((h.route, h.actor) for h in history) == [
            (OTHER, "flags-file"),
            (PROBE, "flags-file"),
        ]
        await gateways[0].follower.change(PROBE, "legacy", None, actor="ops", reason="back")
    again = build(database_url, flags_file=str(path))
    async with _running(again):
        assert again.modes.get(PROBE) == LEGACY


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[routes]\n"GET /prob" = "async"\n', "Did you mean 'GET /probe'"),
        ('[routes]\n"GET /probe" = "fast"\n', "Unknown mode 'fast'"),
        ('[routes]\n"GET /probe" = { mode = "canary" }\n', "needs percent"),
        ('[routes]\n"GET /legacy-only" = "async"\n', "only a legacy implementation"),
        ('"GET /probe" = "async"\n', "expected one [routes] table"),
        ("[routes\n", "not valid TOML"),
    ],
)
def test_a_bad_flags_file_stops_the_build(tmp_path, text, words):
    path = tmp_path / "flags.toml"
    path.write_text(text)
    gateway = create_probe_gateway(
        probe_settings(f"sqlite:///{tmp_path}/g.db", flags_file=str(path))
    )
    with pytest.raises(SettingsError) as caught:
        gateway.build()
    assert words in str(caught.value)
    assert "GATEWAY_FLAGS_FILE=" in str(caught.value)


async def test_an_older_version_never_overwrites_a_newer_one(tmp_path):
    gateway = build(f"sqlite:///{tmp_path}/g.db")
    sync = gateway.follower
    sync.metrics = FollowerMetrics(CollectorRegistry())
    assert sync.apply(PROBE, ASYNC, 7, "notify") is True
    # A resync that read the table before version 7 committed arrives late.
    sync.apply_all({PROBE: StoredFlag(CANARY, 6)}, "resync")
    assert gateway.modes.get(PROBE) == ASYNC
    assert sync.apply(PROBE, ASYNC, 7, "resync") is False  # nothing new: left alone
    assert sync.apply(PROBE, CANARY, 8, "notify") is True
    assert gateway.modes.get(PROBE) == CANARY
    # Routes the store has no flag for keep what they have (an embedder's gw.modes.set).
    gateway.modes.set(OTHER, ASYNC)
    sync.apply_all({PROBE: StoredFlag(CANARY, 8)}, "resync")
    assert (gateway.modes.get(OTHER), gateway.modes.get(PROBE)) == (ASYNC, CANARY)


async def test_malformed_notifications_are_ignored(tmp_path, caplog):
    gateway = build(f"sqlite:///{tmp_path}/g.db")
    sync = gateway.follower
    for payload in ("not json", '{"key": "GET /probe"}', '{"key": "GET /probe", "mode": "x"}'):
        sync._on_payload(payload)
    assert gateway.modes.get(PROBE) == LEGACY
    assert "malformed notification" in caplog.text
