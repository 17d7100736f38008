"""Custom `APIRoute` classes that wrap FastAPI's handler run around the fast path's.

The shapes of FastAPI's own docs ("Custom Request and APIRoute class"): a class that
post-processes the response, one that hands the endpoint a custom `Request` (a gzip body),
one that turns validation errors into its own 422; and one that replaces the handler and
so keeps FastAPI's. Each runs on bare FastAPI and through the gateway, same assertions.
"""

import gzip
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from gateway import Gateway, Settings
from gateway.legacy.fast_path import LegacyApp
from tests.support_legacy import skip_fastapis_own_yield_order

pytestmark = pytest.mark.anyio

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class StampRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def stamped(request: Request) -> Response:
            response = await handler(request)
            if request.query_params.get("fail") == "after":
                raise HTTPException(409, "refused after the endpoint")
            response.headers["x-stamp"] = "yes"
            return response

        return stamped


class GzipRequest(Request):
    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            body = await super().body()
            if "gzip" in self.headers.getlist("Content-Encoding"):
                body = gzip.decompress(body)
            self._body = body
        return self._body


class GzipRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def gzipped(request: Request) -> Response:
            return await handler(GzipRequest(request.scope, request.receive))

        return gzipped


class ValidationBodyRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def with_body(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                body = (await request.body()).decode()
                raise HTTPException(422, {"errors": len(exc.errors()), "body": body}) from exc

        return with_body


class OwnRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        async def own(request: Request) -> Response:
            return Response(b"own", media_type="text/plain")

        return own


def build_app(events: list[str]) -> FastAPI:
    app = FastAPI()

    def resource() -> Iterator[str]:
        events.append("enter")
        try:
            yield "resource"
        except Exception as exc:
            events.append(f"saw {type(exc).__name__}")
            raise
        finally:
            events.append("exit")

    stamp = APIRouter(route_class=StampRoute)

    @stamp.get("/stamp")
    def stamped(value: str = Depends(resource)) -> dict[str, str]:
        events.append("endpoint")
        return {"value": value}

    @stamp.get("/stamp-stream")
    def streamed(value: str = Depends(resource)) -> StreamingResponse:
        def chunks() -> Iterator[str]:
            events.append("streaming")
            yield value

        return StreamingResponse(chunks())

    gzipped = APIRouter(route_class=GzipRoute)

    @gzipped.post("/sum")
    def total(numbers: list[int] = Body()) -> dict[str, int]:
        return {"sum": sum(numbers)}

    validation = APIRouter(route_class=ValidationBodyRoute)

    @validation.post("/strict")
    def strict(numbers: list[int] = Body()) -> dict[str, int]:
        return {"count": len(numbers)}

    own = APIRouter(route_class=OwnRoute)

    @own.get("/own")
    def replaced() -> dict[str, bool]:
        return {"never": True}

    for router in (stamp, gzipped, validation, own):
        app.include_router(router)
    return app


@pytest.fixture(params=["fastapi", "gateway"])
async def served(
    request: pytest.FixtureRequest, sqlite_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    events: list[str] = []
    legacy = build_app(events)
    app: Any = legacy
    if request.param == "gateway":
        gateway = Gateway(Settings.from_environ({}, database_url=sqlite_url))
        gateway.include_legacy(legacy)
        gateway.build()
        app = gateway.app
        fast = {k for k, e in gateway.entries.items() if isinstance(e.legacy.app, LegacyApp)}  # type: ignore[union-attr]
        assert fast == set(gateway.entries) - {"GET /own"}
        assert gateway.entries["GET /own"].legacy.fallback == (  # type: ignore[union-attr]
            "route class OwnRoute overrides get_route_handler without calling "
            "super().get_route_handler()"
        )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, events


async def test_the_class_post_processes_the_response(served: Any) -> None:
    client, events = served
    response = await client.get("/stamp")
    assert (response.json(), response.headers["x-stamp"]) == ({"value": "resource"}, "yes")
    assert events == ["enter", "endpoint", "exit"]


async def test_an_error_of_the_class_after_the_endpoint_reaches_the_handlers(
    served: Any,
) -> None:
    client, _ = served
    response = await client.get("/stamp", params={"fail": "after"})
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "refused after the endpoint"},
    )


async def test_a_stream_reads_its_dependency_before_it_closes(
    served: Any, request: pytest.FixtureRequest
) -> None:
    skip_fastapis_own_yield_order(request.node.callspec.params["served"])
    client, events = served
    response = await client.get("/stamp-stream")
    assert (response.text, response.headers["x-stamp"]) == ("resource", "yes")
    assert events.index("streaming") < events.index("exit")


async def test_the_class_hands_the_endpoint_its_own_request(served: Any) -> None:
    client, _ = served
    body = gzip.compress(json.dumps([1, 2, 3]).encode())
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    assert (await client.post("/sum", content=body, headers=headers)).json() == {"sum": 6}


async def test_the_class_sees_the_validation_error(served: Any) -> None:
    client, _ = served
    response = await client.post("/strict", json=["a"])
    assert response.status_code == 422
    assert response.json() == {"detail": {"errors": 1, "body": '["a"]'}}


async def test_a_class_that_replaces_the_handler_keeps_it(served: Any) -> None:
    client, _ = served
    assert (await client.get("/own")).content == b"own"


async def test_an_error_of_the_class_after_a_stream_still_closes_its_dependency(
    served: Any,
) -> None:
    client, events = served
    response = await client.get("/stamp-stream", params={"fail": "after"})
    assert response.status_code == 409
    assert events[0] == "enter" and events[-1] == "exit"  # closed, though never streamed
    assert "streaming" not in events
