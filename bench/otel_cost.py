"""What the OpenTelemetry hook costs a request, in CPU instructions (issue 27, item 7).

    python -m bench.otel_cost                    # 200 and 1200 requests per case
    python -m bench.otel_cost --small 100 --large 600 --cases absent idle

Each case runs a gateway with one paired route in a process of its own under
`valgrind --tool=cachegrind --cache-sim=no` and drives GET /probe (its async twin, the
flag in memory) in-process over ASGI, one request at a time, `--small` then `--large`
times; the cost of one request is the difference of the two instruction counts divided by
the difference of the request counts, so start-up, imports and shutdown cancel out.

    absent            the hook as without OpenTelemetry installed (tag_span is None)
    idle              the hook, OpenTelemetry's API without a span: what every gateway on
                      FastAPI 0.165+ pays (FastAPI depends on the API)
    traced-unhooked   SDK tracer provider + the ASGI instrumentation, the hook off
    traced            the same with the hook on: minus traced-unhooked, the hook's own cost
                      when a span records (its attributes set on the server span)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

import anyio

from bench.inprocess import http_scope, receive

__all__ = ["CASES", "main"]

CASES = ("absent", "idle", "traced-unhooked", "traced")


def build(case: str, database_url: str) -> Any:
    from fastapi import APIRouter

    from gateway import Gateway, Settings
    from gateway.flags.store import MemoryFlagStore
    from gateway.routing import dispatch

    if case in ("absent", "traced-unhooked"):
        dispatch.tag_span = None  # what the dispatch sees without OpenTelemetry
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/probe")
    def probe() -> dict[str, str]:
        return {"implementation": "legacy"}

    @migrated.get("/probe")
    async def probe_async() -> dict[str, str]:
        return {"implementation": "async"}

    # The periodic tasks (loop-lag sampler, flag poll, judge) quiet: they run per second of
    # wall time, which valgrind stretches, and would add noise that is not per request.
    quiet = {"loop_lag_interval": 60, "flags_poll_interval": 3600, "judge_interval": 60}
    settings = Settings.from_environ(
        {}, database_url=database_url, default_mode="async", flags_resync_interval=86400, **quiet
    )
    gateway = Gateway(settings, store=MemoryFlagStore())
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    app: Any = gateway.build()
    if case.startswith("traced"):
        from opentelemetry import trace
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider()  # spans recorded, none exported: the hook's part only
        trace.set_tracer_provider(provider)
        app = OpenTelemetryMiddleware(app, tracer_provider=provider)
    return app


async def drive(app: Any, requests: int) -> None:
    from asgi_lifespan import LifespanManager

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async with LifespanManager(app, startup_timeout=600, shutdown_timeout=600) as manager:
        for _ in range(requests):
            await manager.app(http_scope("/probe"), receive, send)
    if set(statuses) != {200}:
        raise SystemExit(f"expected only 200s, got {sorted(set(statuses))}")


def child(case: str, requests: int, database_url: str) -> None:
    anyio.run(drive, build(case, database_url), requests)


def instructions(case: str, requests: int, database_url: str) -> int:
    """The instructions one child process executed (cachegrind's `I refs`)."""
    with tempfile.NamedTemporaryFile(prefix="otel-cost-", suffix=".out") as out:
        done = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no",
             f"--cachegrind-out-file={out.name}", sys.executable, "-m", "bench.otel_cost",
             "--child", case, "--requests", str(requests), "--database-url", database_url],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0",
                                                 "GATEWAY_LOG_LEVEL": "warning"},
        )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{case} x{requests} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--child", choices=CASES)
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.requests, args.database_url)
        return
    with tempfile.TemporaryDirectory() as directory:
        database_url = f"sqlite:///{directory}/bench.db"
        per_request = {}
        for case in args.cases:
            small = instructions(case, args.small, database_url)
            large = instructions(case, args.large, database_url)
            per_request[case] = (large - small) / (args.large - args.small)
            print(f"{case:16} {per_request[case]:12,.0f} instructions per request", flush=True)
    if {"absent", "idle"} <= per_request.keys():
        print(f"idle - absent:   {per_request['idle'] - per_request['absent']:12,.0f}")
    if {"traced", "traced-unhooked"} <= per_request.keys():
        hook = per_request["traced"] - per_request["traced-unhooked"]
        print(f"traced - traced-unhooked: {hook:,.0f}")


if __name__ == "__main__":
    main()
