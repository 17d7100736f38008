"""prometheus_client internals: what it registered and under which label names.

prometheus_client (0.17 to 0.26 at least) has no public reader of a registry's collectors or
of a metric's label names; the generated metrics reference (gateway.cli.reference) needs both.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

__all__ = ["registered_label_names"]


def registered_label_names(registry: CollectorRegistry) -> dict[str, tuple[str, ...]]:
    """Each name registered in `registry` (families and their samples) with its label names."""
    return {
        name: tuple(getattr(collector, "_labelnames", ()))
        for collector, names in list(registry._collector_to_names.items())
        for name in names
    }
