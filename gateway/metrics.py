"""Per-route metrics: which routes hold worker threads, wait on the database, block the loop.

install_metrics(gw, app) is called by Gateway.build(); it adds an outermost ASGI middleware
(`gateway.recorder`, the per-request side), `GET /metrics`, SQLAlchemy engine events and a
sampler task. Tests give each gateway its own registry before building it:

    gw.metrics_registry = CollectorRegistry()
    app = gw.build()
    metrics_for(app).requests   # the Counter behind gateway_requests_total
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING
from weakref import WeakSet

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.batched import PendingHistogram
from gateway.db_events import install_engine_events, watch_pool
from gateway.looplag import Sampler
from gateway.recorder import (
    METHODS,
    NO_IMPLEMENTATION,
    MetricsMiddleware,
    Recorder,
    thread_contention,
)
from gateway.routing import PathGroup

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "METHODS",
    "NO_IMPLEMENTATION",
    "GatewayMetrics",
    "MetricsMiddleware",
    "Recorder",
    "install_metrics",
    "metrics_for",
    "scrape_registry",
    "thread_contention",
]

log = logging.getLogger("gateway.metrics")

ROUTE_LABELS = ("route", "method", "implementation")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class GatewayMetrics:
    """Every gateway_* metric, registered once in `registry` (default: the global one)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        labels = ROUTE_LABELS
        r = registry
        # Registered first so that reading the registry flushes batched observations
        # before the metrics themselves are collected.
        self.recorders: WeakSet[Recorder] = WeakSet()
        registry.register(_Flusher(self.recorders))
        self.requests = Counter(
            "gateway_requests", "Requests served.", [*labels, "status"], registry=r
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from the request reaching the gateway until its response finished.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge(
            "gateway_requests_in_progress",
            "Requests being served (per process in multiprocess mode).",
            labels,
            multiprocess_mode="livesum",
            registry=r,
        )
        self.queue_wait = Histogram(
            "gateway_threadpool_queue_seconds",
            "Legacy requests: wait from arrival until the handler started in a worker thread.",
            labels,
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.thread_seconds = Counter(
            "gateway_thread_seconds", "Worker-thread wall time of legacy handlers.", labels,
            registry=r,
        )  # fmt: skip
        self.thread_cpu = Counter(
            "gateway_thread_cpu_seconds", "Worker-thread CPU time of legacy handlers.", labels,
            registry=r,
        )  # fmt: skip
        self.thread_blocked = Counter(
            "gateway_thread_blocked_seconds",
            "Worker-thread time not on the CPU (I/O, sleeps, locks): wall minus CPU.",
            labels,
            registry=r,
        )
        self.thread_contention = Counter(
            "gateway_thread_contention_seconds",
            "Estimated part of the blocked time spent waiting for the CPU/GIL while other "
            "threads ran (not freed by migrating).",
            labels,
            registry=r,
        )
        self.db_seconds = Counter(
            "gateway_db_seconds", "Time in database cursor execution.", labels, registry=r
        )
        self.db_statements = Counter(
            "gateway_db_statements", "Database statements executed.", labels, registry=r
        )
        self.loop_blocked = Counter(
            "gateway_loop_blocked_seconds",
            "Seconds a sync engine ran on the event loop thread inside a request.",
            labels,
            registry=r,
        )
        self.loop_blocking_requests = Counter(
            "gateway_loop_blocking_requests",
            "Requests that used a sync engine on the event loop thread.",
            labels,
            registry=r,
        )
        self.threadpool = Gauge(
            "gateway_threadpool_threads",
            "Worker threadpool: size (tokens), busy threads and tasks waiting for one.",
            ["state"],
            multiprocess_mode="liveall",
            registry=r,
        )
        self.pool = Gauge(
            "gateway_db_pool_connections",
            "Connection pool of each gateway engine: size (configured), checked_out.",
            ["engine", "state"],
            multiprocess_mode="liveall",
            registry=r,
        )
        self.pool_wait = Histogram(
            "gateway_db_pool_wait_seconds",
            "Time to get a connection from a gateway engine's pool (incl. opening one).",
            ["engine"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "gateway_event_loop_lag_seconds",
            "How late the event loop ran a periodic timer (scheduling delay).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.route_mode = Gauge(
            "gateway_route_mode",
            "1 for the mode each paired route is serving (legacy, canary, async).",
            ["route", "method", "mode"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.route_async_percent = Gauge(
            "gateway_route_async_percent",
            "Share of requests a paired route sends to its async implementation (0-100).",
            ["route", "method"],
            multiprocess_mode="livemax",
            registry=r,
        )


class _Flusher(Collector):
    """Collects nothing: flushes the recorders' batched observations when the registry is
    read on their own thread (tests, or an embedder's exposition on the loop)."""

    def __init__(self, recorders: WeakSet[Recorder]) -> None:
        self.recorders = recorders

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        for recorder in list(self.recorders):
            recorder.flush_if_owner()
        return []


_BY_REGISTRY: dict[int, tuple[CollectorRegistry, GatewayMetrics]] = {}


def _metrics_in(registry: CollectorRegistry) -> GatewayMetrics:
    # Several apps in one process (tests, reloads) share one set of metrics per registry.
    found = _BY_REGISTRY.get(id(registry))
    if found is None or found[0] is not registry:
        found = _BY_REGISTRY[id(registry)] = (registry, GatewayMetrics(registry))
    return found[1]


def scrape_registry(registry: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """What /metrics exposes: `registry`, or every worker's files in multiprocess mode."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return registry
    from prometheus_client import multiprocess

    from gateway.server import mark_dead_workers

    mark_dead_workers(directory)
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated, path=directory)  # type: ignore[no-untyped-call]
    return aggregated


def metrics_for(app: FastAPI) -> Recorder:
    """The metrics recorder of a built gateway app (raises if metrics are off)."""
    recorder = getattr(app.state, "gateway_metrics", None)
    if not isinstance(recorder, Recorder):
        raise LookupError("This app has no gateway metrics (GATEWAY_METRICS=false?).")
    return recorder


def install_metrics(
    gateway: Gateway, app: FastAPI, registry: CollectorRegistry | None = None
) -> None:
    """Wire metrics into a built app (middleware, /metrics, engine events, sampler)."""
    from gateway.server import is_supervisor

    if not gateway.settings.metrics or is_supervisor():
        return
    if registry is None:
        registry = getattr(gateway, "metrics_registry", None) or REGISTRY
    recorder = Recorder(gateway, _metrics_in(registry), registry)
    app.state.gateway_metrics = recorder
    install_engine_events()
    build_stack = app.build_middleware_stack

    def build_with_metrics() -> ASGIApp:
        return MetricsMiddleware(build_stack(), recorder)

    app.build_middleware_stack = build_with_metrics  # type: ignore[method-assign]

    async def metrics_endpoint(request: Request) -> Response:
        recorder.sample()
        body = generate_latest(scrape_registry(registry))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.router.routes.insert(0, Route("/metrics", metrics_endpoint, include_in_schema=False))
    recorder.static_paths = {
        path
        for route in app.router.routes
        if isinstance(path := getattr(route, "path", None), str)
        and "{" not in path
        and not isinstance(route, PathGroup)
    }
    for key in gateway.modes:
        recorder.show_mode(key, gateway.modes.get(key))
    gateway.modes.on_change(lambda key, _old, new: recorder.show_mode(key, new))
    sampler = Sampler(recorder.metrics.loop_lag, gateway.settings.loop_lag_interval)
    sampler.also(recorder.sample)

    def follow_cpu_factor() -> None:
        recorder.cpu_factor = sampler.cpu_factor

    sampler.also(follow_cpu_factor)

    def start(gw: Gateway) -> None:
        recorder.owner = threading.get_ident()
        # Sync checkouts happen in worker threads: straight to the (locked) histogram.
        watch_pool(gw.database.sync_engine, recorder.metrics.pool_wait.labels("sync"))
        # Async checkouts happen on the loop: batched like the per-request metrics.
        engine = gw.database.async_engine.sync_engine
        recorder.async_pool_wait = PendingHistogram(recorder.metrics.pool_wait.labels("async"))
        watch_pool(engine, recorder.async_pool_wait)
        recorder.started = time.time()
        sampler.start()
        recorder.cpu_factor = sampler.cpu_factor

    async def stop(_gw: Gateway) -> None:
        await sampler.stop()
        recorder.flush()
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            from prometheus_client import multiprocess

            # This worker's live gauges leave with it; its counters stay in the sums.
            multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]

    gateway.on_startup(start)
    gateway.on_shutdown(stop)


def known_routes(recorder: Recorder) -> Iterable[tuple[str, str, str]]:
    """Every (route, method, implementation) this recorder has label children for."""
    return list(recorder.children)
