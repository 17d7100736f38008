"""What keeps a gateway's metrics true while its app runs, around the per-request recorder.

    metering = Metering(recorder, database, modes, interval=0.25)
    app.router.routes.insert(0, metering.route())      # GET /metrics
    metering.start()  ...  await metering.stop()       # the gateway's lifespan

It installs SQLAlchemy's dialect events (DB time per request, once per process), watches both
pools' checkouts, shows each paired route's mode, and runs the loop-lag sampler, which also
refreshes the gauges and the CPU-load factor every tick, and keeps a snapshot of the
per-route totals every 10 s (`snapshots`, what the report's window is made of).
"""

from __future__ import annotations

import os
import threading
import time

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway._process.workers import MULTIPROC_ENV
from gateway.concurrency import LegacyThreads
from gateway.db.database import Database
from gateway.db.events import install_engine_events, watch_pool
from gateway.flags.table import ModeTable
from gateway.metrics.batched import PendingHistogram
from gateway.metrics.cpuload import CpuLoad
from gateway.metrics.lazy_loads import LazyLoads
from gateway.metrics.looplag import Sampler
from gateway.metrics.readings import RouteNumbers, Snapshots, route_numbers
from gateway.metrics.recorder import Recorder
from gateway.metrics.series import GatewayMetrics, scrape_registry
from gateway.routing.dispatch import PathGroup
from gateway.routing.index import RouteTable

__all__ = ["Metering", "metering_for", "static_paths"]


class Metering:
    """Owns the sampler and the CPU probe; the Gateway's lifespan starts and stops it."""

    def __init__(
        self, recorder: Recorder, database: Database, modes: ModeTable, *, interval: float
    ) -> None:
        self.recorder = recorder
        self.database = database
        self.cpu = CpuLoad()
        self.sampler = Sampler(recorder.metrics.loop_lag, interval)
        self.sampler.also(self._tick)
        self.snapshots = Snapshots()
        recorder.lazy_loads = LazyLoads(recorder.registry)
        install_engine_events()
        for key in modes:
            recorder.show_mode(key, modes.get(key))
        modes.on_change(lambda key, _old, new: recorder.show_mode(key, new))

    def route(self, path: str = "/metrics") -> Route:
        """The exposition endpoint: this worker's registry, or every worker's files."""
        recorder = self.recorder

        # A gateway's own registry holds only gateway_* series; the process-wide one adds
        # process_*, python_* and whatever the application registered there.
        process_wide = recorder.registry is not REGISTRY

        async def metrics_endpoint(request: Request) -> Response:
            recorder.sample()
            scraped = scrape_registry(recorder.registry)
            body = generate_latest(scraped)
            if process_wide and scraped is recorder.registry:
                body += generate_latest(REGISTRY)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return Route(path, metrics_endpoint, include_in_schema=False)

    def totals(self) -> list[RouteNumbers]:
        """Every route's cumulative totals now: this worker's, or all workers' together."""
        self.recorder.sample()
        return route_numbers(scrape_registry(self.recorder.registry))

    def start(self) -> None:
        """On the event loop, after the engines exist."""
        recorder = self.recorder
        recorder.owner = threading.get_ident()
        # Sync checkouts happen in worker threads: straight to the (locked) histogram.
        watch_pool(self.database.sync_engine, recorder.metrics.pool_wait.labels("sync"))
        # Async checkouts happen on the loop: batched like the per-request metrics.
        recorder.async_pool_wait = PendingHistogram(recorder.metrics.pool_wait.labels("async"))
        watch_pool(self.database.async_engine.sync_engine, recorder.async_pool_wait)
        recorder.started = time.time()
        recorder.cpu_factor = self.cpu.probe()
        self.snapshots.add(recorder.started, self.totals())
        self.sampler.start()

    async def stop(self) -> None:
        await self.sampler.stop()
        self.recorder.flush()
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            from prometheus_client import multiprocess

            # This worker's live gauges leave with it; its counters stay in the sums.
            multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]

    def _tick(self) -> None:
        self.recorder.sample()
        self.recorder.cpu_factor = self.cpu.probe()
        self.snapshots.take_if_due(time.time(), self.totals)


def metering_for(
    registry: CollectorRegistry,
    database: Database,
    modes: ModeTable,
    *,
    admin_prefix: str,
    threads: LegacyThreads,
    interval: float,
) -> Metering:
    """A gateway's recorder (every metric in `registry`) and the metering around it."""
    recorder = Recorder(
        GatewayMetrics(registry),
        registry,
        admin_prefix=admin_prefix,
        threads=threads,
        engines=lambda: (
            ("sync", database.sync_engine),
            ("async", database.async_engine.sync_engine),
        ),
    )
    return Metering(recorder, database, modes, interval=interval)


def static_paths(routes: list[BaseRoute]) -> set[str]:
    """Paths without parameters outside the PathGroups: the gateway's own metric labels."""
    flat = [r for t in routes for r in (t.routes if isinstance(t, RouteTable) else [t])]
    return {
        path
        for route in flat
        if isinstance(path := getattr(route, "path", None), str)
        and "{" not in path
        and not isinstance(route, PathGroup)
    }
