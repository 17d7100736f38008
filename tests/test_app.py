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
