"""Every gateway_* metric, and how /metrics exposes them (one worker, or all of them).

    metrics = GatewayMetrics(registry)      # a Gateway makes one, in its own registry
    metrics.requests                        # the Counter behind gateway_requests_total
    body = generate_latest(scrape_registry(registry))

The per-request side (middleware, batched label children) is `gateway.metrics.recorder`;
reading the totals back for the report is `gateway.metrics.readings`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from weakref import WeakSet

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gateway._process.workers import MULTIPROC_ENV, mark_dead_workers
from gateway.modes import mode_names

__all__ = ["METRICS", "REPORT_READS", "GatewayMetrics", "MetricSpec", "scrape_registry"]

log = logging.getLogger("gateway.metrics")

ROUTE_LABELS = ("route", "method", "implementation")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


@dataclass(frozen=True)
class MetricSpec:
    """One gateway_* metric, defined once: what the registry, the recorder and the readers use.

    `reads` maps a sample's name to the `RouteNumbers` field the report reads it into
    (gateway.metrics.readings); a metric without it is not in the report's numbers.
    """

    attribute: str  # the GatewayMetrics attribute that holds it
    kind: type[Counter] | type[Histogram] | type[Gauge]
    name: str
    help: str
    labels: tuple[str, ...] = ROUTE_LABELS
    buckets: tuple[float, ...] = ()
    multiprocess_mode: str = ""  # gauges: how worker processes' values combine
    reads: Mapping[str, str] = field(default_factory=dict)

    def build(self, registry: CollectorRegistry) -> Counter | Histogram | Gauge:
        options: dict[str, Any] = {"registry": registry}
        if self.buckets:
            options["buckets"] = self.buckets
        if self.multiprocess_mode:
            options["multiprocess_mode"] = self.multiprocess_mode
        return self.kind(self.name, self.help, self.labels, **options)


def _counter(attribute: str, name: str, help: str, reads: str = "") -> MetricSpec:
    """A per-route counter; `reads`: the RouteNumbers field its total goes to."""
    return MetricSpec(
        attribute, Counter, name, help, reads={f"{name}_total": reads} if reads else {}
    )


# Every metric GatewayMetrics registers, in exposition order. Other owners define theirs
# beside the code that records and reads them (gateway.metrics.lazy_loads, gateway.shadow.results,
# gateway.flags.follower, gateway.db.outage, gateway.canary.judge).
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "requests", Counter, "gateway_requests", "Requests served.", (*ROUTE_LABELS, "status"),
        reads={"gateway_requests_total": "requests"},  # and errors: the 5xx statuses
    ),
    MetricSpec(
        "duration", Histogram, "gateway_request_duration_seconds",
        "Time from the request reaching the gateway until its response finished.",
        buckets=LATENCY_BUCKETS, reads={"gateway_request_duration_seconds_bucket": "buckets"},
    ),
    MetricSpec(
        "in_progress", Gauge, "gateway_requests_in_progress",
        "Requests being served (per process in multiprocess mode).", multiprocess_mode="livesum",
    ),
    MetricSpec(
        "queue_wait", Histogram, "gateway_threadpool_queue_seconds",
        "Legacy requests: wait from arrival until the handler started in a worker thread.",
        buckets=WAIT_BUCKETS,
        reads={
            "gateway_threadpool_queue_seconds_count": "thread_requests",
            "gateway_threadpool_queue_seconds_sum": "queue_seconds",
        },
    ),
    _counter(
        "thread_seconds", "gateway_thread_seconds", "Worker-thread wall time of legacy handlers.",
        "thread_seconds",
    ),
    _counter(
        "thread_cpu", "gateway_thread_cpu_seconds", "Worker-thread CPU time of legacy handlers.",
        "thread_cpu_seconds",
    ),
    _counter(
        "thread_blocked", "gateway_thread_blocked_seconds",
        "Worker-thread time not on the CPU (I/O, sleeps, locks): wall minus CPU.",
        "thread_blocked_seconds",
    ),
    _counter(
        "thread_contention", "gateway_thread_contention_seconds",
        "Estimated part of the blocked time spent waiting for the CPU/GIL while other "
        "threads ran (not freed by migrating).",
        "thread_contention_seconds",
    ),
    _counter(
        "db_seconds", "gateway_db_seconds", "Time in database cursor execution.", "db_seconds"
    ),
    _counter(
        "db_statements", "gateway_db_statements", "Database statements executed.",
        "db_statements",
    ),
    _counter(
        "loop_blocked", "gateway_loop_blocked_seconds",
        "Seconds a sync engine ran on the event loop thread inside a request.",
        "loop_blocked_seconds",
    ),
    _counter(
        "loop_blocking_requests", "gateway_loop_blocking_requests",
        "Requests that used a sync engine on the event loop thread.", "loop_blocking_requests",
    ),
    MetricSpec(
        "threadpool", Gauge, "gateway_threadpool_threads",
        "Worker threadpool: size (tokens), busy threads and tasks waiting for one.", ("state",),
        multiprocess_mode="liveall",
    ),
    MetricSpec(
        "pool", Gauge, "gateway_db_pool_connections",
        "Connection pool of each gateway engine: size (configured), checked_out.",
        ("engine", "state"), multiprocess_mode="liveall",
    ),
    MetricSpec(
        "pool_wait", Histogram, "gateway_db_pool_wait_seconds",
        "Time to get a connection from a gateway engine's pool (incl. opening one).", ("engine",),
        buckets=WAIT_BUCKETS,
    ),
    MetricSpec(
        "loop_lag", Histogram, "gateway_event_loop_lag_seconds",
        "How late the event loop ran a periodic timer (scheduling delay).", (),
        buckets=LAG_BUCKETS,
    ),
    MetricSpec(
        "route_mode", Gauge, "gateway_route_mode",
        f"1 for the mode each paired route is serving ({mode_names()}).",
        ("route", "method", "mode"), multiprocess_mode="livemax",
    ),
    MetricSpec(
        "route_async_percent", Gauge, "gateway_route_async_percent",
        "Share of requests a paired route serves from its async implementation (0-100; "
        "0 in shadow, where legacy serves every client).",
        ("route", "method"), multiprocess_mode="livemax",
    ),
)  # fmt: skip
# The sample names the report reads, and the RouteNumbers field each goes to.
REPORT_READS: Mapping[str, str] = {
    sample: target for spec in METRICS for sample, target in spec.reads.items()
}


class GatewayMetrics:
    """Every metric of `METRICS`, registered once in `registry` (default: the global one)."""

    requests: Counter
    duration: Histogram
    in_progress: Gauge
    queue_wait: Histogram
    thread_seconds: Counter
    thread_cpu: Counter
    thread_blocked: Counter
    thread_contention: Counter
    db_seconds: Counter
    db_statements: Counter
    loop_blocked: Counter
    loop_blocking_requests: Counter
    threadpool: Gauge
    pool: Gauge
    pool_wait: Histogram
    loop_lag: Histogram
    route_mode: Gauge
    route_async_percent: Gauge

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        # Registered first so that reading the registry flushes batched observations
        # before the metrics themselves are collected.
        self.recorders: WeakSet[_Flushable] = WeakSet()
        registry.register(_Flusher(self.recorders))
        for spec in METRICS:
            setattr(self, spec.attribute, spec.build(registry))


class _Flushable(Protocol):
    def flush_if_owner(self) -> None: ...


class _Flusher(Collector):
    """Collects nothing: flushes the recorders' batched observations when the registry is
    read on their own thread (tests, or an embedder's exposition on the loop)."""

    def __init__(self, recorders: WeakSet[_Flushable]) -> None:
        self.recorders = recorders

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        for recorder in list(self.recorders):
            recorder.flush_if_owner()
        return []


def scrape_registry(registry: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """What /metrics exposes: `registry`, or every worker's files in multiprocess mode."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return registry
    from prometheus_client import multiprocess

    mark_dead_workers(directory)
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated, path=directory)  # type: ignore[no-untyped-call]
    return aggregated
