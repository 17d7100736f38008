"""The metrics middleware, engine events, gauges and /metrics, each app with its own registry."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import random
import threading

import pytest
from prometheus_client import CollectorRegistry
from starlette.routing import Route

from gateway import Settings
from gateway.metrics.recorder import metrics_for
from tests.apps import metrics as metrics_app
from tests.apps.metrics import scenario_gateway
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def series_count(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def gateway(settings: Settings, registry: CollectorRegistry):
    gw = scenario_gateway(settings, registry)
    gw.build()
    return gw


@pytest.fixture
async def client(gateway):
    async for client in started_client(gateway.app):
        yield client


ROUTE = {"route": "/pair/{item_id}", "method": "GET"}


@pytest.mark.parametrize("mode", ["legacy", "async"])
async def test_requests_labelled_by_template_and_implementation(settings, registry, mode):
    # The mode comes from settings: a flag store may resync flags set on the table directly.
    gw = scenario_gateway(dataclasses.replace(settings, default_mode=mode), registry)
    gw.build()
    async for client in started_client(gw.app):
        for item in (1, 2, 3):
            assert (await client.get(f"/pair/{item}")).status_code == 200
        text = (await client.get("/metrics")).text
    labels = {**ROUTE, "implementation": mode}
    assert value(registry, "gateway_requests_total", **labels, status="200") == 3
    assert value(registry, "gateway_request_duration_seconds_count", **labels) == 3
    assert value(registry, "gateway_db_statements_total", **labels) == 3
    assert value(registry, "gateway_db_seconds_total", **labels) > 0
    other = "async" if mode == "legacy" else "legacy"
    assert (
        value(registry, "gateway_requests_total", **ROUTE, implementation=other, status="200") == 0
    )
    assert "/pair/1" not in text and 'route="/pair/{item_id}"' in text


async def test_legacy_thread_time_is_split_into_cpu_and_blocked(client, registry):
    for _ in range(3):
        assert (await client.get("/cpu")).status_code == 200
    labels = {"route": "/cpu", "method": "GET", "implementation": "legacy"}
    if value(registry, "gateway_threadpool_queue_seconds_count", **labels) == 0:
        pytest.fail("legacy requests carry no ThreadTiming (gateway.legacy fast path missing?)")
    cpu = value(registry, "gateway_thread_cpu_seconds_total", **labels)
    wall = value(registry, "gateway_thread_seconds_total", **labels)
    blocked = value(registry, "gateway_thread_blocked_seconds_total", **labels)
    assert cpu >= 3 * metrics_app.CPU_BURN
    assert wall >= cpu
    assert blocked == pytest.approx(wall - cpu, abs=1e-6)


async def test_status_of_exception_handlers_and_crashes(client, registry):
    assert (await client.get("/pair/not-a-number")).status_code == 422
    with pytest.raises(RuntimeError):
        await client.get("/boom")
    assert (
        value(registry, "gateway_requests_total", **ROUTE, implementation="legacy", status="422")
        == 1
    )
    boom = {"route": "/boom", "method": "GET", "implementation": "legacy", "status": "500"}
    assert value(registry, "gateway_requests_total", **boom) == 1


async def test_unknown_paths_add_no_series(gateway, client, registry):
    app = gateway.app
    for method in ("GET", "POST", "BREW", "DELETE"):  # one status series per method
        await _call(app, method, "/no/such/path")
    await client.get("/metrics")
    before = series_count(registry)
    rng = random.Random(7)
    sent = 10_000
    for _ in range(sent):
        path = "/" + "/".join(str(rng.getrandbits(40)) for _ in range(rng.randint(1, 4)))
        method = rng.choice(["GET", "POST", "BREW", "DELETE"])
        await _call(app, method, path)
    await client.get("/metrics")
    assert series_count(registry) == before
    unmatched = sum(
        value(
            registry,
            "gateway_requests_total",
            route="(unmatched)",
            method=m,
            implementation="none",
            status=s,
        )
        for m in ("GET", "POST", "DELETE", "OTHER")
        for s in ("404", "405")
    )
    assert unmatched == sent + 4


async def _call(app, method: str, path: str) -> int:
    status = 0

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    return status


async def test_statements_of_the_legacy_apps_own_engine_count(client, registry):
    assert (await client.get("/own-engine")).json() == {"value": 42}
    labels = {"route": "/own-engine", "method": "GET", "implementation": "legacy"}
    assert value(registry, "gateway_db_statements_total", **labels) >= 1


async def test_sync_engine_on_the_loop_is_counted_and_logged_once(client, registry, caplog):
    caplog.set_level(logging.WARNING, logger="gateway.metrics")
    for _ in range(2):
        assert (await client.get("/blocks")).status_code == 200
    labels = {"route": "/blocks", "method": "GET", "implementation": "async"}
    assert value(registry, "gateway_loop_blocking_requests_total", **labels) == 2
    assert value(registry, "gateway_loop_blocked_seconds_total", **labels) > 0
    lines = [r.getMessage() for r in caplog.records if "event loop thread" in r.getMessage()]
    assert len(lines) == 1
    assert "tests.apps.metrics.blocks_the_loop" in lines[0]
    # Async routes on the async engine and legacy routes in threads are not blocking.
    await client.get("/pair/1")
    assert (
        value(registry, "gateway_loop_blocking_requests_total", **ROUTE, implementation="async")
        == 0
    )
    assert (
        value(registry, "gateway_loop_blocking_requests_total", **ROUTE, implementation="legacy")
        == 0
    )


async def test_route_mode_gauge_follows_flips(gateway, client, registry):
    labels = {"route": "/pair/{item_id}", "method": "GET"}
    assert value(registry, "gateway_route_mode", **labels, mode="legacy") == 1
    gateway.modes.set_mode("GET /pair/{item_id}", "canary", 25)
    assert value(registry, "gateway_route_mode", **labels, mode="legacy") == 0
    assert value(registry, "gateway_route_mode", **labels, mode="canary") == 1
    assert value(registry, "gateway_route_async_percent", **labels) == 25


async def test_process_gauges(gateway, client, registry, settings):
    await client.get("/pair/1")
    await client.get("/metrics")
    # FastAPI's threadpool and the legacy requests' own limiter
    size = settings.threadpool_size + settings.effective_legacy_concurrency
    assert value(registry, "gateway_threadpool_threads", state="size") == size
    assert (
        value(registry, "gateway_db_pool_connections", engine="sync", state="size")
        == settings.pool_size
    )
    assert value(registry, "gateway_db_pool_wait_seconds_count", engine="sync") >= 1
    in_flight = {"route": "/metrics", "method": "GET", "implementation": "none"}
    assert value(registry, "gateway_requests_in_progress", **in_flight) == 1
    assert value(registry, "gateway_requests_in_progress", **ROUTE, implementation="legacy") == 0


async def test_loop_lag_is_sampled(sqlite_url, registry):
    settings = Settings.from_environ({}, database_url=sqlite_url, loop_lag_interval=0.01)
    gw = scenario_gateway(settings, registry)
    gw.build()
    async for _client in started_client(gw.app):
        for _ in range(200):
            if value(registry, "gateway_event_loop_lag_seconds_count") >= 3:
                break
            await asyncio.sleep(0.01)
    assert value(registry, "gateway_event_loop_lag_seconds_count") >= 3


async def test_metrics_endpoint_needs_no_worker_thread(sqlite_url, registry):
    settings = Settings.from_environ(
        {}, database_url=sqlite_url, threadpool_size=1, legacy_concurrency=1
    )
    gw = scenario_gateway(settings, registry)
    gate = threading.Event()

    @metrics_app.legacy.get("/hold")
    def hold() -> dict[str, int]:
        gate.wait(30)
        return {"ok": 1}

    try:
        gw.build()
        route = next(r for r in gw.app.router.routes if getattr(r, "path", "") == "/metrics")
        assert isinstance(route, Route) and inspect.iscoroutinefunction(route.endpoint)
        async for client in started_client(gw.app):
            held = asyncio.ensure_future(client.get("/hold"))
            for _ in range(500):
                if value(
                    registry,
                    "gateway_requests_in_progress",
                    route="/hold",
                    method="GET",
                    implementation="legacy",
                ):
                    break
                await client.get("/metrics")
                await asyncio.sleep(0.01)
            response = await client.get("/metrics")  # the only thread is taken
            assert response.status_code == 200
            assert value(registry, "gateway_threadpool_threads", state="busy") == 1
            gate.set()
            assert (await held).status_code == 200
    finally:
        gate.set()
        metrics_app.legacy.routes[:] = [
            r for r in metrics_app.legacy.routes if getattr(r, "path", "") != "/hold"
        ]


async def test_legacy_requests_beyond_their_concurrency_wait_on_the_loop(sqlite_url, registry):
    # GATEWAY_LEGACY_CONCURRENCY=2: two legacy requests in threads, the third waits (as a
    # task, not a thread) and is served once one of them is done.
    settings = Settings.from_environ({}, database_url=sqlite_url, legacy_concurrency=2)
    gw = scenario_gateway(settings, registry)
    gate, running = threading.Event(), []

    @metrics_app.legacy.get("/hold2")
    def hold2() -> dict[str, int]:
        running.append(threading.get_ident())
        gate.wait(30)
        return {"ok": 1}

    try:
        gw.build()
        async for client in started_client(gw.app):
            held = [asyncio.ensure_future(client.get("/hold2")) for _ in range(3)]
            for _ in range(500):
                await client.get("/metrics")
                if value(registry, "gateway_threadpool_threads", state="waiting") == 1:
                    break
                await asyncio.sleep(0.01)
            assert len(running) == 2
            assert value(registry, "gateway_threadpool_threads", state="waiting") == 1
            gate.set()
            answers = await asyncio.gather(*held)
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert len(running) == 3
    finally:
        gate.set()
        metrics_app.legacy.routes[:] = [
            r for r in metrics_app.legacy.routes if getattr(r, "path", "") != "/hold2"
        ]


def test_settings_can_turn_metrics_off(sqlite_url):
    settings = Settings.from_environ({}, database_url=sqlite_url, metrics=False)
    app = scenario_gateway(settings, CollectorRegistry()).build()
    with pytest.raises(LookupError):
        metrics_for(app)
    assert all(getattr(r, "path", "") != "/metrics" for r in app.router.routes)
