"""The migration report: which legacy route frees the most thread capacity if migrated, and
how each paired route's two sides compare while it migrates.

    window = snapshots.window(now, current, seconds=300.0)   # gateway.metrics.readings
    report = window_report(window, modes={"GET /orders/{order_id}": "canary 10%"})
    report.candidates[0].key                                  # "GET /orders/{order_id}"
    report.pairs[0].sides["async"].p95_seconds                # the canary's p95

Pure: no I/O, nothing but this module. `rank(numbers, window_seconds)` is the ranking alone.

Freed capacity of a legacy route = blocked thread-seconds per second
    = request rate x mean blocked time per request
    = sum(worker-thread wall time - thread CPU time - CPU/GIL wait) / window.
The CPU/GIL wait (gateway_thread_contention_seconds) is an estimate: a thread waiting for
the GIL while other threads run is off-CPU too, but async would not free that time.
A legacy `async def` route that runs a sync engine on the event loop ranks above all of
them, by loop-blocked seconds per second: while it waits for the database no other request
of the worker makes progress, so it costs every request, not a thread of its own.
A route whose handler time is mostly CPU (cpu_share >= CPU_BOUND_SHARE over at least
MIN_TIMED_REQUESTS thread-timed requests in the window) is marked: async is concurrency,
not parallelism, so migrating it frees little. Routes whose mode is `async` leave the
ranking for the `migrated` list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.metrics.readings import RouteNumbers, Window

__all__ = [
    "CPU_BOUND_SHARE",
    "MIN_TIMED_REQUESTS",
    "UNPAIRED",
    "Candidate",
    "Migrated",
    "Pair",
    "Regression",
    "Report",
    "Series",
    "Side",
    "quantile",
    "rank",
    "side_by_side",
    "window_report",
]

CPU_BOUND_SHARE = 0.5
# Fewer thread-timed requests than this say too little about a route's CPU share to tell
# an operator not to migrate it (a cold start or one slow request would decide).
MIN_TIMED_REQUESTS = 100
SIDES = ("legacy", "async")
UNPAIRED = "legacy only"  # the mode shown for a legacy route with no async twin
FORMULA = (
    "blocked_thread_seconds_per_second = rate x mean_blocked_seconds, "
    "blocked = worker-thread wall time - thread CPU time - estimated CPU/GIL wait"
)


@dataclass(frozen=True)
class Candidate:
    """One legacy route in the ranking (seconds; shares are 0-1; None when unmeasured)."""

    key: str
    mode: str  # "legacy", "canary 10%", or "legacy only" for a route with no async twin
    requests: int
    timed_requests: int  # served in a worker thread, so with CPU and blocked time
    rate_per_second: float
    blocked_thread_seconds_per_second: float
    mean_blocked_seconds: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    mean_queue_wait_seconds: float | None
    db_share: float | None
    cpu_share: float | None
    cpu_wait_share: float | None  # of thread time: waiting for the CPU/GIL, not freed
    async_will_not_help: bool  # CPU-bound, over at least MIN_TIMED_REQUESTS timed requests
    loop_blocked_seconds_per_second: float = 0.0  # > 0: blocks the loop, so ranked first


@dataclass(frozen=True)
class Side:
    """One implementation of a paired route over the window (error_share: 5xx of requests)."""

    requests: int
    rate_per_second: float
    errors: int
    error_share: float | None
    p50_seconds: float | None
    p95_seconds: float | None


@dataclass(frozen=True)
class Series:
    """Per step of the window: when it ended, and each side's rate, 5xx share and p95."""

    at: list[float]
    rate_per_second: dict[str, list[float]]
    error_share: dict[str, list[float | None]]
    p95_seconds: dict[str, list[float | None]]


@dataclass(frozen=True)
class Pair:
    """A paired route: its mode and both sides over the window (`sides["legacy"]`,
    `sides["async"]`), with the series a chart draws."""

    key: str
    mode: str
    sides: dict[str, Side]
    series: Series


@dataclass(frozen=True)
class Migrated:
    """A paired route serving all its traffic on async: out of the ranking."""

    key: str
    requests: int
    rate_per_second: float
    error_share: float | None
    p95_seconds: float | None
    legacy_requests: int  # still served by legacy in the window (before the flip)


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
    """The whole report; `as_dict()` is the JSON of GET {prefix}/report."""

    window_seconds: float  # what the rates are over
    candidates: list[Candidate]
    regressions: list[Regression]
    migrated: list[Migrated] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    requested_window_seconds: float | None = None
    window_start: float | None = None
    window_end: float | None = None
    window_filled: bool = True
    cpu_bound_min_requests: int = MIN_TIMED_REQUESTS
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
    where: Mapping[tuple[str, str], str] | None = None,
    modes: Mapping[str, str] | None = None,
    cpu_bound_share: float = CPU_BOUND_SHARE,
    min_timed_requests: int = MIN_TIMED_REQUESTS,
) -> Report:
    """Rank legacy routes by blocked thread-seconds per second, those blocking the loop first;
    list every `async def` route that blocked the loop (`where`: (key, implementation) ->
    the function that did, as a regression names it).

    `modes` maps each paired route's key to its mode as `Flag.describe()` says it
    ("legacy", "canary 10%", "async"); a route on "async" goes to `migrated` instead.
    Pure: give it the totals and the window they were collected over.
    """
    window = max(window_seconds, 1e-9)
    modes = modes or {}
    rows = list(numbers)
    candidates: list[Candidate] = []
    regressions: list[Regression] = []
    for row in rows:
        mode = modes.get(row.key, UNPAIRED)
        if row.implementation == "legacy" and row.requests > 0 and mode != "async":
            candidates.append(_candidate(row, mode, window, cpu_bound_share, min_timed_requests))
        if row.loop_blocked_seconds > 0:  # an `async def` route, migrated or legacy
            regressions.append(
                Regression(
                    key=row.key,
                    implementation=row.implementation,
                    requests_blocking=int(row.loop_blocking_requests),
                    loop_blocked_seconds=row.loop_blocked_seconds,
                    loop_blocked_seconds_per_second=row.loop_blocked_seconds / window,
                    where=(where or {}).get((row.key, row.implementation)),
                )
            )
    candidates.sort(
        key=lambda c: (
            -c.loop_blocked_seconds_per_second,
            -c.blocked_thread_seconds_per_second,
            -c.rate_per_second,
        )
    )
    regressions.sort(key=lambda r: -r.loop_blocked_seconds)
    return Report(
        window_seconds=window_seconds,
        candidates=candidates,
        regressions=regressions,
        migrated=_migrated(rows, modes, window),
        cpu_bound_min_requests=min_timed_requests,
    )


def _candidate(
    row: RouteNumbers, mode: str, window: float, cpu_bound_share: float, min_timed: int
) -> Candidate:
    timed = row.thread_requests > 0
    contention = min(row.thread_contention_seconds, row.thread_blocked_seconds)
    blocked = row.thread_blocked_seconds - contention
    handler = row.thread_seconds - contention
    cpu_share = _share(row.thread_cpu_seconds, handler)
    return Candidate(
        key=row.key,
        mode=mode,
        requests=int(row.requests),
        timed_requests=int(row.thread_requests),
        rate_per_second=row.requests / window,
        blocked_thread_seconds_per_second=blocked / window,
        mean_blocked_seconds=blocked / row.thread_requests if timed else None,
        p50_seconds=quantile(0.5, row.buckets),
        p95_seconds=quantile(0.95, row.buckets),
        mean_queue_wait_seconds=row.queue_seconds / row.thread_requests if timed else None,
        db_share=_share(row.db_seconds, handler),
        cpu_share=cpu_share,
        cpu_wait_share=_share(contention, row.thread_seconds),
        async_will_not_help=(
            cpu_share is not None
            and cpu_share >= cpu_bound_share
            and row.thread_requests >= min_timed
        ),
        loop_blocked_seconds_per_second=row.loop_blocked_seconds / window,
    )


def _migrated(rows: list[RouteNumbers], modes: Mapping[str, str], window: float) -> list[Migrated]:
    by_side = _by_side(rows)
    found = []
    for key in sorted(k for k, mode in modes.items() if mode == "async"):
        served = by_side.get((key, "async"))
        legacy = by_side.get((key, "legacy"))
        side = _side(served, window)
        found.append(
            Migrated(
                key=key,
                requests=side.requests,
                rate_per_second=side.rate_per_second,
                error_share=side.error_share,
                p95_seconds=side.p95_seconds,
                legacy_requests=int(legacy.requests) if legacy else 0,
            )
        )
    return found


def _by_side(rows: Iterable[RouteNumbers]) -> dict[tuple[str, str], RouteNumbers]:
    return {(row.key, row.implementation): row for row in rows}


def _side(row: RouteNumbers | None, seconds: float) -> Side:
    if row is None:
        return Side(0, 0.0, 0, None, None, None)
    return Side(
        requests=int(row.requests),
        rate_per_second=row.requests / seconds,
        errors=int(row.errors),
        error_share=row.errors / row.requests if row.requests > 0 else None,
        p50_seconds=quantile(0.5, row.buckets),
        p95_seconds=quantile(0.95, row.buckets),
    )


def side_by_side(window: Window, modes: Mapping[str, str]) -> list[Pair]:
    """Legacy and async of every paired route (the keys of `modes`) over `window`, with a
    series per step of the window for the page's charts; routes migrating come first."""
    totals = _by_side(window.numbers)
    steps = [(max(step.end - step.start, 1e-3), step.end, _by_side(step.numbers))
             for step in window.steps]  # fmt: skip
    pairs = []
    for key in modes:
        sides = {name: _side(totals.get((key, name)), window.seconds) for name in SIDES}
        per_step = [
            (end, {name: _side(found.get((key, name)), seconds) for name in SIDES})
            for seconds, end, found in steps
        ]
        series = Series(
            at=[end for end, _ in per_step],
            rate_per_second={n: [s[n].rate_per_second for _, s in per_step] for n in SIDES},
            error_share={n: [s[n].error_share for _, s in per_step] for n in SIDES},
            p95_seconds={n: [s[n].p95_seconds for _, s in per_step] for n in SIDES},
        )
        pairs.append(Pair(key=key, mode=modes[key], sides=sides, series=series))
    # What is migrating first (canary, async), then the busiest: what an operator watches.
    pairs.sort(
        key=lambda p: (p.mode == "legacy", -sum(s.requests for s in p.sides.values()), p.key)
    )
    return pairs


def window_report(
    window: Window,
    *,
    modes: Mapping[str, str] | None = None,
    where: Mapping[tuple[str, str], str] | None = None,
    cpu_bound_share: float = CPU_BOUND_SHARE,
    min_timed_requests: int = MIN_TIMED_REQUESTS,
) -> Report:
    """The ranking, the migrated list and the side-by-side pairs over one window."""
    modes = modes or {}
    ranked = rank(
        window.numbers,
        window.seconds,
        where=where,
        modes=modes,
        cpu_bound_share=cpu_bound_share,
        min_timed_requests=min_timed_requests,
    )
    return Report(
        window_seconds=window.seconds,
        candidates=ranked.candidates,
        regressions=ranked.regressions,
        migrated=ranked.migrated,
        pairs=side_by_side(window, modes),
        requested_window_seconds=window.requested_seconds,
        window_start=window.start,
        window_end=window.end,
        window_filled=window.filled,
        cpu_bound_min_requests=min_timed_requests,
    )
