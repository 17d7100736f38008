"""Lazy loads per legacy route: what an async twin must eager-load or it raises MissingGreenlet.

    lazy = LazyLoads(registry)   # gateway_lazy_loads_total{route, relationship}
    lazy.install()               # every Session of the process, the legacy app's own too
    lazy.uninstall()

A relationship that legacy code reads lazily (in the function, or through a response_model
that serializes it) runs a SELECT when it is read; on an AsyncSession that read raises
MissingGreenlet. The ORM's own `do_orm_execute` event sees each such load (its
`lazy_loaded_from` is the object read), and the request in flight says which route read it.
Loads that need no SQL (a many-to-one found in the identity map) are not counted: they do
not raise under async either.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from sqlalchemy import event
from sqlalchemy.orm import Session

from gateway.modes import Implementation
from gateway.request_info import current_request

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
        self.installed = False

    def install(self) -> None:
        """Listen on every Session; idempotent."""
        if not self.installed:
            event.listen(Session, "do_orm_execute", self.on_execute)
            self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            event.remove(Session, "do_orm_execute", self.on_execute)
            self.installed = False

    def on_execute(self, state: Any) -> None:
        if not state.is_select or state.lazy_loaded_from is None:
            return
        info = current_request.get()
        if info is None or info.implementation is not Implementation.LEGACY:
            return
        path = state.loader_strategy_path.path
        relationship = str(path[-1]) if path else "(unknown)"
        self.counter.labels(info.route, relationship).inc()


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
