"""Pairing, ordering, kind checks and dispatch, on tiny apps without a database."""

from __future__ import annotations

import threading

import pytest
from fastapi import APIRouter, Depends, FastAPI

from gateway import Gateway, RouteKindError, Settings, UnknownModeError, UnknownRouteError
from gateway.exceptions import RouteError
from gateway.flags.table import Flag, choose
from gateway.legacy.fast_path import LegacyApp
from gateway.modes import Implementation, Mode
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


def make_gateway(tmp_path, legacy, *async_routers) -> Gateway:
    gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'g.db'}"))
    gateway.include_legacy(legacy)
    for router in async_routers:
        gateway.include_async(router)
    gateway.build()
    return gateway


def routers():
    legacy = APIRouter()
    migrated = APIRouter()

    @legacy.get("/items/{item_id}")
    def get_item(item_id: int):
        return {"id": item_id, "side": "legacy"}

    @legacy.put("/items/{item_id}")
    def put_item(item_id: int):
        return {"id": item_id, "side": "legacy"}

    @migrated.get("/items/special")
    async def special_item():
        return {"id": "special", "side": "async"}

    @migrated.get("/items/{item_id}")
    async def get_item_async(item_id: int):
        return {"id": item_id, "side": "async"}

    @migrated.get("/only-async")
    async def only_async():
        return {"side": "async"}

    return legacy, migrated


async def test_pairs_by_method_and_full_path(tmp_path):
    legacy, migrated = routers()
    outer = APIRouter(prefix="/api")
    outer.include_router(migrated)
    gateway = make_gateway(tmp_path, legacy, migrated)
    rows = {r["key"]: r for r in gateway.describe_routes()}
    assert rows["GET /items/{item_id}"]["implementations"] == ["legacy", "async"]
    assert rows["PUT /items/{item_id}"]["implementations"] == ["legacy"]
    assert rows["GET /only-async"]["implementations"] == ["async"]
    assert list(gateway.modes) == ["GET /items/{item_id}"]


async def test_prefix_of_nested_routers_is_part_of_the_key(tmp_path):
    legacy, migrated = routers()
    outer_legacy = APIRouter(prefix="/api")
    outer_legacy.include_router(legacy, prefix="/v1")
    outer_async = APIRouter(prefix="/api")
    outer_async.include_router(migrated, prefix="/v1")
    gateway = make_gateway(tmp_path, outer_legacy, outer_async)
    assert "GET /api/v1/items/{item_id}" in gateway.modes


async def test_dispatch_follows_mode_at_runtime(tmp_path):
    legacy, migrated = routers()
    gateway = make_gateway(tmp_path, legacy, migrated)
    async for client in started_client(gateway.app):
        assert (await client.get("/items/1")).json()["side"] == "legacy"
        gateway.modes.set_mode("GET /items/{item_id}", "async")
        assert (await client.get("/items/1")).json() == {"id": 1, "side": "async"}
        assert (await client.put("/items/1")).json()["side"] == "legacy"
        gateway.modes.set_mode("GET /items/{item_id}", "legacy")
        assert (await client.get("/items/1")).json()["side"] == "legacy"


async def test_async_only_route_keeps_its_precedence(tmp_path):
    legacy, migrated = routers()
    gateway = make_gateway(tmp_path, legacy, migrated)
    async for client in started_client(gateway.app):
        assert (await client.get("/items/special")).json() == {"id": "special", "side": "async"}
        assert (await client.get("/only-async")).json() == {"side": "async"}


async def test_method_not_allowed_is_the_legacy_routes_own(tmp_path):
    legacy, migrated = routers()
    gateway = make_gateway(tmp_path, legacy, migrated)
    async for client in started_client(gateway.app):
        for mode in ("legacy", "async"):
            gateway.modes.set_mode("GET /items/{item_id}", mode)
            # As FastAPI alone: the first route on the path answers, through the handlers.
            response = await client.delete("/items/1")
            assert (response.status_code, response.json()) == (
                405,
                {"detail": "Method Not Allowed"},
            )
            assert response.headers["allow"] == "GET"
            # An APIRoute has no implicit HEAD, paired or not.
            assert (await client.head("/items/1")).status_code == 405


async def test_async_only_method_on_a_legacy_path_leaves_the_legacy_405(tmp_path):
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/x")
    def get_x():
        return {"side": "legacy"}

    @migrated.api_route("/x", methods=["GET", "DELETE"])
    async def x_async():
        return {"side": "async"}

    gateway = make_gateway(tmp_path, legacy, migrated)
    assert gateway.entries["GET /x"].paired
    assert gateway.entries["DELETE /x"].implementations == [Implementation.ASYNC]
    async for client in started_client(gateway.app):
        assert (await client.delete("/x")).json() == {"side": "async"}
        assert (await client.get("/x")).json() == {"side": "legacy"}
        response = await client.patch("/x")
        assert (response.status_code, response.headers["allow"]) == (405, "GET")


async def test_canary_sends_a_sticky_share_to_async(tmp_path):
    legacy, migrated = routers()
    gateway = make_gateway(tmp_path, legacy, migrated)
    gateway.modes.set_mode("GET /items/{item_id}", "canary", 50)
    async for client in started_client(gateway.app):
        sides = {}
        for user in range(40):
            headers = {"x-user-id": f"user-{user}"}
            first = (await client.get("/items/1", headers=headers)).json()["side"]
            again = (await client.get("/items/1", headers=headers)).json()["side"]
            assert first == again
            sides[user] = first
    expected = {
        u: choose(Flag(Mode.CANARY, 50), salt="GET /items/{item_id}", request_key=f"user-{u}").value
        for u in range(40)
    }
    assert sides == expected
    assert set(sides.values()) == {"legacy", "async"}


async def test_legacy_async_def_route_is_served_on_the_loop_and_shown(tmp_path):
    legacy, migrated = APIRouter(), APIRouter()
    threads: dict[str, int] = {}

    @legacy.get("/health")
    async def health():
        threads["legacy"] = threading.get_ident()
        return {"side": "legacy"}

    @legacy.get("/sync")
    def sync_route():
        threads["sync"] = threading.get_ident()
        return {"side": "legacy"}

    @migrated.get("/health")
    async def health_async():
        return {"side": "async"}

    gateway = make_gateway(tmp_path, legacy, migrated)
    rows = {r["key"]: r for r in gateway.describe_routes()}
    assert rows["GET /health"]["kinds"] == {"legacy": "async def", "async": "async def"}
    assert rows["GET /sync"]["kinds"] == {"legacy": "def"}
    endpoint = gateway.entries["GET /health"].legacy
    assert endpoint is not None
    assert not isinstance(endpoint.app, LegacyApp)  # FastAPI's own handler, not the fast path
    assert endpoint.fallback == "the endpoint is 'async def': FastAPI runs it on the event loop"
    async for client in started_client(gateway.app):
        assert (await client.get("/health")).json() == {"side": "legacy"}
        assert (await client.get("/sync")).json() == {"side": "legacy"}
        gateway.modes.set_mode("GET /health", "async")
        assert (await client.get("/health")).json() == {"side": "async"}
    assert threads["legacy"] == threading.get_ident()  # on the event loop's thread
    assert threads["sync"] != threading.get_ident()  # the `def` route: a worker thread


def test_async_route_must_be_async_def(tmp_path):
    router = APIRouter()

    @router.get("/x")
    def plain():
        return {}

    gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'g.db'}"))
    gateway.include_async(router)
    with pytest.raises(
        RouteKindError,
        match=r"Async route 'GET /x' \(tests\.unit\.routing\.test_routing\..*plain\) "
        r"is a plain 'def'",
    ):
        gateway.build()


def test_duplicate_route_on_one_side_is_refused(tmp_path):
    one, two = APIRouter(), APIRouter()

    @one.get("/x")
    def a():
        return {}

    @two.get("/x")
    def b():
        return {}

    gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'g.db'}"))
    gateway.include_legacy(one)
    gateway.include_legacy(two)
    with pytest.raises(RouteError, match="defined twice on the legacy side"):
        gateway.build()


def test_bad_inputs_to_include(tmp_path):
    gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'g.db'}"))
    with pytest.raises(RouteError, match="expects a FastAPI app or an APIRouter"):
        gateway.include_legacy(object())  # type: ignore[arg-type]
    with pytest.raises(RouteError, match="expects an APIRouter"):
        gateway.include_async(FastAPI())  # type: ignore[arg-type]
    gateway.include_legacy(FastAPI())
    with pytest.raises(RouteError, match="second FastAPI app"):
        gateway.include_legacy(FastAPI())
    gateway.build()
    with pytest.raises(RouteError, match="built already"):
        gateway.include_async(APIRouter())


def test_unknown_key_and_mode_errors(tmp_path):
    legacy, migrated = routers()
    gateway = make_gateway(tmp_path, legacy, migrated)
    with pytest.raises(UnknownRouteError, match=r"Did you mean 'GET /items/\{item_id\}'") as info:
        gateway.modes.set_mode("GET /item/{item_id}", "async")
    assert info.value.suggestions == ["GET /items/{item_id}"]
    with pytest.raises(UnknownModeError, match="expected one of legacy, async, canary"):
        gateway.modes.set_mode("GET /items/{item_id}", "asynch")
    assert gateway.modes.get("GET /items/{item_id}") == Flag(Mode.LEGACY)


async def test_gateway_overrides_reach_routes_from_routers(tmp_path):
    def dep() -> str:
        return "real"

    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/who")
    def who(value: str = Depends(dep)):
        return {"value": value, "side": "legacy"}

    @migrated.get("/who")
    async def who_async(value: str = Depends(dep)):
        return {"value": value, "side": "async"}

    gateway = make_gateway(tmp_path, legacy, migrated)
    gateway.app.dependency_overrides[dep] = lambda: "override"
    async for client in started_client(gateway.app):
        for mode in ("legacy", "async"):
            gateway.modes.set_mode("GET /who", mode)
            assert (await client.get("/who")).json() == {"value": "override", "side": mode}


def test_choose_is_pure_and_monotonic():
    keys = [f"k{i}" for i in range(2000)]
    at = {
        p: {
            k
            for k in keys
            if choose(Flag(Mode.CANARY, p), salt="s", request_key=k) is Implementation.ASYNC
        }
        for p in (0, 10, 50, 100)
    }
    assert at[0] == set() and at[100] == set(keys)
    assert at[10] <= at[50]
    assert 150 <= len(at[10]) <= 250


async def test_an_implementation_that_raises_gives_the_framework_error(tmp_path):
    import httpx

    calls = {"legacy": 0, "async": 0}
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/boom")
    def boom():
        calls["legacy"] += 1
        raise RuntimeError("legacy failed")

    @migrated.get("/boom")
    async def boom_async():
        calls["async"] += 1
        raise RuntimeError("async failed")

    gateway = make_gateway(tmp_path, legacy, migrated)
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for mode in ("legacy", "async"):
            gateway.modes.set_mode("GET /boom", mode)
            response = await client.get("/boom")
            assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert calls == {"legacy": 1, "async": 1}
