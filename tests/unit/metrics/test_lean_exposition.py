"""/metrics carries no series for what a route cannot record: none for a route nobody has
called, thread timing only for routes served in a worker thread (the legacy fast path)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import APIRouter, Depends
from prometheus_client import CollectorRegistry

from gateway import Gateway, Settings
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

THREAD_SERIES = ("gateway_thread_", "gateway_threadpool_queue_")


async def async_dependency() -> AsyncIterator[int]:  # keeps FastAPI's own handler
    yield 1


def legacy_router() -> APIRouter:
    router = APIRouter()

    @router.get("/threaded/{n}")
    def threaded(n: int) -> dict[str, int]:  # the fast path: one hand-off to a thread
        return {"n": n}

    @router.get("/handler/{n}")
    def on_fastapi_handler(n: int, extra: int = Depends(async_dependency)) -> dict[str, int]:
        return {"n": n + extra}

    @router.get("/loop/{n}")
    async def on_the_loop(n: int) -> dict[str, int]:
        return {"n": n}

    return router


def route_lines(body: str, route: str) -> list[str]:
    return [line for line in body.splitlines() if f'route="{route}"' in line]


async def test_an_idle_route_has_no_series_and_a_served_one_only_what_it_records(tmp_path):
    settings = Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'g.db'}")
    gateway = Gateway(settings, registry=CollectorRegistry())
    gateway.include_legacy(legacy_router())
    app = gateway.build()
    async for client in started_client(app):
        idle = (await client.get("/metrics")).text
        for path in ("/threaded/{n}", "/handler/{n}", "/loop/{n}"):
            assert route_lines(idle, path) == []
        for path in ("/threaded/1", "/handler/1", "/loop/1"):
            assert (await client.get(path)).status_code == 200
        served = (await client.get("/metrics")).text

    for path in ("/threaded/{n}", "/handler/{n}", "/loop/{n}"):
        lines = route_lines(served, path)
        assert any(line.startswith("gateway_requests_total{") for line in lines), path
        assert any(line.startswith("gateway_request_duration_seconds_count") for line in lines)
    threaded = [
        line for line in route_lines(served, "/threaded/{n}") if line.startswith(THREAD_SERIES)
    ]
    assert {line.split("{")[0] for line in threaded} >= {
        "gateway_threadpool_queue_seconds_count",
        "gateway_thread_seconds_total",
        "gateway_thread_cpu_seconds_total",
    }
    for path in ("/handler/{n}", "/loop/{n}"):  # never in a thread of the gateway's
        assert [line for line in route_lines(served, path) if line.startswith(THREAD_SERIES)] == []
