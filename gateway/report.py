"""The migration report: which legacy route frees the most thread capacity if migrated.

    numbers = route_numbers(registry)              # gateway.readings: totals from the metrics
    report = rank(numbers, window_seconds=600.0)   # pure: no I/O, nothing but this module
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CPU_BOUND_SHARE",
    "Candidate",
    "Regression",
    "Report",
    "RouteNumbers",
    "quantile",
    "rank",
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
    """An `async def` route (migrated, or legacy) that ran a sync engine on the loop thread."""

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
        if row.loop_blocked_seconds > 0:  # an `async def` route, migrated or legacy
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
