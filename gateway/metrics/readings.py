"""Reading the gateway's own metrics back, and keeping snapshots of them for a window.

    read = lambda: route_numbers(scrape_registry(registry))   # one worker, or all of them
    snapshots = Snapshots()                                   # every 10 s, 30 min kept
    snapshots.take_if_due(time.time(), read)                  # on each sampler tick
    window = snapshots.window(time.time(), read(), seconds=parse_window("5m"))
    report = window_report(window, modes=...)                 # gateway.report.ranking

A snapshot holds the cumulative totals at one moment; a window is the totals now minus the
newest snapshot taken at or before its start (or the oldest one, until the gateway has run
that long), and its steps are the differences between consecutive snapshots. With several
workers the totals read are the multiprocess aggregate, so every worker's snapshots are of
all workers together; each worker keeps its own, from its own start.
"""

from __future__ import annotations

import re
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from itertools import pairwise

from prometheus_client import CollectorRegistry

from gateway.metrics.series import REPORT_READS

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "SNAPSHOT_INTERVAL",
    "RouteNumbers",
    "Snapshot",
    "Snapshots",
    "Step",
    "Window",
    "difference",
    "parse_window",
    "route_numbers",
]

SNAPSHOT_INTERVAL = 10.0  # seconds between snapshots: the charts' resolution
DEFAULT_WINDOW = 300.0
MAX_WINDOW = 1800.0  # snapshots kept: 181 per worker


@dataclass
class RouteNumbers:
    """Totals for one (route, method, implementation): cumulative as the metrics hold them,
    or the difference over a window."""

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
class Step:
    """The totals added between two snapshots (epoch seconds): one point of a chart."""

    start: float
    end: float
    numbers: list[RouteNumbers]


@dataclass(frozen=True)
class Window:
    """Totals over [start, end] (epoch seconds), and the steps they add up from, oldest first.

    `requested_seconds` is what was asked for; until a gateway has run that long the window
    covers less (`seconds`), and `filled` is False.
    """

    start: float
    end: float
    requested_seconds: float
    numbers: list[RouteNumbers]
    steps: list[Step] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-3)

    @property
    def filled(self) -> bool:
        return self.end - self.start >= self.requested_seconds


_BY_FIELD = {target: name for name, target in REPORT_READS.items()}
_REQUESTS, _BUCKETS = _BY_FIELD["requests"], _BY_FIELD["buckets"]
# Plain totals: each sample adds to one RouteNumbers field (requests and buckets are read
# apart: a 5xx status also counts as an error, and buckets add up by bound).
_TOTALS = {
    name: target for name, target in REPORT_READS.items() if name not in (_REQUESTS, _BUCKETS)
}
_VALUES = tuple(f.name for f in fields(RouteNumbers) if f.type == "float")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*", re.IGNORECASE)
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}

Key = tuple[str, str, str]  # route, method, implementation
# One row packed: the histogram's bucket bounds (shared between snapshots), then the
# totals and the bucket counts as doubles, about 0.3 KB where a RouteNumbers takes 2 KB.
Packed = tuple[tuple[float, ...], "array[float]"]


def route_numbers(registry: CollectorRegistry) -> list[RouteNumbers]:
    """Read the per-route totals out of a registry (or a multiprocess aggregate)."""
    rows: dict[Key, RouteNumbers] = {}
    buckets: dict[Key, dict[float, float]] = {}
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
            if name == _REQUESTS:
                row.requests += sample.value
                if labels.get("status", "").startswith("5"):
                    row.errors += sample.value
            elif name == _BUCKETS:
                found = buckets.setdefault(key, {})
                bound = float(labels["le"])
                found[bound] = found.get(bound, 0.0) + sample.value
            elif name in _TOTALS:
                attribute = _TOTALS[name]
                setattr(row, attribute, getattr(row, attribute) + sample.value)
    for key, found in buckets.items():
        rows[key].buckets = sorted(found.items())
    return list(rows.values())


def parse_window(text: str | None, *, least: float = SNAPSHOT_INTERVAL,
                 most: float = MAX_WINDOW) -> float:  # fmt: skip
    """Seconds from "300", "300s", "5m" or "0.5h" (None: DEFAULT_WINDOW); ValueError names
    the value and the range when it is not a duration from `least` to `most` seconds."""
    if text is None or not text.strip():
        return DEFAULT_WINDOW
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"window {text[:40]!r} is not a duration; expected seconds (300) or a number "
            "with s, m or h (5m)."
        )
    seconds = float(match.group(1)) * _UNIT[(match.group(2) or "s").lower()]
    if not least <= seconds <= most:
        raise ValueError(
            f"window {text.strip()!r} is {seconds:g} s; expected {least:g} to {most:g} s "
            f"(snapshots are taken every {SNAPSHOT_INTERVAL:g} s and kept for {MAX_WINDOW:g} s)."
        )
    return seconds


@dataclass(frozen=True)
class Snapshot:
    """Every route's cumulative totals at `at` (epoch seconds), packed."""

    at: float
    rows: dict[Key, Packed]

    @classmethod
    def of(
        cls, at: float, numbers: Iterable[RouteNumbers], previous: Snapshot | None = None
    ) -> Snapshot:
        """Pack `numbers`; a row unchanged since `previous` shares its memory."""
        rows: dict[Key, Packed] = {}
        for row in numbers:
            key = (row.route, row.method, row.implementation)
            bounds = tuple(bound for bound, _ in row.buckets)
            values = array("d", [getattr(row, name) for name in _VALUES])
            values.extend(count for _, count in row.buckets)
            old = previous.rows.get(key) if previous else None
            if old is not None and old[0] == bounds and old[1] == values:
                rows[key] = old
            else:
                rows[key] = (old[0] if old and old[0] == bounds else bounds, values)
        return cls(at, rows)


def _unpack(key: Key, packed: Packed) -> RouteNumbers:
    bounds, values = packed
    row = RouteNumbers(*key)
    for name, value in zip(_VALUES, values, strict=False):
        setattr(row, name, value)
    row.buckets = list(zip(bounds, values[len(_VALUES) :], strict=True))
    return row


def difference(
    newer: Snapshot, older: Snapshot, keys: set[str] | None = None
) -> list[RouteNumbers]:
    """What each route added from `older` to `newer` (rows that added nothing are left out;
    `keys`: only these "METHOD /path" keys).

    A total that went down was reset (its process's files are gone), so the newer value is
    all that was added, as Prometheus's rate() takes it.
    """
    found = []
    for key, (bounds, values) in newer.rows.items():
        if keys is not None and f"{key[1]} {key[0]}" not in keys:
            continue
        old = older.rows.get(key)
        if old is not None and old[1] is values:
            continue  # shared: unchanged
        added = array("d", values)
        if old is not None and old[0] == bounds and len(old[1]) == len(values):
            before = old[1]
            for i, value in enumerate(values):
                added[i] = value - before[i] if value >= before[i] else value
        if any(added):
            found.append(_unpack(key, (bounds, added)))
    return found


class Snapshots:
    """The snapshots one worker keeps: one every `interval` seconds for `keep` seconds."""

    def __init__(self, interval: float = SNAPSHOT_INTERVAL, keep: float = MAX_WINDOW) -> None:
        self.interval = interval
        self.keep = keep
        # One more than the window holds, so a full window still has a snapshot before it.
        self.taken: deque[Snapshot] = deque(maxlen=int(keep // interval) + 2)

    def add(self, at: float, numbers: Iterable[RouteNumbers]) -> Snapshot:
        """Keep the totals read at `at` (tests pass explicit times)."""
        snapshot = Snapshot.of(at, numbers, self.taken[-1] if self.taken else None)
        self.taken.append(snapshot)
        return snapshot

    def due(self, now: float) -> bool:
        return not self.taken or now - self.taken[-1].at >= self.interval

    def take_if_due(self, now: float, read: Callable[[], Iterable[RouteNumbers]]) -> bool:
        """Read and keep the totals when `interval` has passed since the last snapshot."""
        if not self.due(now):
            return False
        self.add(now, read())
        return True

    def window(
        self,
        now: float,
        current: Iterable[RouteNumbers],
        seconds: float,
        chart_keys: set[str] | None = None,
    ) -> Window:
        """The totals from `seconds` ago (or the oldest snapshot) to `current`, read at
        `now`; steps between snapshots only for `chart_keys` (None: every route)."""
        if not self.taken:
            return Window(now, now, seconds, [])
        end = Snapshot.of(now, current, self.taken[-1])
        start = now - seconds
        base = self.taken[0]
        for snapshot in self.taken:
            if snapshot.at > start:
                break
            base = snapshot
        points = [base, *(s for s in self.taken if base.at < s.at < now), end]
        steps = [
            Step(older.at, newer.at, difference(newer, older, chart_keys))
            for older, newer in pairwise(points)
        ]
        return Window(base.at, now, seconds, difference(end, base), steps)
