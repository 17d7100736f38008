"""Observations kept in plain Python numbers, added to prometheus_client metrics in batches.

A prometheus_client `observe()` or `inc()` takes a lock and, in multiprocess mode, writes
to a memory-mapped file; a request would pay for several of them. Here a request adds to a
list slot or a float, and `flush()` hands the totals to the real metric child (a few times
a second, before every scrape, and at shutdown), so what Prometheus reads is unchanged.

    duration = PendingHistogram(histogram.labels("GET /users/{id}", "GET", "async"))
    duration.observe(0.012)      # on the event loop, per request
    duration.flush()             # on the same thread: adds counts and sum to the child

Not thread-safe by design: observe and flush run on one thread (the event loop).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

__all__ = ["PendingCounter", "PendingHistogram"]


class PendingCounter:
    """A counter child's increments, summed until `flush()`."""

    __slots__ = ("child", "value")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def flush(self) -> None:
        if self.value:
            value, self.value = self.value, 0.0
            self.child.inc(value)


class PendingHistogram:
    """A histogram child's observations, counted per bucket until `flush()`.

    Buckets follow prometheus_client's rule (the first upper bound >= the value), and the
    flush adds to the child's own bucket and sum values, the ones its `observe()` adds to.
    """

    __slots__ = ("bounds", "buckets", "child", "counts", "observed", "sum")

    def __init__(self, child: Any) -> None:
        buckets, bounds = getattr(child, "_buckets", None), getattr(child, "_upper_bounds", None)
        if buckets is None or bounds is None or not hasattr(child, "_sum"):
            raise TypeError(
                f"expected a prometheus_client Histogram child (with _buckets, _upper_bounds "
                f"and _sum), got {type(child).__name__}"
            )
        self.child = child
        self.buckets = buckets
        self.bounds = list(bounds)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.observed = 0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount
        self.observed += 1

    def flush(self) -> None:
        if not self.observed:
            return
        counts, self.counts = self.counts, [0] * len(self.bounds)
        total, self.sum, self.observed = self.sum, 0.0, 0
        self.child._sum.inc(total)
        for value, count in zip(self.buckets, counts, strict=True):
            if count:
                value.inc(count)
