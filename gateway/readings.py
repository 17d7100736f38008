"""Reading the gateway's own metrics back: per-route totals for the migration report.

numbers = route_numbers(scrape_registry(registry))   # one worker, or all of them
report = rank(numbers, window_seconds(started))
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry

from gateway.report import RouteNumbers

__all__ = ["route_numbers", "started_at", "window_seconds"]

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


def window_seconds(started: float) -> float:
    """Seconds since serving started (see `started_at`), at least a millisecond."""
    return max(time.time() - started_at(started), 1e-3)
