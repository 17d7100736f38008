"""Lazy loads per legacy route: what an async twin must eager-load or it raises MissingGreenlet.

    lazy = LazyLoads(registry)            # gateway_lazy_loads_total{route, relationship}
    recorder.lazy_loads = lazy            # counts each finished request's RequestInfo.lazy_loads

A relationship that legacy code reads lazily (in the function, or through a response_model
that serializes it) runs a SELECT when it is read; on an AsyncSession that read raises
MissingGreenlet. The gateway's dialect events (gateway.db.events) see each statement of a
legacy request and note the relationship of each lazy load in its RequestInfo; the recorder
counts them here when the request ends. Loads that need no SQL (a many-to-one found in the
identity map) are not counted: they do not raise under async either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter

__all__ = ["LAZY_LOADS", "LazyLoads", "lazy_load_totals"]

LAZY_LOADS = "gateway_lazy_loads"  # recorded and read back here, by route and relationship


class LazyLoads:
    """Counts lazy relationship loads of legacy requests in `registry`."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.counter = Counter(
            LAZY_LOADS,
            "Relationships a legacy route loaded lazily (an async twin must eager-load them).",
            ["route", "relationship"],
            registry=registry,
        )

    def count(self, route: str, relationships: Iterable[str]) -> None:
        """One request of `route` loaded each of `relationships` lazily (once per load)."""
        for relationship in relationships:
            self.counter.labels(route, relationship).inc()


def lazy_load_totals(registry: CollectorRegistry) -> list[dict[str, Any]]:
    """Per legacy route, the relationships it loaded lazily and how often (from the metrics:
    one worker, or a host's all), most first: what its async twin must eager-load."""
    found: dict[str, dict[str, int]] = {}
    for family in registry.collect():
        if family.name != LAZY_LOADS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                by_route = found.setdefault(sample.labels["route"], {})
                relationship = sample.labels["relationship"]
                by_route[relationship] = by_route.get(relationship, 0) + int(sample.value)
    return [
        {"route": route, "relationships": dict(sorted(rels.items(), key=lambda kv: -kv[1]))}
        for route, rels in sorted(found.items())
    ]
