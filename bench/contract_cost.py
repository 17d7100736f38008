"""What the pairing contract costs: at build on the example app, and per request (nothing).

    python -m bench.contract_cost [--builds 30] [--requests 5000] [--rounds 5]

Build: the example gateway (legacy_routes + async_routes on SQLite) is built `--builds`
times; the time in `check_contracts` (the dependant trees and one OpenAPI document per
side) is reported for the first build of the process and as the median of the others.
Per request: one guarded pair (a router with `dependencies=[Depends(verify_key)]`) is built
twice, once with the check and once with it replaced by a no-op, and served in-process in
both modes; the CPU time per request of the two is compared, alternating, median round.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, Header, HTTPException
from prometheus_client import CollectorRegistry

import gateway.app
from bench.inprocess import cpu_per_request, http_scope
from gateway import Gateway, MemoryFlagStore, Settings
from gateway.routing.contract import check_contracts


def _settings(name: str, **values: Any) -> Settings:
    database = Path(tempfile.gettempdir()) / f"gateway-contract-cost-{name}.db"
    return Settings.from_environ({}, database_url=f"sqlite:///{database}", **values)


def build_cost(builds: int) -> tuple[float, float, float]:
    """(first check, median check, median build) in seconds, on the example app."""
    from example.app import create_gateway

    checks: list[float] = []
    whole: list[float] = []

    def timed(entries: Any) -> Any:
        started = time.perf_counter()
        try:
            return check_contracts(entries)
        finally:
            checks.append(time.perf_counter() - started)

    original = gateway.app.check_contracts
    gateway.app.check_contracts = timed
    try:
        for _ in range(builds):
            gw = create_gateway(_settings("example"))
            started = time.perf_counter()
            gw.build()
            whole.append(time.perf_counter() - started)
    finally:
        gateway.app.check_contracts = original
    return checks[0], statistics.median(checks[1:] or checks), statistics.median(whole)


def verify_key(x_key: str = Header()) -> None:
    if x_key != "k":
        raise HTTPException(status_code=401)


def guarded(mode: str, checked: bool) -> Any:
    legacy = APIRouter(prefix="/api", dependencies=[Depends(verify_key)])
    twins = APIRouter(prefix="/api", dependencies=[Depends(verify_key)])

    @legacy.get("/items/{item_id}")
    def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @twins.get("/items/{item_id}")
    async def read_item_async(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    settings = _settings(mode, default_mode=mode, metrics=False)
    gw = Gateway(settings, registry=CollectorRegistry(), store=MemoryFlagStore())
    gw.include_legacy(legacy)
    gw.include_async(twins)
    original = gateway.app.check_contracts
    if not checked:
        gateway.app.check_contracts = lambda entries: {}
    try:
        return gw.build()
    finally:
        gateway.app.check_contracts = original


async def drive(app: Any, requests: int) -> float:
    """CPU seconds per request over `requests` sequential requests."""

    def scope(i: int) -> dict[str, Any]:
        found = http_scope(f"/api/items/{i}")
        found["headers"] = [*found["headers"], (b"x-key", b"k")]
        return found

    return await cpu_per_request(app, requests, scope)


async def request_cost(mode: str, requests: int, rounds: int) -> dict[str, list[float]]:
    apps = {"with the check": guarded(mode, True), "without": guarded(mode, False)}
    results: dict[str, list[float]] = {name: [] for name in apps}
    async with (
        LifespanManager(apps["with the check"]) as on,
        LifespanManager(apps["without"]) as off,
    ):
        running = {"with the check": on.app, "without": off.app}
        for round_ in range(rounds):
            order = list(running) if round_ % 2 == 0 else list(reversed(running))
            for name in order:
                results[name].append(await drive(running[name], requests))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    first, median, whole = build_cost(args.builds)
    print(
        f"example app build ({args.builds} builds): check_contracts first {first * 1e3:.1f} "
        f"ms, then median {median * 1e3:.1f} ms; whole build() median {whole * 1e3:.1f} ms"
    )
    for mode in ("legacy", "async"):
        rounds = asyncio.run(request_cost(mode, args.requests, args.rounds))
        on, off = rounds["with the check"], rounds["without"]
        print(f"{mode:>6}: median {statistics.median(on) * 1e6:.1f} us/request with the check "
              f"(rounds {min(on) * 1e6:.1f}-{max(on) * 1e6:.1f}), "
              f"{statistics.median(off) * 1e6:.1f} without "
              f"(rounds {min(off) * 1e6:.1f}-{max(off) * 1e6:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
