"""What the gateway's metrics cost per request, in-process, against the alternatives.

    python -m bench.metrics_cost [--requests 20000] [--rounds 5]

Every case serves the same route (`GET /items/{item_id}` returning a small JSON object) and
is driven through ASGI directly (no sockets, no client), so the process CPU time per request
is the framework's plus the instrumentation's. Added cost = instrumented minus its bare
counterpart: the gateway with metrics on vs off, and prometheus-fastapi-instrumentator's
default setup vs the bare FastAPI app. Cases run alternately; the median round is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from bench.inprocess import cpu_per_request, http_scope
from gateway import Gateway, Settings


def _route(router: APIRouter | FastAPI, sync: bool) -> None:
    if sync:

        @router.get("/items/{item_id}")
        def read_item(item_id: int) -> dict[str, int]:
            return {"item_id": item_id}

    else:

        @router.get("/items/{item_id}")
        async def read_item_async(item_id: int) -> dict[str, int]:
            return {"item_id": item_id}


def bare(sync: bool) -> FastAPI:
    app = FastAPI()
    _route(app, sync)
    return app


def instrumented(sync: bool) -> FastAPI:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = bare(sync)
    Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app


def gateway(sync: bool, metrics: bool) -> FastAPI:
    database = Path(tempfile.gettempdir()) / "gateway-metrics-cost.db"
    settings = Settings.from_environ({}, database_url=f"sqlite:///{database}", metrics=metrics)
    gw = Gateway(settings, registry=CollectorRegistry())
    router = APIRouter()
    _route(router, sync)
    if sync:
        gw.include_legacy(router)
    else:
        gw.include_async(router)
    return gw.build()


CASES: dict[str, Callable[[bool], FastAPI]] = {
    "bare FastAPI": bare,
    "bare + instrumentator": instrumented,
    "gateway, metrics off": lambda sync: gateway(sync, False),
    "gateway, metrics on": lambda sync: gateway(sync, True),
}


async def drive(app: Any, requests: int) -> float:
    """CPU seconds per request over `requests` sequential requests."""
    return await cpu_per_request(app, requests, lambda i: http_scope(f"/items/{i}"))


async def measure(sync: bool, requests: int, rounds: int) -> dict[str, float]:
    apps = {name: build(sync) for name, build in CASES.items()}
    results: dict[str, list[float]] = {name: [] for name in apps}
    async with (
        LifespanManager(apps["gateway, metrics on"]) as on,
        LifespanManager(apps["gateway, metrics off"]) as off,
    ):
        running = {**apps, "gateway, metrics on": on.app, "gateway, metrics off": off.app}
        for round_ in range(rounds):
            order = list(running) if round_ % 2 == 0 else list(reversed(running))
            for name in order:
                results[name].append(await drive(running[name], requests))
    return {name: statistics.median(values) for name, values in results.items()}


async def middleware_only(requests: int, rounds: int) -> dict[str, float]:
    """The metrics middleware around a trivial ASGI app that looks like a legacy route
    (route, implementation and a ThreadTiming filled in), against the trivial app alone."""
    from gateway.concurrency import ThreadTiming
    from gateway.metrics.recorder import MetricsMiddleware, metrics_for
    from gateway.modes import Implementation
    from gateway.request_info import RequestInfo

    async def trivial(scope: dict[str, Any], receive: Any, send: Any) -> None:
        info = scope.get("gateway")
        if isinstance(info, RequestInfo):
            info.route, info.path = "GET /items/{item_id}", "/items/{item_id}"
            info.implementation = Implementation.LEGACY
            info.thread = ThreadTiming(queued=0.0001, wall=0.002, cpu=0.001)
            info.db_seconds, info.db_statements = 0.0005, 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    wrapped = MetricsMiddleware(trivial, metrics_for(gateway(True, True)))
    results: dict[str, list[float]] = {"trivial app": [], "trivial app + metrics": []}
    for _ in range(rounds):
        results["trivial app"].append(await drive(trivial, requests))
        results["trivial app + metrics"].append(await drive(wrapped, requests))
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for sync in (False, True):
        kind = "def route (threadpool)" if sync else "async def route"
        print(f"\n{kind}: CPU µs per request, median of {args.rounds} rounds x {args.requests}")
        found = asyncio.run(measure(sync, args.requests, args.rounds))
        for name, seconds in found.items():
            print(f"  {name:<24} {seconds * 1e6:8.1f}")
        added_instr = found["bare + instrumentator"] - found["bare FastAPI"]
        added_gw = found["gateway, metrics on"] - found["gateway, metrics off"]
        print(f"  added by instrumentator  {added_instr * 1e6:8.1f}")
        print(f"  added by gateway metrics {added_gw * 1e6:8.1f}")
    print("\nmetrics middleware alone, legacy-style request (thread + DB numbers): CPU µs")
    alone = asyncio.run(middleware_only(args.requests, args.rounds))
    for name, seconds in alone.items():
        print(f"  {name:<24} {seconds * 1e6:8.1f}")
    added = alone["trivial app + metrics"] - alone["trivial app"]
    print(f"  added by gateway metrics {added * 1e6:8.1f}")


if __name__ == "__main__":
    main()
