"""Every gateway_* metric, and how /metrics exposes them (one worker, or all of them).

    metrics = GatewayMetrics(registry)      # a Gateway makes one, in its own registry
    metrics.requests                        # the Counter behind gateway_requests_total
    body = generate_latest(scrape_registry(registry))

The per-request side (middleware, batched label children) is `gateway.recorder`; reading
the totals back for the report is `gateway.readings`.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol
from weakref import WeakSet

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gateway.workers import MULTIPROC_ENV, mark_dead_workers

__all__ = ["GatewayMetrics", "scrape_registry"]

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
        self.recorders: WeakSet[_Flushable] = WeakSet()
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
