"""Per-route metrics: which routes hold worker threads, wait on the database, block the loop.

install_metrics(gw, app) is called by Gateway.build(); it adds an outermost ASGI middleware,
`GET /metrics`, SQLAlchemy engine events and a sampler task. Tests give each gateway its
own registry before building it:

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
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.blocking import install_engine_events, watch_pool
from gateway.concurrency import ThreadTiming
from gateway.context import UNMATCHED, RequestInfo, current_request
from gateway.flags import Flag
from gateway.looplag import Sampler
from gateway.pending import PendingCounter, PendingHistogram
from gateway.routing import PathGroup

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "METHODS",
    "NO_IMPLEMENTATION",
    "GatewayMetrics",
    "MetricsMiddleware",
    "install_metrics",
    "metrics_for",
    "scrape_registry",
    "thread_contention",
]

log = logging.getLogger("gateway.metrics")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_IMPLEMENTATION = "none"  # admin routes, /metrics, docs, unmatched paths
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


class _Children:
    """Label children of one (route, method, implementation), resolved once."""

    __slots__ = (
        "db_seconds",
        "db_statements",
        "duration",
        "labels",
        "metrics",
        "queue_wait",
        "statuses",
        "thread_blocked",
        "thread_contention",
        "thread_cpu",
        "thread_seconds",
    )

    def __init__(self, labels: tuple[str, str, str], metrics: GatewayMetrics) -> None:
        self.labels = labels
        self.metrics = metrics
        self.statuses: dict[int, PendingCounter] = {}
        self.duration = PendingHistogram(metrics.duration.labels(*labels))
        # Thread series only where threads serve (legacy), created on first use elsewhere.
        self.queue_wait: PendingHistogram | None = None
        if labels[2] == "legacy":
            self.thread_children()
        self.db_seconds = PendingCounter(metrics.db_seconds.labels(*labels))
        self.db_statements = PendingCounter(metrics.db_statements.labels(*labels))

    def thread_children(self) -> None:
        metrics, labels = self.metrics, self.labels
        self.queue_wait = PendingHistogram(metrics.queue_wait.labels(*labels))
        self.thread_seconds = PendingCounter(metrics.thread_seconds.labels(*labels))
        self.thread_cpu = PendingCounter(metrics.thread_cpu.labels(*labels))
        self.thread_blocked = PendingCounter(metrics.thread_blocked.labels(*labels))
        self.thread_contention = PendingCounter(metrics.thread_contention.labels(*labels))

    def status(self, code: int) -> PendingCounter:
        pending = self.statuses.get(code)
        if pending is None:
            counter = self.metrics.requests.labels(*self.labels, str(code))
            pending = self.statuses[code] = PendingCounter(counter)
        return pending

    def flush(self) -> None:
        for status in self.statuses.values():
            status.flush()
        self.duration.flush()
        self.db_seconds.flush()
        self.db_statements.flush()
        if self.queue_wait is not None:
            self.queue_wait.flush()
            self.thread_seconds.flush()
            self.thread_cpu.flush()
            self.thread_blocked.flush()
            self.thread_contention.flush()


class MetricsMiddleware:
    """Outermost ASGI layer: one RequestInfo per request, observed after the response."""

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo()
        scope["gateway"] = info
        token = current_request.set(info)
        live = self.recorder.live
        live[id(info)] = (info, scope)
        status = 500  # what the server answers if the app fails before a response starts
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            current_request.reset(token)
            del live[id(info)]
            self.recorder.observe(scope, info, status, elapsed)


class Recorder:
    """Turns finished requests into observations; samples process gauges on the loop."""

    def __init__(
        self, gateway: Gateway, metrics: GatewayMetrics, registry: CollectorRegistry = REGISTRY
    ) -> None:
        self.gateway = gateway
        self.registry = registry
        self.metrics = metrics
        self.live: dict[int, tuple[RequestInfo, Scope]] = {}
        self.children: dict[tuple[str, str, str], _Children] = {}
        self.blocking_logged: set[str] = set()
        self.admin_prefix = gateway.settings.admin_prefix
        self.started = time.time()
        self.static_paths: set[str] = set()
        self.cpu_factor = 1.0  # from the sampler's CPU probe
        self.owner = threading.get_ident()  # the thread that observes; set again at startup
        self.async_pool_wait: PendingHistogram | None = None
        self._in_progress_shown: set[tuple[str, str, str]] = set()
        metrics.recorders.add(self)
        for entry in gateway.entries.values():
            for endpoint in (entry.legacy, entry.async_):
                if endpoint is not None:
                    self.child(endpoint.path, endpoint.method, endpoint.side.value)
        for method in (*sorted(METHODS), "OTHER"):
            self.child(UNMATCHED, method, NO_IMPLEMENTATION)

    def child(self, path: str, method: str, implementation: str) -> _Children:
        key = (path, method, implementation)
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = _Children(key, self.metrics)
        return found

    def labels_of(self, scope: Scope, info: RequestInfo) -> tuple[str, str, str]:
        method = scope["method"]
        if method not in METHODS:
            method = "OTHER"
        if info.implementation is not None:
            return info.path, method, info.implementation.value
        # The gateway's own endpoints by path (admin under one label); the rest shares one.
        path = scope.get("path", "")
        if path in self.static_paths:
            return path, method, NO_IMPLEMENTATION
        if path.startswith(self.admin_prefix):
            return self.admin_prefix, method, NO_IMPLEMENTATION
        return UNMATCHED, method, NO_IMPLEMENTATION

    def observe(
        self,
        scope: Scope,
        info: RequestInfo,
        status: int,
        elapsed: float,
    ) -> None:
        """Count one finished request (on the event loop; see `flush`)."""
        labels = self.labels_of(scope, info)
        children = self.children.get(labels) or self.child(*labels)
        children.status(status).inc()
        children.duration.observe(elapsed)
        thread = info.thread
        if thread is not None:
            if children.queue_wait is None:
                children.thread_children()
            assert children.queue_wait is not None
            children.queue_wait.observe(thread.queued)
            children.thread_seconds.inc(thread.wall)
            children.thread_cpu.inc(thread.cpu)
            children.thread_blocked.inc(thread.blocked)
            process_cpu = 0.0
            if info.process_cpu_started is not None:
                process_cpu = time.process_time() - info.process_cpu_started
            contention = thread_contention(
                thread, info.db_seconds, elapsed, process_cpu, self.cpu_factor
            )
            if contention:
                children.thread_contention.inc(contention)
        if info.db_statements:
            children.db_seconds.inc(info.db_seconds)
            children.db_statements.inc(info.db_statements)
        if info.loop_blocking_seconds:
            self.metrics.loop_blocked.labels(*labels).inc(info.loop_blocking_seconds)
            self.metrics.loop_blocking_requests.labels(*labels).inc()
            self.log_blocking(scope, info)

    def log_blocking(self, scope: Scope, info: RequestInfo) -> None:
        if info.route in self.blocking_logged:
            return
        self.blocking_logged.add(info.route)
        endpoint = scope.get("endpoint")
        where = f"{getattr(endpoint, '__module__', '?')}.{getattr(endpoint, '__qualname__', '?')}"
        log.warning(
            "route %s (%s, %s) used a sync engine on the event loop thread: the loop was "
            "blocked %.3f s; use AsyncDB / the async engine in async routes",
            info.route,
            where,
            info.implementation.value if info.implementation else NO_IMPLEMENTATION,
            info.loop_blocking_seconds,
        )

    def flush(self) -> None:
        """Hand the batched observations to the prometheus metrics (on the event loop)."""
        for children in self.children.values():
            children.flush()
        if self.async_pool_wait is not None:
            self.async_pool_wait.flush()

    def flush_if_owner(self) -> None:
        """Flush when called on the thread that observes (a registry read elsewhere skips)."""
        if self.owner == threading.get_ident():
            self.flush()

    def sample(self) -> None:
        """Flush, then refresh the gauges; call on the event loop (threadpool stats are
        loop-bound)."""
        from gateway.concurrency import threadpool_stats

        self.flush()

        for state, value in threadpool_stats().items():
            self.metrics.threadpool.labels(state).set(value)
        database = self.gateway.database
        engines = (("sync", database.sync_engine), ("async", database.async_engine.sync_engine))
        for name, engine in engines:
            pool: Any = engine.pool
            for state, reader in (("size", "size"), ("checked_out", "checkedout")):
                read = getattr(pool, reader, None)
                if read is not None:
                    self.metrics.pool.labels(name, state).set(read())
        counts: dict[tuple[str, str, str], int] = {}
        for info, scope in list(self.live.values()):
            labels = self.labels_of(scope, info)
            counts[labels] = counts.get(labels, 0) + 1
        for labels in self._in_progress_shown | counts.keys():
            self.metrics.in_progress.labels(*labels).set(counts.get(labels, 0))
        self._in_progress_shown = set(counts)

    def show_mode(self, key: str, flag: Flag) -> None:
        method, _, path = key.partition(" ")
        for mode in ("legacy", "canary", "async"):
            self.metrics.route_mode.labels(path, method, mode).set(
                1 if flag.mode.value == mode else 0
            )
        self.metrics.route_async_percent.labels(path, method).set(flag.percent)


def thread_contention(
    thread: ThreadTiming,
    db_seconds: float,
    request_seconds: float,
    process_cpu: float,
    cpu_factor: float = 1.0,
) -> float:
    """Estimate how much of a handler's blocked time was waiting for the CPU or the GIL.

    Wall minus CPU time also counts time a runnable thread waited: for the GIL while other
    threads of the process ran Python (bounded by the CPU the rest of the process used
    during the request, `process_cpu` minus the handler's own), and for a core when the
    machine is busy ((cpu_factor - 1) x its CPU time). Migrating to async frees neither.
    Database time is known I/O and never counted as contention.
    """
    if request_seconds <= 0:
        return 0.0
    share = min(thread.wall / request_seconds, 1.0)
    gil = max(process_cpu - thread.cpu, 0.0) * share
    cores = (cpu_factor - 1.0) * thread.cpu
    return max(min(thread.blocked - db_seconds, gil + cores), 0.0)


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
