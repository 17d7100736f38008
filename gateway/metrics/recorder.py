"""The per-request side of the metrics: one RequestInfo in, a few batched counts out.

`MetricsMiddleware` is the outermost ASGI layer of a gateway app; `Recorder.observe` turns
each finished request into observations on its route's label children (resolved once) and
`Recorder.sample` refreshes the gauges on the loop. The metric definitions and the wiring
are in `gateway.metrics.series` and `gateway.metrics.metering`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.concurrency import LegacyThreads, ThreadTiming, threadpool_stats
from gateway.flags.table import Flag
from gateway.metrics.batched import PendingCounter, PendingHistogram
from gateway.metrics.lazy_loads import LazyLoads
from gateway.metrics.series import GatewayMetrics
from gateway.modes import Implementation, Mode
from gateway.naming import qualified_name
from gateway.request_info import UNMATCHED, RequestInfo, current_request

Engines = Callable[[], Iterable[tuple[str, Any]]]
"""What the pool gauges read: (name, sync Engine) pairs, e.g. ("sync", engine)."""

__all__ = [
    "METHODS",
    "NO_IMPLEMENTATION",
    "ImplementationHeader",
    "MetricsMiddleware",
    "Recorder",
    "header_values",
    "metrics_for",
    "thread_contention",
]

log = logging.getLogger("gateway.metrics")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_IMPLEMENTATION = "none"  # admin routes, /metrics, docs, unmatched paths


class _Children:
    """Label children of one (route, method, implementation), resolved once."""

    __slots__ = (
        "db_seconds",
        "db_statements",
        "duration",
        "labels",
        "metrics",
        "pending",
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
        self.pending: list[PendingCounter | PendingHistogram] = []  # what flush() hands on
        self.statuses: dict[int, PendingCounter] = {}
        self.duration = self._histogram(metrics.duration)
        # Thread series on a route's first request served in a thread: none for routes on
        # the loop or on FastAPI's own handler, which never record them.
        self.queue_wait: PendingHistogram | None = None
        self.db_seconds = self._counter(metrics.db_seconds)
        self.db_statements = self._counter(metrics.db_statements)

    def _counter(self, counter: Any, *extra: str) -> PendingCounter:
        pending = PendingCounter(counter.labels(*self.labels, *extra))
        self.pending.append(pending)
        return pending

    def _histogram(self, histogram: Any) -> PendingHistogram:
        pending = PendingHistogram(histogram.labels(*self.labels))
        self.pending.append(pending)
        return pending

    def thread_children(self) -> None:
        metrics = self.metrics
        self.queue_wait = self._histogram(metrics.queue_wait)
        self.thread_seconds = self._counter(metrics.thread_seconds)
        self.thread_cpu = self._counter(metrics.thread_cpu)
        self.thread_blocked = self._counter(metrics.thread_blocked)
        self.thread_contention = self._counter(metrics.thread_contention)

    def status(self, code: int) -> PendingCounter:
        pending = self.statuses.get(code)
        if pending is None:
            pending = self.statuses[code] = self._counter(self.metrics.requests, str(code))
        return pending

    def flush(self) -> None:
        for pending in self.pending:
            pending.flush()


class MetricsMiddleware:
    """The first middleware: one RequestInfo per request, observed after the response.

    Installed as `Middleware(MetricsMiddleware, recorder=recorder)`; the request's
    RequestInfo is reached through `gateway.request_info.current_request` only. An outer
    middleware of the embedder's may set one first, to read what the gateway filled in.
    """

    def __init__(self, app: ASGIApp, recorder: Recorder, header: str = "") -> None:
        """`header`: the response header naming the side that served a route ("" for none)."""
        self.app = app
        self.recorder = recorder
        self.sides = header_values(header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = current_request.get()
        if info is None:
            info = RequestInfo(scope["method"], scope["path"])
        else:
            info.method, info.request_path = scope["method"], scope["path"]
        token = current_request.set(info)
        live = self.recorder.live
        live[id(info)] = info
        status = 500  # what the server answers if the app fails before a response starts
        started = time.perf_counter()
        sides = self.sides

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The send wrapped anyway for the status: the header costs a lookup here.
                if sides is not None and info.implementation is not None:
                    message["headers"] = [*message.get("headers", ()), sides[info.implementation]]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            current_request.reset(token)
            del live[id(info)]
            self.recorder.observe(scope, info, status, elapsed)


def header_values(header: str) -> dict[Implementation, tuple[bytes, bytes]] | None:
    """The (name, value) header pair per side, encoded once; None when `header` is ""."""
    if not header:
        return None
    name = header.lower().encode("latin-1")
    return {side: (name, side.value.encode("latin-1")) for side in Implementation}


class ImplementationHeader:
    """With metrics off, the one middleware: names the side that served a route in `header`.

        Middleware(ImplementationHeader, header="x-gateway-implementation")

    It keeps a RequestInfo in `current_request` for the dispatcher to fill in, as
    MetricsMiddleware does (which adds the header itself when metrics are on).
    """

    def __init__(self, app: ASGIApp, header: str) -> None:
        self.app = app
        sides = header_values(header)
        if sides is None:
            raise ValueError("ImplementationHeader needs a header name; install none instead")
        self.sides = sides

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = current_request.get()  # an outer middleware of the embedder's may set one
        if info is None:
            info = RequestInfo(scope["method"], scope["path"])
        token = current_request.set(info)
        sides = self.sides

        async def send_side(message: Message) -> None:
            if message["type"] == "http.response.start" and info.implementation is not None:
                message["headers"] = [*message.get("headers", ()), sides[info.implementation]]
            await send(message)

        try:
            await self.app(scope, receive, send_side)
        finally:
            current_request.reset(token)


class Recorder:
    """Turns finished requests into observations; samples process gauges on the loop."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        registry: CollectorRegistry = REGISTRY,
        *,
        admin_prefix: str = "/_gateway",
        engines: Engines = lambda: (),
        threads: LegacyThreads | None = None,
    ) -> None:
        """A route's series appear with its first request (its status is a label anyway),
        so an idle /metrics carries no zeros for routes nobody called."""
        self.registry = registry
        self.metrics = metrics
        self.engines = engines
        self.threads = threads  # the legacy requests' thread limiter, in the threadpool gauge
        self.live: dict[int, RequestInfo] = {}  # requests in flight
        self.children: dict[tuple[str, str, str], _Children] = {}
        self.blocking_logged: set[str] = set()
        # (route key, implementation) -> the `async def` seen running a sync engine on the loop
        self.loop_blockers: dict[tuple[str, str], str] = {}
        self.admin_prefix = admin_prefix
        self.started = time.time()
        self.static_paths: set[str] = set()
        self.cpu_factor = 1.0  # from the sampler's CPU probe
        self.process_cpu_rate = 0.0  # cores this process used between the last two samples
        self._cpu_mark: tuple[float, float] | None = None
        self.owner = threading.get_ident()  # the thread that observes; set again at startup
        self.async_pool_wait: PendingHistogram | None = None
        self.lazy_loads: LazyLoads | None = None  # counts RequestInfo.lazy_loads (Metering's)
        self._in_progress_shown: set[tuple[str, str, str]] = set()
        # Called with (info, status, seconds) after each request (the canary judge's tally).
        self.listeners: list[Callable[[RequestInfo, int, float], None]] = []
        metrics.recorders.add(self)
        for method in (*sorted(METHODS), "OTHER"):
            self.child(UNMATCHED, method, NO_IMPLEMENTATION)

    def child(self, path: str, method: str, implementation: str) -> _Children:
        key = (path, method, implementation)
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = _Children(key, self.metrics)
        return found

    def labels_of(self, info: RequestInfo) -> tuple[str, str, str]:
        method = info.method
        if method not in METHODS:
            method = "OTHER"
        if info.implementation is not None:
            return info.path, method, info.implementation.value
        # The gateway's own endpoints by path (admin under one label); the rest shares one.
        path = info.request_path
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
        labels = self.labels_of(info)
        children = self.children.get(labels) or self.child(*labels)
        children.status(status).inc()
        for listener in self.listeners:
            listener(info, status, elapsed)
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
            # The process's CPU during the request, from its recent rate: reading
            # time.process_time() per request would cost a system call that walks every
            # thread of the process (about 10 µs with 1000 threads).
            process_cpu = self.process_cpu_rate * elapsed
            contention = thread_contention(
                thread, info.db_seconds, elapsed, process_cpu, self.cpu_factor
            )
            if contention:
                children.thread_contention.inc(contention)
        if info.db_statements:
            children.db_seconds.inc(info.db_seconds)
            children.db_statements.inc(info.db_statements)
        if info.lazy_loads and self.lazy_loads is not None:
            self.lazy_loads.count(info.route, info.lazy_loads)
        if info.loop_blocking_seconds:
            self.metrics.loop_blocked.labels(*labels).inc(info.loop_blocking_seconds)
            self.metrics.loop_blocking_requests.labels(*labels).inc()
            if info.loop_blocker is not None:
                self.loop_blockers[(info.route, labels[2])] = info.loop_blocker
            self.log_blocking(scope, info)

    def log_blocking(self, scope: Scope, info: RequestInfo) -> None:
        if info.route in self.blocking_logged:
            return
        self.blocking_logged.add(info.route)
        where = info.loop_blocker or qualified_name(scope.get("endpoint"))
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
        self.flush()
        self.measure_process_cpu()
        for state, value in threadpool_stats(self.threads).items():
            self.metrics.threadpool.labels(state).set(value)
        for name, engine in self.engines():
            pool: Any = engine.pool
            for state, reader in (("size", "size"), ("checked_out", "checkedout")):
                read = getattr(pool, reader, None)
                if read is not None:
                    self.metrics.pool.labels(name, state).set(read())
        counts: dict[tuple[str, str, str], int] = {}
        for info in list(self.live.values()):
            labels = self.labels_of(info)
            counts[labels] = counts.get(labels, 0) + 1
        for labels in self._in_progress_shown | counts.keys():
            self.metrics.in_progress.labels(*labels).set(counts.get(labels, 0))
        self._in_progress_shown = set(counts)

    def measure_process_cpu(self) -> None:
        """Update `process_cpu_rate` from the process CPU time since the last call."""
        mark = (time.perf_counter(), time.process_time())
        last, self._cpu_mark = self._cpu_mark, mark
        if last is not None and mark[0] > last[0]:
            self.process_cpu_rate = (mark[1] - last[1]) / (mark[0] - last[0])

    def show_mode(self, key: str, flag: Flag) -> None:
        method, _, path = key.partition(" ")
        for mode in Mode:
            self.metrics.route_mode.labels(path, method, mode.value).set(
                1 if flag.mode is mode else 0
            )
        self.metrics.route_async_percent.labels(path, method).set(
            flag.mode.async_percent(flag.percent)
        )


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


def metrics_for(app: Any) -> Recorder:
    """The metrics recorder of a built gateway app (raises if metrics are off)."""
    recorder = getattr(app.state, "gateway_metrics", None)
    if not isinstance(recorder, Recorder):
        raise LookupError("This app has no gateway metrics (GATEWAY_METRICS=false?).")
    return recorder
