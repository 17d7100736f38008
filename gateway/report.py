"""The migration report: which legacy route frees the most thread capacity if migrated.

    numbers = route_numbers(registry)              # totals from the metrics
    report = rank(numbers, window_seconds=600.0)   # pure: no I/O
    report.candidates[0].key                       # "GET /orders/{order_id}"

Freed capacity of a legacy route = blocked thread-seconds per second
    = request rate x mean blocked time per request
    = sum(worker-thread wall time - thread CPU time - CPU/GIL wait) / window.
The CPU/GIL wait (gateway_thread_contention_seconds) is an estimate: a thread waiting for
the GIL while other threads run is off-CPU too, but async would not free that time.
A route whose handler time is mostly CPU (cpu_share >= CPU_BOUND_SHARE) is marked: async
is concurrency, not parallelism, so migrating it frees little.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "CPU_BOUND_SHARE",
    "Candidate",
    "Regression",
    "Report",
    "RouteNumbers",
    "quantile",
    "rank",
    "report_router",
    "route_numbers",
]

CPU_BOUND_SHARE = 0.5
FORMULA = (
    "blocked_thread_seconds_per_second = rate x mean_blocked_seconds, "
    "blocked = worker-thread wall time - thread CPU time - estimated CPU/GIL wait"
)


@dataclass
class RouteNumbers:
    """Cumulative totals for one (route, method, implementation), as the metrics hold them."""

    route: str
    method: str
    implementation: str
    requests: float = 0.0
    errors: float = 0.0  # 5xx responses
    buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative count)
    thread_requests: float = 0.0
    queue_seconds: float = 0.0
    thread_seconds: float = 0.0
    thread_cpu_seconds: float = 0.0
    thread_blocked_seconds: float = 0.0
    thread_contention_seconds: float = 0.0
    db_seconds: float = 0.0
    db_statements: float = 0.0
    loop_blocked_seconds: float = 0.0
    loop_blocking_requests: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.method} {self.route}"


@dataclass(frozen=True)
class Candidate:
    """One legacy route in the ranking (seconds; shares are 0-1; None when unmeasured)."""

    key: str
    requests: int
    rate_per_second: float
    blocked_thread_seconds_per_second: float
    mean_blocked_seconds: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    mean_queue_wait_seconds: float | None
    db_share: float | None
    cpu_share: float | None
    cpu_wait_share: float | None  # of thread time: waiting for the CPU/GIL, not freed
    async_will_not_help: bool


@dataclass(frozen=True)
class Regression:
    """An async route that ran a sync engine on the event loop thread."""

    key: str
    implementation: str
    requests_blocking: int
    loop_blocked_seconds: float
    loop_blocked_seconds_per_second: float
    where: str | None = None


@dataclass(frozen=True)
class Report:
    window_seconds: float
    candidates: list[Candidate]
    regressions: list[Regression]
    formula: str = FORMULA

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile from cumulative histogram buckets, interpolated like histogram_quantile."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    ordered = sorted(buckets)
    total = ordered[-1][1]
    rank_at = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank_at:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound, as Prometheus
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank_at - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def _share(part: float, whole: float) -> float | None:
    return min(part / whole, 1.0) if whole > 0 else None


def rank(
    numbers: Iterable[RouteNumbers],
    window_seconds: float,
    *,
    where: Mapping[str, str] | None = None,
    cpu_bound_share: float = CPU_BOUND_SHARE,
) -> Report:
    """Rank legacy routes by blocked thread-seconds per second; list blocking async routes.

    Pure: give it the totals and the window they were collected over.
    """
    window = max(window_seconds, 1e-9)
    candidates: list[Candidate] = []
    regressions: list[Regression] = []
    for row in numbers:
        if row.implementation == "legacy" and row.requests > 0:
            timed = row.thread_requests > 0
            contention = min(row.thread_contention_seconds, row.thread_blocked_seconds)
            blocked = row.thread_blocked_seconds - contention
            handler = row.thread_seconds - contention
            cpu_share = _share(row.thread_cpu_seconds, handler)
            candidates.append(
                Candidate(
                    key=row.key,
                    requests=int(row.requests),
                    rate_per_second=row.requests / window,
                    blocked_thread_seconds_per_second=blocked / window,
                    mean_blocked_seconds=blocked / row.thread_requests if timed else None,
                    p50_seconds=quantile(0.5, row.buckets),
                    p95_seconds=quantile(0.95, row.buckets),
                    mean_queue_wait_seconds=(
                        row.queue_seconds / row.thread_requests if timed else None
                    ),
                    db_share=_share(row.db_seconds, handler),
                    cpu_share=cpu_share,
                    cpu_wait_share=_share(contention, row.thread_seconds),
                    async_will_not_help=cpu_share is not None and cpu_share >= cpu_bound_share,
                )
            )
        if row.loop_blocked_seconds > 0 and row.implementation != "legacy":
            regressions.append(
                Regression(
                    key=row.key,
                    implementation=row.implementation,
                    requests_blocking=int(row.loop_blocking_requests),
                    loop_blocked_seconds=row.loop_blocked_seconds,
                    loop_blocked_seconds_per_second=row.loop_blocked_seconds / window,
                    where=(where or {}).get(row.key),
                )
            )
    candidates.sort(key=lambda c: (-c.blocked_thread_seconds_per_second, -c.rate_per_second))
    regressions.sort(key=lambda r: -r.loop_blocked_seconds)
    return Report(window_seconds=window_seconds, candidates=candidates, regressions=regressions)


_TOTALS = {
    "gateway_threadpool_queue_seconds_count": "thread_requests",
    "gateway_threadpool_queue_seconds_sum": "queue_seconds",
    "gateway_thread_seconds_total": "thread_seconds",
    "gateway_thread_cpu_seconds_total": "thread_cpu_seconds",
    "gateway_thread_blocked_seconds_total": "thread_blocked_seconds",
    "gateway_thread_contention_seconds_total": "thread_contention_seconds",
    "gateway_db_seconds_total": "db_seconds",
    "gateway_db_statements_total": "db_statements",
    "gateway_loop_blocked_seconds_total": "loop_blocked_seconds",
    "gateway_loop_blocking_requests_total": "loop_blocking_requests",
}


def route_numbers(registry: CollectorRegistry) -> list[RouteNumbers]:
    """Read the per-route totals out of a registry (or a multiprocess aggregate)."""
    rows: dict[tuple[str, str, str], RouteNumbers] = {}
    buckets: dict[tuple[str, str, str], dict[float, float]] = {}
    for family in registry.collect():
        if not family.name.startswith("gateway_"):
            continue
        for sample in family.samples:
            labels = sample.labels
            if "route" not in labels or "implementation" not in labels:
                continue
            key = (labels["route"], labels.get("method", ""), labels["implementation"])
            row = rows.get(key) or rows.setdefault(key, RouteNumbers(*key))
            name = sample.name
            if name == "gateway_requests_total":
                row.requests += sample.value
                if labels.get("status", "").startswith("5"):
                    row.errors += sample.value
            elif name == "gateway_request_duration_seconds_bucket":
                found = buckets.setdefault(key, {})
                bound = float(labels["le"])
                found[bound] = found.get(bound, 0.0) + sample.value
            elif name in _TOTALS:
                attribute = _TOTALS[name]
                setattr(row, attribute, getattr(row, attribute) + sample.value)
    for key, found in buckets.items():
        rows[key].buckets = sorted(found.items())
    return list(rows.values())


def started_at(default: float) -> float:
    """When serving started: set by `gateway serve` for all workers, else this process."""
    value = os.environ.get("GATEWAY_SERVE_STARTED")
    try:
        return float(value) if value else default
    except ValueError:
        return default


def build_report(gateway: Gateway, registry: CollectorRegistry, started: float) -> Report:
    """The report for a running gateway, from its metrics since `started` (epoch seconds)."""
    where = {}
    for key, entry in gateway.entries.items():
        if entry.async_ is not None:
            where[key] = entry.async_.where
    window = max(time.time() - started_at(started), 1e-3)
    return rank(route_numbers(registry), window, where=where)


def _reader(gateway: Gateway) -> Any:
    try:
        from gateway.auth import require_reader
    except ImportError:  # the admin token module is absent: reads stay open (the default)

        async def open_reads() -> None:
            return None

        return open_reads
    return require_reader(gateway)


def report_router(gateway: Gateway) -> APIRouter:
    """`GET {admin_prefix}/report`: the ranking as JSON (async; never takes a worker thread)."""
    router = APIRouter()
    reader = _reader(gateway)

    @router.get("/report")
    async def report(request: Request, _who: str | None = Depends(reader)) -> dict[str, Any]:
        from gateway.metrics import metrics_for, scrape_registry

        try:
            recorder = metrics_for(request.app)
        except LookupError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        recorder.sample()
        registry = scrape_registry(recorder.registry)
        return build_report(gateway, registry, recorder.started).as_dict()

    return router
