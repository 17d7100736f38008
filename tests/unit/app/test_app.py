"""gateway.app: what the composed app's lifespan does to the process (the GC freeze)."""

from __future__ import annotations

import gc

import pytest
from fastapi import APIRouter

from gateway import Gateway, Settings
from gateway.exceptions import SettingsError
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


def _gateway(sqlite_url: str, **overrides: object) -> Gateway:
    gw = Gateway(Settings.from_environ({}, database_url=sqlite_url, metrics=False, **overrides))
    router = APIRouter()

    @router.get("/ping")
    def ping() -> dict[str, str]:
        return {"ok": "yes"}

    gw.include_legacy(router)
    return gw


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.unfreeze()  # whatever an earlier test left frozen
    yield
    gc.unfreeze()


async def test_startup_freezes_the_heap_and_shutdown_unfreezes_it(sqlite_url):
    app = _gateway(sqlite_url).build()
    assert gc.get_freeze_count() == 0
    async for client in started_client(app):
        assert gc.get_freeze_count() > 0  # the app, its routes and engines: out of collection
        assert (await client.get("/ping")).json() == {"ok": "yes"}
    assert gc.get_freeze_count() == 0


async def test_gc_freeze_false_leaves_the_collector_alone(sqlite_url):
    app = _gateway(sqlite_url, gc_freeze=False).build()
    async for client in started_client(app):
        assert gc.get_freeze_count() == 0
        assert (await client.get("/ping")).status_code == 200


def test_gc_freeze_reads_the_environment():
    assert Settings.from_environ({"GATEWAY_GC_FREEZE": "false"}).gc_freeze is False
    assert Settings.from_environ({}).gc_freeze is True


async def test_gc_threshold_applies_while_serving_and_is_restored(sqlite_url):
    before = gc.get_threshold()
    app = _gateway(sqlite_url, gc_threshold="12345,11,12").build()
    async for client in started_client(app):
        assert gc.get_threshold() == (12345, 11, 12)
        assert (await client.get("/ping")).status_code == 200
    assert gc.get_threshold() == before


def test_gc_threshold_rejects_what_gc_set_threshold_would_not_take():
    with pytest.raises(SettingsError, match=r"GATEWAY_GC_THRESHOLD='0,10' is invalid: expected"):
        Settings.from_environ({"GATEWAY_GC_THRESHOLD": "0,10"})
    assert Settings.from_environ({"GATEWAY_GC_THRESHOLD": "10000, 10"}).gc_thresholds == (
        10000,
        10,
    )
    assert Settings.from_environ({}).gc_thresholds == ()


async def test_an_injected_memory_store_keeps_flags_without_any_database_table(sqlite_url):
    from sqlalchemy import create_engine, inspect

    from gateway import MemoryFlagStore

    store = MemoryFlagStore()
    settings = Settings.from_environ(
        {}, database_url=sqlite_url, metrics=False, admin_tokens="ops=0123456789abcdef-token"
    )
    gw = Gateway(settings, store=store)
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/thing")
    def thing() -> dict[str, str]:
        return {"side": "legacy"}

    @migrated.get("/thing")
    async def thing_async() -> dict[str, str]:
        return {"side": "async"}

    gw.include_legacy(legacy)
    gw.include_async(migrated)
    app = gw.build()
    async for client in started_client(app):
        flip = await client.put(
            "/_gateway/routes/GET /thing",
            json={"mode": "async"},
            headers={"Authorization": "Bearer 0123456789abcdef-token"},
        )
        assert flip.status_code == 200
        assert (await client.get("/thing")).json() == {"side": "async"}
    assert (await store.load())["GET /thing"].flag.mode.value == "async"
    engine = create_engine(sqlite_url)
    try:
        assert "gateway_flags" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
