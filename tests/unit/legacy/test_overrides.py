"""An override set on the composed app reaches the legacy routes as it reaches the twins.

The legacy app's own `get_db` is what a test suite overrides; set on the composed app it must
be called for a legacy route on the fast path, on FastAPI's own handler and for the twin,
and the legacy app's own overrides keep working where the composed app sets none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI

from gateway import Gateway, Settings
from gateway.legacy.fast_path import LegacyApp
from gateway.legacy.overrides import LayeredOverrides
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


def get_db() -> Iterator[str]:
    yield "the real database"


def legacy_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    def items(db: str = Depends(get_db)) -> dict[str, str]:
        return {"db": db, "side": "legacy"}

    @app.get("/handled")  # async def: served by FastAPI's own handler, not the fast path
    async def handled(db: str = Depends(get_db)) -> dict[str, str]:
        return {"db": db, "side": "legacy"}

    return app


def twins() -> APIRouter:
    router = APIRouter()

    @router.get("/items")
    async def items(db: str = Depends(get_db)) -> dict[str, str]:
        return {"db": db, "side": "async"}

    return router


def composed(legacy: FastAPI, sqlite_url: str) -> tuple[Gateway, FastAPI]:
    gateway = Gateway(Settings.from_environ({}, database_url=sqlite_url))
    gateway.include_legacy(legacy)
    gateway.include_async(twins())
    return gateway, gateway.build()


def counting(name: str, calls: list[str]) -> Any:
    def fake() -> Iterator[str]:
        calls.append(name)
        yield name

    return fake


async def test_an_override_on_the_composed_app_reaches_legacy_routes(sqlite_url: str) -> None:
    gateway, app = composed(legacy_app(), sqlite_url)
    assert isinstance(gateway.entries["GET /items"].legacy.app, LegacyApp)  # the fast path
    calls: list[str] = []
    app.dependency_overrides[get_db] = counting("test database", calls)
    async for client in started_client(app):
        assert (await client.get("/items")).json() == {"db": "test database", "side": "legacy"}
        assert (await client.get("/handled")).json() == {"db": "test database", "side": "legacy"}
        gateway.modes.set_mode("GET /items", "async")
        assert (await client.get("/items")).json() == {"db": "test database", "side": "async"}
    assert calls == ["test database"] * 3


async def test_the_legacy_apps_own_overrides_keep_working(sqlite_url: str) -> None:
    legacy = legacy_app()
    calls: list[str] = []
    legacy.dependency_overrides[get_db] = counting("own before build", calls)
    _, app = composed(legacy, sqlite_url)
    async for client in started_client(app):
        assert (await client.get("/items")).json()["db"] == "own before build"
        legacy.dependency_overrides[get_db] = counting("own after build", calls)
        assert (await client.get("/handled")).json()["db"] == "own after build"
        app.dependency_overrides[get_db] = counting("composed", calls)  # the composed app wins
        assert (await client.get("/items")).json()["db"] == "composed"
        app.dependency_overrides = {}  # a suite's teardown, reassigning: seen at once
        assert (await client.get("/items")).json()["db"] == "own after build"
        legacy.dependency_overrides.clear()
        assert (await client.get("/items")).json()["db"] == "the real database"
    assert calls == ["own before build", "own after build", "composed", "own after build"]


def test_layered_overrides_read_composed_first_and_write_own() -> None:
    class Host:
        dependency_overrides: dict[Any, Any] = {}

    host, own = Host(), {"a": 1, "b": 2}
    host.dependency_overrides = {"b": 20, "c": 30}
    layered = LayeredOverrides(host, own)
    assert dict(layered) == {"b": 20, "c": 30, "a": 1}
    assert (len(layered), layered.get("a"), layered.get("z", 0), "c" in layered) == (3, 1, 0, True)
    layered["d"] = 4
    del layered["a"]
    assert own == {"b": 2, "d": 4}
    host.dependency_overrides = {}
    assert dict(layered) == {"b": 2, "d": 4}
    own.clear()
    assert not layered
