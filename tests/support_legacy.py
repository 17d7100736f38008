"""A small legacy app that exercises what the legacy fast path must keep, and a raw ASGI call.

`build_legacy_app(events)` records into `events` when a `yield` dependency enters, sees an
exception and exits, and when background tasks run; `call_raw` adds "response.start" and
"response.body" as they are sent, so a test can read the order of the two.
"""

from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Annotated, Any

import anyio
import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Cookie,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message

from gateway._compat import FASTAPI, PYDANTIC_V1
from gateway.legacy.fast_path import keep_fastapi_handler

# What the FastAPI under test can declare at all (the version matrix runs 0.100 on).
JSON_LINES = FASTAPI >= (0, 134, 0)  # a `def` endpoint that yields items, streamed as JSONL
FUNCTION_SCOPE = FASTAPI >= (0, 121, 0)  # Depends(scope="function")
needs_json_lines = pytest.mark.skipif(not JSON_LINES, reason="JSON Lines routes: FastAPI 0.134+")
needs_function_scope = pytest.mark.skipif(
    not FUNCTION_SCOPE, reason='Depends(scope="function"): FastAPI 0.121+'
)

# FastAPI 0.106-0.117 closed `yield` dependencies before sending the response, and raised
# request validation errors outside them; before and after, as the tests expect.
EARLY_YIELD_EXIT = (0, 106, 0) <= FASTAPI < (0, 118, 0)


def skip_fastapis_own_yield_order(kind: str) -> None:
    """Skip a check of FastAPI's own `yield` dependency order on 0.106-0.117."""
    if kind == "fastapi" and EARLY_YIELD_EXIT:
        pytest.skip("FastAPI 0.106-0.117 closes yield dependencies before the response")


# Routes that must stay on FastAPI's own handler in the gateway; the rest use the fast path.
FALLBACK_PATHS = {"/async-yield", "/async-param", "/own-handler-class", "/jsonl", "/kept"}


class Teapot(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class Resource:
    """Stands in for a Session: usable until its dependency exits."""

    def __init__(self) -> None:
        self.closed = False


class PublicUser(BaseModel):
    name: str
    email: str


class Full(BaseModel):
    a: int
    b: int
    c: int = 3


class Aliased(BaseModel):
    if PYDANTIC_V1:

        class Config:
            allow_population_by_field_name = True

    else:
        model_config = ConfigDict(populate_by_name=True)

    full_name: str = Field(alias="fullName")


class Thing(BaseModel):
    name: str
    size: int = Field(ge=1)


class LoggingRoute(APIRoute):
    """A custom route class, as some legacy apps have (to log bodies, say)."""

    def get_route_handler(self):  # type: ignore[no-untyped-def]
        handler = super().get_route_handler()

        async def logged(request: Request) -> Response:
            response = await handler(request)
            response.headers["x-logged"] = "yes"
            return response

        return logged


class OwnHandlerRoute(APIRoute):
    """A route class that builds its handler without FastAPI's: it keeps FastAPI's handler."""

    def get_route_handler(self):  # type: ignore[no-untyped-def]
        async def own(request: Request) -> Response:
            return Response(b"own", media_type="text/plain")

        return own


def build_legacy_app(events: list[str]) -> FastAPI:
    app = FastAPI(title="legacy under test")

    def get_resource() -> Iterator[Resource]:
        resource = Resource()
        events.append("dependency enter")
        try:
            yield resource
        except Exception as exc:
            events.append(f"dependency saw {type(exc).__name__}")
            raise
        finally:
            resource.closed = True
            events.append("dependency exit")

    def get_token(x_token: str = Header(default="none")) -> str:
        return x_token

    def get_user(token: str = Depends(get_token)) -> str:
        return f"user:{token}"

    def make_object() -> object:
        return object()

    def outer(inner: object = Depends(make_object)) -> object:
        return inner

    def swallow_errors() -> Iterator[None]:
        try:
            yield
        except Exception:
            events.append("dependency swallowed the error")

    def require_key(x_key: str = Header(default="")) -> None:
        if x_key != "k":
            raise HTTPException(
                status_code=401, detail="bad key", headers={"WWW-Authenticate": "Key"}
            )

    async def async_value() -> str:
        return "from async"

    async def async_resource() -> AsyncIterator[str]:
        yield "from async yield"

    async def async_param(q: str = "from async with a parameter") -> str:
        return q

    oauth2 = OAuth2PasswordBearer(tokenUrl="token")

    def current_user(
        token: Annotated[str, Depends(oauth2)],
        resource: Annotated[Resource, Depends(get_resource)],
        scopes: SecurityScopes,
    ) -> dict[str, Any]:
        return {"token": token, "open": not resource.closed, "scopes": scopes.scopes}

    def scoped(scopes: SecurityScopes) -> str:
        return " ".join(scopes.scopes)

    @app.exception_handler(Teapot)
    async def teapot_handler(request: Request, exc: Teapot) -> JSONResponse:
        return JSONResponse(
            status_code=418, content={"teapot": exc.name}, headers={"X-Teapot": "yes"}
        )

    @app.get("/items/{item_id}")
    def read_item(
        item_id: int,
        resource: Annotated[Resource, Depends(get_resource)],
        q: int | None = None,
        limit: Annotated[int, Query(ge=1)] = 10,
    ) -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "limit": limit, "open": not resource.closed}

    @app.get("/me")
    def me(user: Annotated[str, Depends(get_user)]) -> dict[str, str]:
        return {"user": user}

    @app.get("/users/{name}", response_model=PublicUser)
    def user_without_secret(name: str) -> Any:
        return {"name": name, "email": f"{name}@example.com", "password": "hunter2"}

    @app.get("/model/include", response_model=Full, response_model_include={"a", "c"})
    def model_include() -> Any:
        return {"a": 1, "b": 2}

    @app.get("/model/exclude", response_model=Full, response_model_exclude={"b"})
    def model_exclude() -> Any:
        return {"a": 1, "b": 2, "c": 5}

    @app.get("/model/unset", response_model=Full, response_model_exclude_unset=True)
    def model_unset() -> Any:
        return Full(a=1, b=2)

    @app.get("/model/alias", response_model=Aliased)
    def model_alias() -> Any:
        return {"full_name": "Ada Lovelace"}

    @app.get("/model/no-alias", response_model=Aliased, response_model_by_alias=False)
    def model_no_alias() -> Any:
        return {"fullName": "Ada Lovelace"}

    @app.get("/model/bad", response_model=PublicUser)
    def model_bad() -> Any:
        return {"name": "no email"}

    @app.post("/things", status_code=201)
    def create_thing(thing: Thing) -> Thing:
        return thing

    @app.post("/things/embedded")
    def create_embedded(thing: Thing, note: Annotated[str, Query()] = "") -> dict[str, Any]:
        return {"thing": dict(thing), "note": note}

    @app.get("/response-param")
    def response_param(response: Response) -> dict[str, bool]:
        response.status_code = 202
        response.headers["X-Extra"] = "1"
        response.set_cookie("flavour", "oat")
        return {"ok": True}

    @app.get("/background")
    def background(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(events.append, "background")
        return {"ok": True}

    @app.get("/background-with-dependency")
    def background_with_dependency(
        tasks: BackgroundTasks, resource: Annotated[Resource, Depends(get_resource)]
    ) -> dict[str, bool]:
        tasks.add_task(lambda: events.append(f"background, resource closed={resource.closed}"))
        return {"ok": True}

    @app.get("/swallowed", dependencies=[Depends(swallow_errors)])
    def swallowed() -> None:
        raise ValueError("lost")

    @app.get("/guarded", dependencies=[Depends(require_key)])
    def guarded() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/http-error")
    def http_error() -> None:
        raise HTTPException(status_code=404, detail="nope", headers={"X-Why": "missing"})

    @app.get("/teapot")
    def teapot() -> None:
        raise Teapot("short and stout")

    @app.get("/dependency-sees-http-error")
    def dependency_sees_http_error(resource: Annotated[Resource, Depends(get_resource)]) -> None:
        raise HTTPException(status_code=409, detail="conflict")

    @app.get("/dependency-sees-teapot")
    def dependency_sees_teapot(resource: Annotated[Resource, Depends(get_resource)]) -> None:
        raise Teapot("in a dependency")

    @app.get("/cached")
    def cached(
        a: Annotated[object, Depends(make_object)],
        b: Annotated[object, Depends(outer)],
        c: Annotated[object, Depends(make_object, use_cache=False)],
    ) -> dict[str, bool]:
        return {"same": a is b, "fresh": c is not a}

    @app.get("/async-dep")
    def with_async_dependency(value: Annotated[str, Depends(async_value)]) -> dict[str, str]:
        return {"value": value}

    @app.get("/async-yield")
    def with_async_yield(value: Annotated[str, Depends(async_resource)]) -> dict[str, str]:
        return {"value": value}

    @app.get("/async-param")
    def with_async_param(value: Annotated[str, Depends(async_param)]) -> dict[str, str]:
        return {"value": value}

    @app.get("/whoami")
    def whoami(
        user: Annotated[dict[str, Any], Security(current_user, scopes=["me"])],
    ) -> dict[str, Any]:
        return user

    def current_user_db_first(
        resource: Annotated[Resource, Depends(get_resource)],
        token: Annotated[str, Depends(oauth2)],
    ) -> str:
        return token

    @app.get("/whoami-db-first")
    def whoami_db_first(user: Annotated[str, Depends(current_user_db_first)]) -> dict[str, str]:
        return {"token": user}

    @app.get("/scoped")
    def with_scopes(value: Annotated[str, Security(scoped, scopes=["read"])]) -> dict[str, str]:
        return {"scopes": value}

    if JSON_LINES:

        @app.get("/jsonl")
        def jsonl() -> Iterator[dict[str, int]]:
            yield {"n": 1}

    @app.get("/plain")
    def plain(tasks: BackgroundTasks) -> Response:
        tasks.add_task(events.append, "background")
        return PlainTextResponse("hi", status_code=203, headers={"X-Direct": "1"})

    @app.get("/stream")
    def stream(resource: Annotated[Resource, Depends(get_resource)]) -> StreamingResponse:
        def chunks() -> Iterator[str]:
            yield "closed" if resource.closed else "open"

        return StreamingResponse(chunks())

    if FUNCTION_SCOPE:

        @app.get("/function-scope")
        def function_scope(
            resource: Annotated[Resource, Depends(get_resource, scope="function")],
        ) -> dict[str, bool]:
            return {"open": not resource.closed}

    @app.get("/request")
    def with_request(
        request: Request, session_id: Annotated[str | None, Cookie()] = None
    ) -> dict[str, Any]:
        return {"path": request.url.path, "cookie": session_id, "h": request.headers.get("x-h")}

    @app.get("/kept")
    @keep_fastapi_handler
    def kept(resource: Annotated[Resource, Depends(get_resource)]) -> dict[str, bool]:
        return {"open": not resource.closed}

    custom = APIRouter(route_class=LoggingRoute)

    @custom.get("/custom-class")
    def custom_class() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(custom)
    own = APIRouter(route_class=OwnHandlerRoute)

    @own.get("/own-handler-class")
    def own_handler_class() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(own)
    app.state.overridable = get_user
    return app


async def call_raw(app: ASGIApp, path: str, events: list[str]) -> tuple[int, bytes]:
    """One GET through `app`'s ASGI interface, noting in `events` when each part is sent."""
    done = anyio.Event()
    status = 0
    body = b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "state": {},
    }
    sent_request = False

    async def receive() -> Message:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
            events.append("response.start")
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")
            if not message.get("more_body", False):
                events.append("response.body")
                done.set()

    await app(scope, receive, send)
    return status, body


_IN_REQUEST: ContextVar[bool] = ContextVar("in_request", default=False)


def count_thread_hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to a worker thread from this task on (the app sees
    this task's context under ASGITransport; the gateway's own periodic work does not)."""
    calls: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        if _IN_REQUEST.get():
            calls.append(getattr(func, "__name__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    _IN_REQUEST.set(True)
    return calls
