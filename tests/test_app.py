"""gateway.app: what the composed app's lifespan does to the process (the GC freeze)."""

from __future__ import annotations

import gc

import pytest
from fastapi import APIRouter

from gateway import Gateway, Settings
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
