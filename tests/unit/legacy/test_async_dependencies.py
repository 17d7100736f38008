"""An `async def` dependency on a sync session generator, on the fast path, as FastAPI does it.

The shape of most real apps' auth: a router-level `async def get_current_user` that depends
on `Depends(generate_session)`, a sync `Session` generator the endpoint also takes. Every
test runs on bare FastAPI and through the gateway over the same assertions: the same
session object (FastAPI's per-request cache), the order `yield` dependencies close in, and
exceptions and HTTPException from the async dependency through the session's `except`.
"""

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from gateway import Gateway, Settings
from gateway.legacy.fast_path import LegacyApp
from tests.support_legacy import count_thread_hand_offs

pytestmark = pytest.mark.anyio


OK_EVENTS = [
    "session 0 enter",
    "auth on session 0, open",
    "cache enter",
    "endpoint",
    "cache exit",
    "session 0 exit",
]


class Boom(Exception):
    """Handled by the app's own exception handler: a 503."""


@dataclass
class Session:
    number: int
    closed: bool = False


def build_app(events: list[str]) -> FastAPI:
    app = FastAPI()
    numbers = itertools.count()

    @app.exception_handler(Boom)
    async def boom(request: Request, exc: Boom) -> JSONResponse:
        return JSONResponse({"detail": "boom"}, status_code=503)

    def generate_session() -> Iterator[Session]:
        session = Session(next(numbers))
        events.append(f"session {session.number} enter")
        try:
            yield session
        except Exception as exc:
            events.append(f"session {session.number} saw {type(exc).__name__}")
            raise
        finally:
            session.closed = True
            events.append(f"session {session.number} exit")

    def get_cache() -> Iterator[str]:
        events.append("cache enter")
        try:
            yield "cache"
        finally:
            events.append("cache exit")

    token_header = APIKeyHeader(name="x-token", auto_error=False)

    async def get_current_user(
        db: Annotated[Session, Depends(generate_session)],
        token: Annotated[str | None, Security(token_header)],
    ) -> dict[str, Any]:
        events.append(f"auth on session {db.number}, {'closed' if db.closed else 'open'}")
        if token == "boom":
            raise Boom()
        if token == "broken":
            raise RuntimeError("the auth backend is down")
        if token != "good":
            raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        return {"name": "ada", "session": db}

    router = APIRouter(dependencies=[Depends(get_current_user)])

    @router.get("/me")
    def me(
        user: Annotated[dict[str, Any], Depends(get_current_user)],
        db: Annotated[Session, Depends(generate_session)],
        cache: Annotated[str, Depends(get_cache)],
    ) -> dict[str, Any]:
        events.append("endpoint")
        return {"name": user["name"], "same_session": user["session"] is db, "open": not db.closed}

    @router.get("/fresh")
    def fresh(
        user: Annotated[dict[str, Any], Depends(get_current_user)],
        db: Annotated[Session, Depends(generate_session, use_cache=False)],
    ) -> dict[str, Any]:
        return {"same_session": user["session"] is db, "session": db.number}

    @router.get("/fails")
    def fails(user: Annotated[dict[str, Any], Depends(get_current_user)]) -> None:
        raise Boom()

    app.include_router(router)
    app.state.generate_session = generate_session
    app.state.get_current_user = get_current_user
    return app


@dataclass
class Served:
    kind: str
    legacy: FastAPI
    events: list[str]
    client: httpx.AsyncClient


@pytest.fixture(params=["fastapi", "gateway"])
async def served(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Served]:
    events: list[str] = []
    legacy = build_app(events)
    app: Any = legacy
    if request.param == "gateway":
        gateway = Gateway(Settings.from_environ({}, database_url=sqlite_url))
        gateway.include_legacy(legacy)
        gateway.build()
        app = gateway.app
        # Otherwise these tests would pass on FastAPI's own handler, proving nothing.
        assert all(isinstance(e.legacy.app, LegacyApp) for e in gateway.entries.values())  # type: ignore[union-attr]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Served(request.param, legacy, events, client)


async def test_the_endpoint_gets_the_session_the_async_dependency_got(served: Served) -> None:
    response = await served.client.get("/me", headers={"x-token": "good"})
    assert response.json() == {"name": "ada", "same_session": True, "open": True}
    assert served.events == OK_EVENTS  # one session, closed last: the reverse of entering


async def test_use_cache_false_opens_a_second_session(served: Served) -> None:
    response = await served.client.get("/fresh", headers={"x-token": "good"})
    assert response.json() == {"same_session": False, "session": 1}
    assert served.events == [
        "session 0 enter",
        "auth on session 0, open",
        "session 1 enter",
        "session 1 exit",
        "session 0 exit",
    ]


@pytest.mark.parametrize(
    ("token", "status", "seen"),
    [(None, 401, "HTTPException"), ("bad", 401, "HTTPException"), ("boom", 503, "Boom")],
)
async def test_errors_of_the_async_dependency_reach_the_session_and_the_handlers(
    served: Served, token: str | None, status: int, seen: str
) -> None:
    headers = {"x-token": token} if token else {}
    response = await served.client.get("/me", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json() == {"detail": "Not authenticated"}
        assert response.headers["www-authenticate"] == "Bearer"
    else:
        assert response.json() == {"detail": "boom"}
    assert served.events == [
        "session 0 enter",
        "auth on session 0, open",
        f"session 0 saw {seen}",
        "session 0 exit",
    ]


async def test_an_unhandled_error_of_the_async_dependency_is_a_500(served: Served) -> None:
    response = await served.client.get("/me", headers={"x-token": "broken"})
    assert response.status_code == 500
    assert served.events[-2:] == ["session 0 saw RuntimeError", "session 0 exit"]


async def test_the_endpoints_error_reaches_the_session_the_auth_used(served: Served) -> None:
    response = await served.client.get("/fails", headers={"x-token": "good"})
    assert (response.status_code, response.json()) == (503, {"detail": "boom"})
    assert served.events == [
        "session 0 enter",
        "auth on session 0, open",
        "session 0 saw Boom",
        "session 0 exit",
    ]


async def test_overrides_of_the_session_and_of_the_auth_apply(served: Served) -> None:
    def other_session() -> Iterator[Session]:
        served.events.append("other enter")
        yield Session(99)
        served.events.append("other exit")

    overrides = served.legacy.dependency_overrides
    overrides[served.legacy.state.generate_session] = other_session
    response = await served.client.get("/me", headers={"x-token": "good"})
    assert response.json() == {"name": "ada", "same_session": True, "open": True}
    assert served.events[:2] == ["other enter", "auth on session 99, open"]

    def sync_user() -> dict[str, Any]:
        return {"name": "stub", "session": None}

    overrides[served.legacy.state.get_current_user] = sync_user
    response = await served.client.get("/me")
    assert response.json() == {"name": "stub", "same_session": False, "open": True}
    overrides.clear()
    assert (await served.client.get("/me")).status_code == 401


async def test_two_thread_hand_offs_where_fastapi_takes_more(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_thread_hand_offs(monkeypatch)
    assert (await served.client.get("/me", headers={"x-token": "good"})).status_code == 200
    # The gateway: the session, then (after the auth on the loop) the rest in one. FastAPI:
    # enter each generator, run the endpoint, validate the response, leave each generator.
    if served.kind == "gateway":
        assert len(calls) == 2, calls
    else:
        assert len(calls) > 2, calls
