"""The 500 answer to an unhandled exception names the side that raised it, as every other
answer of a route does; the app's own 500 handler still shapes it, called once."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from gateway import Gateway, MemoryFlagStore, Settings

pytestmark = pytest.mark.anyio


def routers():
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/boom")
    def boom():
        raise RuntimeError("legacy failed")

    @migrated.get("/boom")
    async def boom_async():
        raise RuntimeError("async failed")

    @migrated.get("/only-async")
    async def only_async():
        raise RuntimeError("async-only failed")

    return legacy, migrated


async def answer(tmp_path, path, legacy_app=None, **settings):
    values = {"database_url": f"sqlite:///{tmp_path / 'g.db'}", **settings}
    gateway = Gateway(Settings.from_environ({}, **values), store=MemoryFlagStore())
    legacy, migrated = routers()
    if legacy_app is not None:
        legacy_app.include_router(legacy)
        legacy = legacy_app
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    app = gateway.build()
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.get(path)


@pytest.mark.parametrize("metrics", [True, False], ids=["metrics", "no-metrics"])
@pytest.mark.parametrize("mode", ["legacy", "async"])
async def test_an_unhandled_exception_answers_500_naming_the_side(tmp_path, metrics, mode):
    found = await answer(tmp_path, "/boom", default_mode=mode, metrics=metrics)
    assert (found.status_code, found.text) == (500, "Internal Server Error")
    assert found.headers.get_list("x-gateway-implementation") == [mode]
    only = await answer(tmp_path, "/only-async", metrics=metrics)
    assert (only.status_code, only.headers["x-gateway-implementation"]) == (500, "async")


async def test_the_header_setting_names_it_or_turns_it_off(tmp_path):
    named = await answer(tmp_path, "/boom", implementation_header="X-Side")
    assert named.headers["x-side"] == "legacy"
    off = await answer(tmp_path, "/boom", implementation_header="")
    assert off.status_code == 500
    assert [k for k in off.headers if "implementation" in k or k == "x-side"] == []


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_the_legacy_apps_own_500_handler_shapes_the_answer_once(tmp_path, kind):
    legacy_app = FastAPI()
    calls = []

    async def handle_async(request: Request, exc: Exception):
        calls.append(str(exc))
        return JSONResponse({"error": "sorry"}, status_code=500)

    def handle_sync(request: Request, exc: Exception):
        calls.append(str(exc))
        return JSONResponse({"error": "sorry"}, status_code=500)

    legacy_app.add_exception_handler(Exception, handle_async if kind == "async" else handle_sync)
    found = await answer(tmp_path, "/boom", legacy_app=legacy_app, default_mode="async")
    assert (found.status_code, found.json()) == (500, {"error": "sorry"})
    assert found.headers["x-gateway-implementation"] == "async"
    assert calls == ["async failed"]


async def test_a_500_outside_any_route_gets_no_header(tmp_path):
    legacy_app = FastAPI()

    @legacy_app.middleware("http")
    async def broken(request: Request, call_next):
        if request.url.path == "/broken":
            raise RuntimeError("middleware failed")
        return await call_next(request)

    found = await answer(tmp_path, "/broken", legacy_app=legacy_app)
    assert found.status_code == 500
    assert "x-gateway-implementation" not in found.headers
