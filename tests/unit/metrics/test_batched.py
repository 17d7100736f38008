"""gateway.metrics.batched: batched observations end as direct prometheus_client calls."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.metrics.batched import PendingCounter, PendingHistogram

BUCKETS = (0.001, 0.01, 0.1, 1.0)
# On a bound, between bounds, above the last, zero and negative: every bucketing rule.
VALUES = (0.0, -1.0, 0.001, 0.0010001, 0.05, 0.1, 0.7, 1.0, 3.0, 1000.0)


def _histograms() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("t_seconds", "t", ["route"], buckets=BUCKETS, registry=direct_registry)
    batched = Histogram("t_seconds", "t", ["route"], buckets=BUCKETS, registry=batched_registry)
    return direct_registry, direct, batched_registry, batched


def _exposition(registry: CollectorRegistry) -> list[str]:
    # The _created samples carry the creation time, which differs between the two.
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


def _observe_both(
    flush_each: bool,
) -> tuple[CollectorRegistry, CollectorRegistry, PendingHistogram]:
    """Every value into a histogram directly and into a batched twin; return both
    registries and the batch (flushed after each value if `flush_each`)."""
    direct_registry, direct, batched_registry, batched = _histograms()
    pending = PendingHistogram(batched.labels("/a"))
    for value in VALUES:
        direct.labels("/a").observe(value)
        pending.observe(value)
        if flush_each:
            pending.flush()
    return direct_registry, batched_registry, pending


def test_histogram_flush_matches_direct_observe() -> None:
    direct_registry, batched_registry, pending = _observe_both(flush_each=False)
    assert _exposition(batched_registry) != _exposition(direct_registry)  # nothing flushed yet
    pending.flush()
    assert _exposition(batched_registry) == _exposition(direct_registry)


def test_histogram_flush_twice_adds_only_the_new_observations() -> None:
    direct_registry, batched_registry, pending = _observe_both(flush_each=True)
    pending.flush()  # nothing pending: adds nothing
    assert _exposition(batched_registry) == _exposition(direct_registry)


def test_counter_flush_adds_the_sum() -> None:
    registry = CollectorRegistry()
    counter = Counter("c", "c", ["route"], registry=registry)
    pending = PendingCounter(counter.labels("/a"))
    pending.inc()
    pending.inc(2.5)
    assert registry.get_sample_value("c_total", {"route": "/a"}) == 0.0
    pending.flush()
    pending.flush()
    assert registry.get_sample_value("c_total", {"route": "/a"}) == 3.5


def test_histogram_needs_a_prometheus_histogram_child() -> None:
    counter = Counter("c", "c", registry=CollectorRegistry())
    with pytest.raises(TypeError, match="expected a prometheus_client Histogram child"):
        PendingHistogram(counter)
