"""The migration report of a running gateway: its snapshots windowed, ranked, and completed.

    report = report_maker(metering, gateway.entries, gateway.modes)
    report(300.0)        # the report over the last 5 minutes, as JSON-ready data

The ranking and the side-by-side numbers are over the window (this worker's snapshots of
every worker's totals, gateway.metrics.readings); shadow comparisons and lazy loads are since start
(the metrics' sums, every worker of this host).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.flags.table import ModeTable
from gateway.metrics.lazy_loads import lazy_load_totals
from gateway.metrics.metering import Metering
from gateway.metrics.series import scrape_registry
from gateway.report.ranking import window_report
from gateway.routing.dispatch import RouteEntry
from gateway.shadow.results import shadow_totals

__all__ = ["report_maker"]


def report_maker(
    metering: Metering, entries: Mapping[str, RouteEntry], modes: ModeTable
) -> Callable[[float], dict[str, Any]]:
    """The function GET {prefix}/report calls with the window in seconds."""
    # A regression's code: the side that blocked, by its endpoint until a request names the
    # `async def` that ran the sync engine (the endpoint itself, or one of its dependencies).
    endpoints = {
        (key, endpoint.side.value): endpoint.where
        for key, entry in entries.items()
        for endpoint in (entry.legacy, entry.async_)
        if endpoint is not None
    }
    recorder = metering.recorder

    def report(seconds: float) -> dict[str, Any]:
        """The report over the last `seconds`, from this worker's snapshots."""
        described = {key: flag.describe() for key, flag in modes.snapshot().items()}
        now, totals = time.time(), metering.totals()
        window = metering.snapshots.window(now, totals, seconds, chart_keys=set(described))
        where = {**endpoints, **recorder.loop_blockers}
        found = window_report(window, modes=described, where=where).as_dict()
        found["worker_pid"] = os.getpid()  # each worker windows its own snapshots
        scraped = scrape_registry(recorder.registry)
        found["shadow"] = shadow_totals(scraped)
        found["lazy_loads"] = lazy_load_totals(scraped)
        return found

    return report
