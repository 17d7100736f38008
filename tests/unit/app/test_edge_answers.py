"""The composed app answers every request the legacy app alone would answer, exactly.

One table of edge requests (405 with its `Allow`, HEAD, OPTIONS with and without a CORS
preflight, trailing-slash redirects both ways, 404s, a mounted sub-app, static files,
HTTPExceptions through the app's handlers, an `async def` auth dependency on a sync
session generator, a route class wrapping FastAPI's handler) runs against the legacy app
alone and through the gateway: without twins, and with async twins of some routes in legacy
and in async mode.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse

from gateway import Gateway, Settings
from gateway.legacy.fast_path import LegacyApp
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

ORIGIN = "https://shop.example"
PREFLIGHT = {"origin": ORIGIN, "access-control-request-method": "PUT"}
COMPARED_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "etag",
    "x-why",
    "vary",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "www-authenticate",
    "last-modified",
    "cache-control",
)


def edge_app(static_dir: Path, *, custom_handlers: bool, redirect_slashes: bool) -> FastAPI:
    """A legacy app with one of each edge: no engine, the answers are all that matter."""
    app = FastAPI(redirect_slashes=redirect_slashes)
    app.add_middleware(
        CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["GET", "PUT"], allow_headers=["x-k"]
    )
    if custom_handlers:

        @app.exception_handler(StarletteHTTPException)
        async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
            return PlainTextResponse(
                f"custom {exc.status_code}: {exc.detail}",
                status_code=exc.status_code,
                headers=exc.headers,
            )

    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @items.put("/{item_id}")
    def put_item(item_id: int) -> dict[str, int]:
        return {"put": item_id}

    app.include_router(items)

    @app.api_route("/multi", methods=["GET", "POST", "DELETE"])
    def multi(request: Request) -> dict[str, str]:
        return {"method": request.method}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/slash/")
    def with_slash() -> dict[str, bool]:
        return {"slash": True}

    @app.get("/noslash")
    def without_slash() -> dict[str, bool]:
        return {"slash": False}

    # A route on another path between two routes on one path: order decides.
    @app.get("/orders/{ref}")
    def get_order(ref: str) -> dict[str, str]:
        return {"get": ref}

    @app.post("/orders/fixed")
    def post_fixed() -> dict[str, str]:
        return {"post": "fixed"}

    @app.post("/orders/{ref}")
    def post_order(ref: str) -> dict[str, str]:
        return {"post_ref": ref}

    @app.get("/gone")
    def gone() -> None:
        raise HTTPException(status_code=404, detail="no such thing", headers={"x-why": "gone"})

    @app.get("/conflict")
    def conflict() -> None:
        raise HTTPException(status_code=409, detail="busy")

    async def plain(request: Request) -> Response:
        return PlainTextResponse("plain")

    app.add_route("/plain", plain, methods=["GET"])  # a Starlette Route: it answers HEAD

    sub = FastAPI()

    @sub.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "sub"}

    app.mount("/sub", sub)
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    app.include_router(account_router())
    return app


class CachedRoute(APIRoute):
    """Wraps FastAPI's handler to set caching headers from the JSON body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def cached(request: Request) -> Response:
            response = await handler(request)
            if b'"updated"' in response.body:
                response.headers["last-modified"] = "Fri, 02 Jan 2026 03:04:05 GMT"
                response.headers["cache-control"] = "private, max-age=60"
            return response

        return cached


def account_router() -> APIRouter:
    """Real apps' shapes: an async auth dependency on a sync session generator."""
    events: list[str] = []
    sessions: list[dict[str, Any]] = []

    def generate_session() -> Iterator[dict[str, Any]]:
        session = {"number": len(sessions), "open": True}
        sessions.append(session)
        events.append(f"session {session['number']} enter")
        try:
            yield session
        except Exception as exc:
            events.append(f"session {session['number']} saw {type(exc).__name__}")
            raise
        finally:
            session["open"] = False
            events.append(f"session {session['number']} exit")

    def get_audit() -> Iterator[None]:
        events.append("audit enter")
        yield
        events.append("audit exit")

    async def get_current_user(
        db: dict[str, Any] = Depends(generate_session),
        token: str | None = Security(APIKeyHeader(name="x-token", auto_error=False)),
    ) -> dict[str, Any]:
        events.append(f"auth on session {db['number']}")
        if token == "teapot":
            raise HTTPException(status_code=418, detail="short and stout")
        if token != "good":
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        return {"name": "ada", "session": db}

    router = APIRouter(prefix="/account", dependencies=[Depends(get_current_user)])

    @router.get("")
    def account(
        user: dict[str, Any] = Depends(get_current_user),
        db: dict[str, Any] = Depends(generate_session),
        _: None = Depends(get_audit),
    ) -> dict[str, Any]:
        return {"name": user["name"], "same_session": user["session"] is db, "open": db["open"]}

    cached = APIRouter(prefix="/cached", route_class=CachedRoute)

    @cached.get("/doc")
    def doc(user: dict[str, Any] = Depends(get_current_user)) -> dict[str, str]:
        return {"updated": "2026-01-02", "for": user["name"]}

    @cached.get("/events")
    def log() -> list[str]:
        return events

    router.include_router(cached)
    return router


def twins() -> APIRouter:
    """Async twins answering like the legacy routes, plus a header naming the side."""
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item_async(item_id: int, response: Response) -> dict[str, int]:
        response.headers["x-side"] = "async"
        return {"id": item_id}

    @router.get("/multi")
    async def multi_async(request: Request, response: Response) -> dict[str, str]:
        response.headers["x-side"] = "async"
        return {"method": request.method}

    @router.get("/health")
    async def health_async(response: Response) -> dict[str, bool]:
        response.headers["x-side"] = "async"
        return {"ok": True}

    @router.post("/orders/{ref}")
    async def post_order_async(ref: str, response: Response) -> dict[str, str]:
        response.headers["x-side"] = "async"
        return {"post_ref": ref}

    return router


PAIRED = ["GET /items/{item_id}", "GET /multi", "GET /health", "POST /orders/{ref}"]

REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/items/1", {}),
    ("GET", "/items/abc", {}),
    ("HEAD", "/items/1", {}),
    ("PUT", "/items/1", {}),
    ("DELETE", "/items/1", {}),
    ("PATCH", "/items/1", {}),
    ("OPTIONS", "/items/1", {}),
    ("OPTIONS", "/items/1", PREFLIGHT),
    ("OPTIONS", "/items/1", {**PREFLIGHT, "access-control-request-headers": "x-k"}),
    ("OPTIONS", "/items/1", {**PREFLIGHT, "origin": "https://other.example"}),
    ("OPTIONS", "/items/1", {**PREFLIGHT, "access-control-request-method": "DELETE"}),
    ("OPTIONS", "/nope", PREFLIGHT),
    ("GET", "/items/1", {"origin": ORIGIN}),
    ("DELETE", "/items/1", {"origin": ORIGIN}),
    ("GET", "/multi", {}),
    ("POST", "/multi", {}),
    ("DELETE", "/multi", {}),
    ("PUT", "/multi", {}),
    ("HEAD", "/multi", {}),
    ("OPTIONS", "/multi", {}),
    ("GET", "/health", {}),
    ("HEAD", "/health", {}),
    ("POST", "/health", {}),
    ("GET", "/slash/", {}),
    ("GET", "/slash", {}),
    ("GET", "/slash?q=1", {}),
    ("POST", "/slash", {}),
    ("GET", "/noslash", {}),
    ("GET", "/noslash/", {}),
    ("GET", "/orders/x", {}),
    ("POST", "/orders/fixed", {}),
    ("POST", "/orders/x", {}),
    ("DELETE", "/orders/fixed", {}),
    ("PUT", "/orders/x", {}),
    ("GET", "/gone", {}),
    ("GET", "/conflict", {}),
    ("GET", "/plain", {}),
    ("HEAD", "/plain", {}),
    ("POST", "/plain", {}),
    ("GET", "/", {}),
    ("GET", "/nope", {}),
    ("HEAD", "/nope", {}),
    ("POST", "/nope", {}),
    ("GET", "/nope/", {}),
    ("GET", "/sub/hello", {}),
    ("POST", "/sub/hello", {}),
    ("GET", "/sub/nope", {}),
    ("GET", "/sub", {}),
    ("GET", "/static/hello.txt", {}),
    ("HEAD", "/static/hello.txt", {}),
    ("POST", "/static/hello.txt", {}),
    ("GET", "/static/missing.txt", {}),
    ("GET", "/static", {}),
    ("GET", "/account", {}),
    ("GET", "/account", {"x-token": "nope"}),
    ("GET", "/account", {"x-token": "teapot"}),
    ("GET", "/account", {"x-token": "good"}),
    ("GET", "/account/cached/doc", {"x-token": "good"}),
    ("GET", "/account/cached/doc", {}),
    ("HEAD", "/account", {"x-token": "good"}),
    ("GET", "/account/cached/events", {"x-token": "good"}),
]

KEYS = [(method, path, tuple(headers.items())) for method, path, headers in REQUESTS]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    allow: frozenset[str] | None  # Starlette joins a set: the order is not part of it
    headers: tuple[tuple[str, str | None], ...]


async def answers(
    app: FastAPI, after_start: Callable[[], None] = lambda: None
) -> tuple[list[Answer], list[str | None]]:
    """Each request's answer, and the `x-side` header the async twins add."""
    found, sides = [], []
    async for client in started_client(app):
        after_start()
        for method, path, headers in REQUESTS:
            response = await client.request(method, path, headers=headers)
            allow = response.headers.get("allow")
            found.append(
                Answer(
                    response.status_code,
                    response.content,
                    frozenset(m.strip() for m in allow.split(",")) if allow else None,
                    tuple((name, response.headers.get(name)) for name in COMPARED_HEADERS),
                )
            )
            sides.append(response.headers.get("x-side"))
    return found, sides


def mismatches(alone: list[Answer], composed: list[Answer]) -> list[str]:
    return [
        f"{method} {path} {headers or ''}: legacy app alone {want}, through the gateway {got}"
        for (method, path, headers), want, got in zip(REQUESTS, alone, composed, strict=True)
        if want != got
    ]


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "static"
    directory.mkdir()
    (directory / "hello.txt").write_text("hi from static")
    return directory


def gateway_for(tmp_path: Path, legacy: FastAPI, *async_routers: APIRouter) -> Gateway:
    settings = Settings.from_environ({}, database_url=f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    gateway = Gateway(settings, registry=CollectorRegistry())
    gateway.include_legacy(legacy)
    for router in async_routers:
        gateway.include_async(router)
    gateway.build()
    return gateway


CONFIGS = {
    "default-handlers": {"custom_handlers": False, "redirect_slashes": True},
    "custom-handlers-no-redirects": {"custom_handlers": True, "redirect_slashes": False},
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("twins_mode", [None, "legacy", "async"])
async def test_composed_app_answers_as_the_legacy_app_alone(
    tmp_path: Path, static_dir: Path, config: str, twins_mode: str | None
) -> None:
    options: dict[str, Any] = CONFIGS[config]
    alone, _ = await answers(edge_app(static_dir, **options))
    routers = [twins()] if twins_mode else []
    gateway = gateway_for(tmp_path, edge_app(static_dir, **options), *routers)

    def flip() -> None:
        # Set after startup: the flag store's first load would put stored modes back.
        for key in PAIRED if twins_mode else ():
            gateway.modes.set_mode(key, twins_mode)

    assert gateway.app is not None
    for key in ("GET /account", "GET /account/cached/doc"):  # the shapes on the fast path
        assert isinstance(gateway.entries[key].legacy.app, LegacyApp)  # type: ignore[union-attr]
    composed, sides = await answers(gateway.app, flip)
    assert mismatches(alone, composed) == []
    served_async = {
        (m, p) for (m, p, _), side in zip(REQUESTS, sides, strict=True) if side == "async"
    }
    if twins_mode == "async":
        assert served_async == {
            ("GET", "/items/1"),
            ("GET", "/multi"),
            ("GET", "/health"),
            ("POST", "/orders/x"),
        }
    else:
        assert served_async == set()


async def test_the_table_holds_the_edges_it_is_meant_to(tmp_path: Path, static_dir: Path) -> None:
    # Equality alone would also hold if both sides were wrong; pin what the edges are.
    app = edge_app(static_dir, custom_handlers=False, redirect_slashes=True)
    got = dict(zip(KEYS, (await answers(app))[0], strict=True))

    def answer(method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
        return got[(method, path, tuple((headers or {}).items()))]

    not_allowed = answer("DELETE", "/items/1")
    assert (not_allowed.status, not_allowed.body) == (405, b'{"detail":"Method Not Allowed"}')
    assert not_allowed.allow == {"GET"}  # the first route on the path, not every method on it
    assert answer("HEAD", "/items/1").status == 405  # an APIRoute has no implicit HEAD
    assert answer("HEAD", "/plain").status == 200  # a Starlette Route has one
    assert answer("PUT", "/multi").allow == {"GET", "POST", "DELETE"}
    assert answer("POST", "/orders/fixed").body == b'{"post":"fixed"}'
    assert dict(answer("GET", "/slash").headers)["location"] == "http://test/slash/"
    assert dict(answer("GET", "/noslash/").headers)["location"] == "http://test/noslash"
    assert answer("OPTIONS", "/items/1", PREFLIGHT).status == 200
    assert answer("OPTIONS", "/items/1").status == 405
    assert answer("GET", "/static/hello.txt").body == b"hi from static"
    assert answer("POST", "/sub/hello").status == 405

    custom = edge_app(static_dir, custom_handlers=True, redirect_slashes=False)
    got = dict(zip(KEYS, (await answers(custom))[0], strict=True))
    assert answer("DELETE", "/items/1").body == b"custom 405: Method Not Allowed"
    assert answer("GET", "/nope").body == b"custom 404: Not Found"
    assert answer("GET", "/slash").status == 404
    assert answer("GET", "/account").body == b"custom 401: Not authenticated"
    assert answer("GET", "/account", {"x-token": "teapot"}).status == 418


async def test_the_table_holds_the_async_dependency_shapes(
    tmp_path: Path, static_dir: Path
) -> None:
    app = edge_app(static_dir, custom_handlers=False, redirect_slashes=True)
    got = dict(zip(KEYS, (await answers(app))[0], strict=True))

    def answer(method: str, path: str, token: str | None = None) -> Answer:
        return got[(method, path, (("x-token", token),) if token else ())]

    refused = answer("GET", "/account")
    assert (refused.status, dict(refused.headers)["www-authenticate"]) == (401, "Bearer")
    assert answer("GET", "/account", "teapot").body == b'{"detail":"short and stout"}'
    ok = answer("GET", "/account", "good")
    assert ok.body == b'{"name":"ada","same_session":true,"open":true}'
    doc = dict(answer("GET", "/account/cached/doc", "good").headers)
    assert (doc["last-modified"], doc["cache-control"]) == (
        "Fri, 02 Jan 2026 03:04:05 GMT",
        "private, max-age=60",
    )
    assert answer("GET", "/account/cached/doc").status == 401
    events = json.loads(answer("GET", "/account/cached/events", "good").body)
    refused_events = ["auth on session 0", "session 0 saw HTTPException", "session 0 exit"]
    assert events[:4] == ["session 0 enter", *refused_events]
    served = ["session 3 enter", "auth on session 3", "audit enter", "audit exit"]
    assert events[12:17] == [*served, "session 3 exit"]
