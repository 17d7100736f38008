"""An existing legacy FastAPI app object mounts unchanged and answers exactly as before.

Every assertion runs twice: against the legacy app on its own, and through the gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from gateway import Gateway, Settings
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


class Teapot(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class Item(BaseModel):
    id: int
    label: str


def build_legacy_app(database_path: str) -> tuple[FastAPI, object, list[str]]:
    """A legacy app as teams have them: own engine and get_db, middleware, handlers, hooks."""
    engine = create_engine(f"sqlite:///{database_path}")
    SessionLocal = sessionmaker(engine)
    events: list[str] = []

    def get_db() -> Iterator[Session]:
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()

    def require_api_key(x_api_key: str = Header(default="")) -> None:
        if x_api_key != "k":
            raise HTTPException(status_code=401, detail="bad key")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS items (id INTEGER, label TEXT)"))
            connection.execute(text("DELETE FROM items"))
            connection.execute(text("INSERT INTO items VALUES (1, 'one'), (2, 'two')"))
        app.state.started = True
        events.append("startup")
        yield {"greeting": "hello"}
        events.append("shutdown")
        engine.dispose()  # as a tidy app does; Python 3.13 warns of a never-closed sqlite file

    app = FastAPI(
        title="Legacy shop", version="7.1", lifespan=lifespan, openapi_url="/api/schema.json"
    )
    app.add_middleware(CORSMiddleware, allow_origins=["https://shop.example"], allow_methods=["*"])

    @app.middleware("http")
    async def stamp(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-stamp"] = response.headers.get("x-stamp", "") + "outer"
        return response

    @app.exception_handler(Teapot)
    async def teapot_handler(request: Request, exc: Teapot):
        return JSONResponse(status_code=418, content={"teapot": exc.name})

    items = APIRouter()

    @items.get("/{item_id}", response_model=Item, operation_id="getItem")
    def read_item(item_id: int, db: Session = Depends(get_db)):
        row = db.execute(text("SELECT id, label FROM items WHERE id = :i"), {"i": item_id}).first()
        if row is None:
            raise HTTPException(status_code=404, detail="no such item", headers={"x-why": "gone"})
        return {"id": row.id, "label": row.label, "secret": "dropped by response_model"}

    @items.get("/{item_id}/brew")
    def brew(item_id: int):
        raise Teapot(f"item-{item_id}")

    app.include_router(items, prefix="/v1/items", dependencies=[Depends(require_api_key)])

    static = Path(database_path).parent / "static"
    static.mkdir(exist_ok=True)
    (static / "hello.txt").write_text("hi from static")
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.websocket("/ws")
    async def echo(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(f"echo {await websocket.receive_text()}")
        await websocket.close()

    @app.get("/health")
    def health(request: Request):
        return {"started": request.app.state.started, "greeting": request.state.greeting}

    @app.get("/ready")
    async def ready(request: Request):  # real apps mix async def routes in
        return {"ready": True, "greeting": request.state.greeting}

    return app, get_db, events


@pytest.fixture(params=["bare", "gateway"])
def variant(request) -> str:
    return request.param


@pytest.fixture
def legacy(tmp_path):
    return build_legacy_app(str(tmp_path / "legacy.db"))


@pytest.fixture
async def client(variant, legacy, tmp_path):
    legacy_app, _, _ = legacy
    if variant == "bare":
        app = legacy_app
    else:
        gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'gw.db'}"))
        gateway.include_legacy(legacy_app)
        app = gateway.build()
    async for client in started_client(app):
        yield client


HEADERS = {"x-api-key": "k"}


async def test_route_with_own_engine_and_response_model(client):
    response = await client.get("/v1/items/1", headers=HEADERS)
    assert response.status_code == 200
    assert response.json() == {"id": 1, "label": "one"}
    assert response.headers["x-stamp"] == "outer"


async def test_include_time_dependency(client):
    response = await client.get("/v1/items/1")
    assert (response.status_code, response.json()) == (401, {"detail": "bad key"})


async def test_http_exception_with_headers(client):
    response = await client.get("/v1/items/9", headers=HEADERS)
    assert (response.status_code, response.json()) == (404, {"detail": "no such item"})
    assert response.headers["x-why"] == "gone"


async def test_custom_exception_handler(client):
    response = await client.get("/v1/items/3/brew", headers=HEADERS)
    assert (response.status_code, response.json()) == (418, {"teapot": "item-3"})


async def test_validation_error_body(client):
    response = await client.get("/v1/items/abc", headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "item_id"]


async def test_cors_middleware(client):
    response = await client.options(
        "/v1/items/1",
        headers={"origin": "https://shop.example", "access-control-request-method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example"


async def test_app_level_route_sees_lifespan_state(client):
    response = await client.get("/health")
    assert response.json() == {"started": True, "greeting": "hello"}


async def test_an_async_def_legacy_route_is_served_as_it_is(client):
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "greeting": "hello"}


async def test_dependency_overrides_from_legacy_tests(client, legacy):
    legacy_app, get_db, _ = legacy

    class FakeResult:
        def first(self):
            return type("Row", (), {"id": 5, "label": "fake"})()

    class FakeSession:
        def execute(self, *args, **kwargs):
            return FakeResult()

    legacy_app.dependency_overrides[get_db] = lambda: FakeSession()
    try:
        response = await client.get("/v1/items/123", headers=HEADERS)
    finally:
        legacy_app.dependency_overrides.clear()
    assert response.json() == {"id": 5, "label": "fake"}


async def test_openapi_url_and_operation_ids(client):
    schema = (await client.get("/api/schema.json")).json()
    assert schema["info"] == {"title": "Legacy shop", "version": "7.1"}
    assert schema["paths"]["/v1/items/{item_id}"]["get"]["operationId"] == "getItem"
    assert (await client.get("/openapi.json")).status_code == 404


async def test_unknown_path_is_404(client):
    response = await client.get("/nope", headers=HEADERS)
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


async def test_lifespan_runs_once_each_way(legacy, tmp_path):
    legacy_app, _, events = legacy
    gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'gw.db'}"))
    gateway.include_legacy(legacy_app)
    async for _client in started_client(gateway.build()):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


async def test_mounts_are_kept(client):
    response = await client.get("/static/hello.txt")
    assert (response.status_code, response.text) == (200, "hi from static")


async def test_websocket_routes_are_kept(variant, legacy, tmp_path):
    legacy_app, _, _ = legacy
    app = legacy_app
    if variant == "gateway":
        gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'gw.db'}"))
        gateway.include_legacy(legacy_app)
        app = gateway.build()
    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "ping"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "scheme": "ws",
        "server": ("test", 80),
        "client": ("test", 1),
        "subprotocols": [],
        "state": {},
    }
    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "echo ping"
