"""The legacy fast path answers as FastAPI does, in one thread hand-off, holding no connection.

Most tests run twice over the same assertions: against the legacy app on bare FastAPI, and
through the gateway, whose fast path serves every route but those in FALLBACK_PATHS.
"""

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import anyio.to_thread
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import Gateway, Settings, SyncDB
from gateway._compat import PYDANTIC_V1, RouteView, route_views
from gateway.concurrency import ThreadTiming
from gateway.legacy.fast_path import LegacyApp, fast_path_blocker, legacy_app_for
from gateway.request_info import RequestInfo, current_request
from tests.conftest import started_client
from tests.support_legacy import (
    FALLBACK_PATHS,
    FUNCTION_SCOPE,
    JSON_LINES,
    build_legacy_app,
    call_raw,
    count_thread_hand_offs,
    needs_function_scope,
    needs_json_lines,
    skip_fastapis_own_yield_order,
)

pytestmark = pytest.mark.anyio


if PYDANTIC_V1:
    from pydantic import validator as field_validator
else:
    from pydantic import field_validator

# The bodies these tests spell out are pydantic 2's; test_error_bodies_are_fastapis compares
# the gateway's with FastAPI's own on either major.
pydantic2_bodies = pytest.mark.skipif(
    PYDANTIC_V1, reason="spells out pydantic 2's 422 bodies; pydantic 1's are compared whole"
)


@dataclass
class Served:
    kind: str  # "fastapi" or "gateway"
    app: ASGIApp  # with its lifespan running
    legacy: FastAPI
    events: list[str]
    client: httpx.AsyncClient


def _gateway(legacy: FastAPI, sqlite_url: str, **settings: Any) -> Gateway:
    gw = Gateway(Settings.from_environ({}, database_url=sqlite_url, **settings))
    gw.include_legacy(legacy)
    gw.build()
    return gw


@pytest.fixture(params=["fastapi", "gateway"])
async def served(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Served]:
    events: list[str] = []
    legacy = build_legacy_app(events)
    app: FastAPI = legacy
    if request.param == "gateway":
        gw = _gateway(legacy, sqlite_url)
        assert gw.app is not None
        app = gw.app
        for entry in gw.entries.values():
            assert entry.legacy is not None
            fast = isinstance(entry.legacy.app, LegacyApp)
            # Otherwise these tests would pass on FastAPI's own handler, proving nothing.
            assert fast == (entry.legacy.path not in FALLBACK_PATHS), entry.key
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Served(request.param, manager.app, legacy, events, client)


# -- what a client sees ----------------------------------------------------------------


def _without_doc_links(body: dict[str, Any]) -> dict[str, Any]:
    # FastAPI before 0.10x passes on pydantic's per-version "url" doc link in each error.
    return {"detail": [{k: v for k, v in e.items() if k != "url"} for e in body["detail"]]}


async def test_params_and_a_yield_dependency(served: Served) -> None:
    response = await served.client.get("/items/7", params={"q": 3})
    assert response.status_code == 200
    assert response.json() == {"item_id": 7, "q": 3, "limit": 10, "open": True}
    assert served.events == ["dependency enter", "dependency exit"]


async def test_request_cookie_and_header(served: Served) -> None:
    response = await served.client.get("/request", headers={"x-h": "hv", "cookie": "session_id=s1"})
    assert response.json() == {"path": "/request", "cookie": "s1", "h": "hv"}


@pydantic2_bodies
async def test_path_and_query_validation_errors(served: Served) -> None:
    response = await served.client.get("/items/abc", params={"q": "x", "limit": 0})
    assert response.status_code == 422
    assert _without_doc_links(response.json()) == {
        "detail": [
            {
                "type": "int_parsing",
                "loc": ["path", "item_id"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": "abc",
            },
            {
                "type": "int_parsing",
                "loc": ["query", "q"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": "x",
            },
            {
                "type": "greater_than_equal",
                "loc": ["query", "limit"],
                "msg": "Input should be greater than or equal to 1",
                "input": "0",
                "ctx": {"ge": 1},
            },
        ]
    }
    # Validation fails before the endpoint, after the dependency entered: it sees the error.
    skip_fastapis_own_yield_order(served.kind)
    assert served.events == [
        "dependency enter",
        "dependency saw RequestValidationError",
        "dependency exit",
    ]


@pydantic2_bodies
async def test_body_is_validated_and_status_code_kept(served: Served) -> None:
    created = await served.client.post("/things", json={"name": "box", "size": 2})
    assert created.status_code == 201
    assert created.json() == {"name": "box", "size": 2}

    invalid = await served.client.post("/things", json={"name": 5, "size": 0})
    assert invalid.status_code == 422
    assert _without_doc_links(invalid.json()) == {
        "detail": [
            {
                "type": "string_type",
                "loc": ["body", "name"],
                "msg": "Input should be a valid string",
                "input": 5,
            },
            {
                "type": "greater_than_equal",
                "loc": ["body", "size"],
                "msg": "Input should be greater than or equal to 1",
                "input": 0,
                "ctx": {"ge": 1},
            },
        ]
    }
    missing = await served.client.post("/things")
    assert missing.status_code == 422
    assert _without_doc_links(missing.json()) == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    }


@pydantic2_bodies
async def test_malformed_json_and_embedded_body(served: Served) -> None:
    broken = await served.client.post(
        "/things", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json() == {
        "detail": [
            {
                "type": "json_invalid",
                "loc": ["body", 9],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting value"},
            }
        ]
    }
    text_body = await served.client.post(
        "/things", content=b'{"name": "a", "size": 1}', headers={"content-type": "text/plain"}
    )
    assert text_body.status_code == 422
    assert text_body.json()["detail"][0]["type"] == "model_attributes_type"

    embedded = await served.client.post(
        "/things/embedded", params={"note": "n"}, json={"name": "a", "size": 1}
    )
    assert embedded.json() == {"thing": {"name": "a", "size": 1}, "note": "n"}


BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/items/abc", {"params": {"q": "x", "limit": 0}}),
    ("POST", "/things", {"json": {"name": 5, "size": 0}}),
    ("POST", "/things", {}),
    ("POST", "/things", {"content": b'{"name": ', "headers": {"content-type": "application/json"}}),
    ("POST", "/things", {"content": b'{"name": "a"}', "headers": {"content-type": "text/plain"}}),
    ("POST", "/things/embedded", {"json": {"name": "a"}}),
]


async def test_error_bodies_are_fastapis(sqlite_url: str) -> None:
    # The gateway's fast path validates itself: its 422 bodies must be the app's pydantic's.
    answers: dict[str, list[tuple[int, Any]]] = {}
    for kind in ("fastapi", "gateway"):
        legacy = build_legacy_app([])
        app: Any = _gateway(legacy, sqlite_url).app if kind == "gateway" else legacy
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                responses = [await client.request(m, u, **kw) for m, u, kw in BAD_REQUESTS]
        answers[kind] = [(r.status_code, r.json()) for r in responses]
    assert {status for status, _ in answers["fastapi"]} == {422}
    assert answers["gateway"] == answers["fastapi"]


async def test_response_model_filters_and_serializes(served: Served) -> None:
    client = served.client
    user = await client.get("/users/ada")
    assert user.json() == {"name": "ada", "email": "ada@example.com"}  # no password
    assert user.headers["content-type"] == "application/json"
    assert (await client.get("/model/include")).json() == {"a": 1, "c": 3}
    assert (await client.get("/model/exclude")).json() == {"a": 1, "c": 5}
    assert (await client.get("/model/unset")).json() == {"a": 1, "b": 2}
    assert (await client.get("/model/alias")).json() == {"fullName": "Ada Lovelace"}
    assert (await client.get("/model/no-alias")).json() == {"full_name": "Ada Lovelace"}


async def test_invalid_response_is_a_server_error(served: Served) -> None:
    response = await served.client.get("/model/bad")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


async def test_response_parameter_sets_status_headers_and_cookies(served: Served) -> None:
    response = await served.client.get("/response-param")
    assert response.status_code == 202
    assert response.json() == {"ok": True}
    assert response.headers["x-extra"] == "1"
    assert response.headers["set-cookie"] == "flavour=oat; Path=/; SameSite=lax"


async def test_http_exception_and_custom_handler(served: Served) -> None:
    missing = await served.client.get("/http-error")
    assert (missing.status_code, missing.json()) == (404, {"detail": "nope"})
    assert missing.headers["x-why"] == "missing"

    teapot = await served.client.get("/teapot")
    assert (teapot.status_code, teapot.json()) == (418, {"teapot": "short and stout"})
    assert teapot.headers["x-teapot"] == "yes"


async def test_yield_dependency_sees_the_endpoints_exception(served: Served) -> None:
    conflict = await served.client.get("/dependency-sees-http-error")
    assert (conflict.status_code, conflict.json()) == (409, {"detail": "conflict"})
    teapot = await served.client.get("/dependency-sees-teapot")
    assert (teapot.status_code, teapot.json()) == (418, {"teapot": "in a dependency"})
    assert served.events == [
        "dependency enter",
        "dependency saw HTTPException",
        "dependency exit",
        "dependency enter",
        "dependency saw Teapot",
        "dependency exit",
    ]


async def test_a_dependency_that_swallows_the_error_gives_a_500(served: Served) -> None:
    response = await served.client.get("/swallowed")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert served.events == ["dependency swallowed the error"]


async def test_route_dependency_rejects_before_the_endpoint(served: Served) -> None:
    rejected = await served.client.get("/guarded")
    assert (rejected.status_code, rejected.json()) == (401, {"detail": "bad key"})
    assert rejected.headers["www-authenticate"] == "Key"
    assert (await served.client.get("/guarded", headers={"x-key": "k"})).json() == {"ok": True}


async def test_nested_dependencies_share_one_cached_instance(served: Served) -> None:
    response = await served.client.get("/cached")
    assert response.json() == {"same": True, "fresh": True}


async def test_dependency_overrides_set_on_the_legacy_app(served: Served) -> None:
    get_user = served.legacy.state.overridable
    assert (await served.client.get("/me", headers={"x-token": "t"})).json() == {"user": "user:t"}

    served.legacy.dependency_overrides[get_user] = lambda: "stub"
    assert (await served.client.get("/me")).json() == {"user": "stub"}

    async def async_stub() -> str:
        return "async stub"

    async def async_with_param(who: str = "nobody") -> str:
        return f"async {who}"

    # A request-only coroutine is awaited on the loop; one with parameters needs FastAPI's
    # own solver, so requests fall back while that override is set. Same answers.
    served.legacy.dependency_overrides[get_user] = async_stub
    assert (await served.client.get("/me")).json() == {"user": "async stub"}
    served.legacy.dependency_overrides[get_user] = async_with_param
    assert (await served.client.get("/me", params={"who": "x"})).json() == {"user": "async x"}

    served.legacy.dependency_overrides.clear()
    assert (await served.client.get("/me")).json() == {"user": "user:none"}


async def test_request_only_async_dependencies_and_security(served: Served) -> None:
    assert (await served.client.get("/async-dep")).json() == {"value": "from async"}
    assert (await served.client.get("/scoped")).json() == {"scopes": "read"}
    anonymous = await served.client.get("/whoami")
    assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "Not authenticated"})
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert served.events == []  # the scheme refused before get_resource was entered
    known = await served.client.get("/whoami", headers={"authorization": "Bearer t0k"})
    assert known.json() == {"token": "t0k", "open": True, "scopes": ["me"]}


async def test_request_only_async_dependencies_are_awaited_first_in_the_gateway(
    served: Served,
) -> None:
    anonymous = await served.client.get("/whoami-db-first")
    assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "Not authenticated"})
    if served.kind == "gateway":  # the scheme ran on the loop before the hand-off
        assert served.events == []
    else:
        entered = ["dependency enter", "dependency saw HTTPException", "dependency exit"]
        assert served.events == entered
    known = await served.client.get("/whoami-db-first", headers={"authorization": "Bearer k"})
    assert known.json() == {"token": "k"}


async def test_routes_the_fast_path_leaves_to_fastapi_still_work(served: Served) -> None:
    assert (await served.client.get("/async-yield")).json() == {"value": "from async yield"}
    params = {"q": "given"}
    assert (await served.client.get("/async-param", params=params)).json() == {"value": "given"}
    custom = await served.client.get("/custom-class")
    assert (custom.json(), custom.headers["x-logged"]) == ({"ok": True}, "yes")
    assert (await served.client.get("/own-handler-class")).content == b"own"


@needs_json_lines
async def test_json_lines_route_is_left_to_fastapi(served: Served) -> None:
    assert (await served.client.get("/jsonl")).text == '{"n":1}\n'


async def test_returning_a_response_keeps_it_and_its_background(served: Served) -> None:
    response = await served.client.get("/plain")
    assert (response.status_code, response.text) == (203, "hi")
    assert response.headers["x-direct"] == "1"
    assert served.events == ["background"]


async def test_background_tasks_run_after_the_response(served: Served) -> None:
    status, body = await call_raw(served.app, "/background", served.events)
    assert (status, body) == (200, b'{"ok":true}')
    assert served.events == ["response.start", "response.body", "background"]


async def test_streamed_response_reads_its_dependency_before_it_closes(served: Served) -> None:
    skip_fastapis_own_yield_order(served.kind)
    status, body = await call_raw(served.app, "/stream", served.events)
    assert (status, body) == (200, b"open")
    assert served.events == [
        "dependency enter",
        "response.start",
        "response.body",
        "dependency exit",
    ]


@needs_function_scope
async def test_function_scope_dependency_closes_before_the_response(served: Served) -> None:
    status, body = await call_raw(served.app, "/function-scope", served.events)
    assert (status, body) == (200, b'{"open":true}')
    assert served.events == [
        "dependency enter",
        "dependency exit",
        "response.start",
        "response.body",
    ]


async def test_a_kept_route_closes_its_dependency_after_the_response(served: Served) -> None:
    status, body = await call_raw(served.app, "/kept", served.events)
    assert (status, body) == (200, b'{"open":true}')
    skip_fastapis_own_yield_order("fastapi")  # a kept route has FastAPI's order on both
    assert served.events == [
        "dependency enter",
        "response.start",
        "response.body",
        "dependency exit",
    ]


async def test_request_scope_dependency_closes_before_the_response_in_the_gateway(
    served: Served,
) -> None:
    status, _ = await call_raw(served.app, "/items/1", served.events)
    assert status == 200
    skip_fastapis_own_yield_order(served.kind)
    if served.kind == "gateway":  # the cure for FastAPI #3205: nothing held while sending
        expected = ["dependency enter", "dependency exit", "response.start", "response.body"]
    else:
        expected = ["dependency enter", "response.start", "response.body", "dependency exit"]
    assert served.events == expected


async def test_background_tasks_run_after_the_dependency_closed_in_the_gateway(
    served: Served,
) -> None:
    status, _ = await call_raw(served.app, "/background-with-dependency", served.events)
    assert status == 200
    skip_fastapis_own_yield_order(served.kind)
    if served.kind == "gateway":  # a background task must open its own session
        expected = ["dependency enter", "dependency exit", "response.start", "response.body"]
        expected.append("background, resource closed=True")
    else:
        expected = ["dependency enter", "response.start", "response.body"]
        expected += ["background, resource closed=False", "dependency exit"]
    assert served.events == expected


@pytest.mark.parametrize("kind", ["fastapi", "gateway"])
async def test_overrides_reach_routes_mounted_from_a_router(kind: str, sqlite_url: str) -> None:
    router = APIRouter(prefix="/v1")

    def get_flavour() -> Iterator[str]:
        yield "vanilla"

    @router.get("/flavour")
    def flavour(value: Annotated[str, Depends(get_flavour)]) -> dict[str, str]:
        return {"flavour": value}

    if kind == "gateway":
        gw = Gateway(Settings.from_environ({}, database_url=sqlite_url))
        gw.include_legacy(router)
        app = gw.build()
        assert isinstance(gw.entries["GET /v1/flavour"].legacy.app, LegacyApp)  # type: ignore[union-attr]
    else:
        app = FastAPI()
        app.include_router(router)
    async for client in started_client(app):
        assert (await client.get("/v1/flavour")).json() == {"flavour": "vanilla"}
        app.dependency_overrides[get_flavour] = lambda: "oat"
        assert (await client.get("/v1/flavour")).json() == {"flavour": "oat"}


# -- thread hand-offs ------------------------------------------------------------------


async def test_one_thread_hand_off_per_request(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_thread_hand_offs(monkeypatch)
    response = await served.client.get("/items/5")
    assert response.status_code == 200
    # FastAPI: enter the dependency, run the endpoint, validate the response (the return
    # annotation is its model), leave the dependency; the gateway: all of it in one.
    assert len(calls) == (1 if served.kind == "gateway" else 4), calls
    calls.clear()
    assert (await served.client.get("/users/x")).status_code == 200
    assert len(calls) == (1 if served.kind == "gateway" else 2), calls


async def test_thread_timing_reaches_the_request_info(sqlite_url: str) -> None:
    seen: list[Any] = []
    legacy = build_legacy_app([])

    class Capture:  # inside the gateway's layers: sees the RequestInfo the route filled
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            # The metrics middleware sets one when installed; else do it as it would.
            info = current_request.get()
            token = None if info else current_request.set(info := RequestInfo())
            try:
                await self.app(scope, receive, send)
            finally:
                if token is not None:
                    current_request.reset(token)
            seen.append(info)

    legacy.add_middleware(Capture)
    gw = _gateway(legacy, sqlite_url)
    async with LifespanManager(gw.app) as manager:  # type: ignore[arg-type]
        for path in ("/items/1", "/http-error", "/async-yield"):
            await call_raw(manager.app, path, [])
    threads = [info.thread for info in seen]
    assert [type(t) for t in threads[:2]] == [ThreadTiming, ThreadTiming]
    assert threads[2] is None  # FastAPI's own handler measures nothing


async def test_everything_sync_runs_in_one_worker_thread(sqlite_url: str) -> None:
    threads: list[int] = []
    legacy = FastAPI()

    def dependency() -> Any:
        threads.append(threading.get_ident())
        yield
        threads.append(threading.get_ident())

    class Out(BaseModel):
        x: int

        @field_validator("x")
        @classmethod
        def record(cls, value: int) -> int:
            threads.append(threading.get_ident())
            return value

    @legacy.get("/x", response_model=Out)
    def endpoint(_: None = Depends(dependency)) -> Any:
        threads.append(threading.get_ident())
        return {"x": 1}

    gw = _gateway(legacy, sqlite_url)
    async with LifespanManager(gw.app) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/x")).json() == {"x": 1}
    assert len(threads) == 4
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()


# -- the build-time decision -----------------------------------------------------------


def _views(app: FastAPI) -> dict[str, RouteView]:
    found = (v for v in route_views(app.routes) if isinstance(v, RouteView))
    return {v.path: v for v in found if v.path in _PATHS}


_PATHS = {
    "/items/{item_id}",
    "/me",
    "/plain",
    "/stream",
    "/function-scope",
    "/async-dep",
    "/scoped",
    "/whoami",
    "/async-yield",
    "/async-param",
    "/custom-class",
    "/own-handler-class",
    "/jsonl",
    "/kept",
}


def test_fast_path_blocker_names_why_a_route_falls_back() -> None:
    views = _views(build_legacy_app([]))
    blockers = {path: fast_path_blocker(view) for path, view in views.items()}
    local = "tests.support_legacy.build_legacy_app.<locals>"
    expected = {
        "/items/{item_id}": None,
        "/me": None,
        "/plain": None,
        "/stream": None,
        "/function-scope": None,
        "/async-dep": None,
        "/scoped": None,
        "/whoami": None,
        "/async-yield": f"{local}.async_resource is an async dependency with yield",
        "/async-param": f"{local}.async_param is async and takes request parameters, a "
        "Response, BackgroundTasks, or sync dependencies that take more than the request",
        "/custom-class": None,
        "/own-handler-class": "route class OwnHandlerRoute overrides get_route_handler "
        "without calling super().get_route_handler()",
        "/jsonl": "the endpoint is a generator (a streamed response)",
        "/kept": "the endpoint is marked with gateway.legacy.keep_fastapi_handler",
    }
    if not JSON_LINES:
        del expected["/jsonl"]
    if not FUNCTION_SCOPE:
        del expected["/function-scope"]
    assert blockers == expected
    for path, view in views.items():
        app, reason = legacy_app_for(view)
        assert reason == blockers[path]
        assert isinstance(app, LegacyApp) == (blockers[path] is None)
        if blockers[path] is not None:
            assert app is view.app


# -- no pooled connection held while waiting for a thread ------------------------------


def _pool_app() -> FastAPI:
    legacy = FastAPI()

    class Row(BaseModel):
        n: int

    @legacy.get("/rows/{n}", response_model=Row)
    def read_row(n: int, db: SyncDB) -> Any:
        # pg_sleep keeps each request on its connection long enough to overlap.
        value = db.execute(text("SELECT :n FROM pg_sleep(0.002)"), {"n": n}).scalar_one()
        return {"n": value}

    return legacy


@pytest.mark.postgres
async def test_more_requests_than_connections_all_succeed(postgres_url: str) -> None:
    legacy = _pool_app()
    # 4 threads, 2 connections: under FastAPI's four hand-offs a request holding a
    # connection waits for a thread while every thread waits for a connection.
    gw = Gateway(
        Settings.from_environ(
            {},
            database_url=postgres_url,
            pool_size=2,
            max_overflow=0,
            pool_timeout=20,
            threadpool_size=4,
        )
    )
    gw.include_legacy(legacy)
    gw.build()
    pool = gw.database.sync_engine.pool
    statuses: list[int] = []
    async with LifespanManager(gw.app) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def one(n: int) -> None:
                response = await client.get(f"/rows/{n}")
                assert response.json() == {"n": n}
                statuses.append(response.status_code)

            async with anyio.create_task_group() as group:
                for n in range(100):
                    group.start_soon(one, n)
            assert pool.checkedout() == 0  # type: ignore[attr-defined]

            # The session's connection is back in the pool before the response starts.
            seen: list[int] = []

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    seen.append(pool.checkedout())  # type: ignore[attr-defined]

            events: list[str] = []
            status, body = await call_raw(_SendSpy(manager.app, sending), "/rows/3", events)
            assert (status, body, seen) == (200, b'{"n":3}', [0])
    assert statuses == [200] * 100


class _SendSpy:
    """Calls `spy(message)` before each message the app sends."""

    def __init__(self, app: ASGIApp, spy: Any) -> None:
        self.app = app
        self.spy = spy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def spying(message: Any) -> None:
            await self.spy(message)
            await send(message)

        await self.app(scope, receive, spying)
