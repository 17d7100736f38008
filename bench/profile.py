"""Where a request's time goes, over bench.instructions' own driver, by package.

    python -m bench.profile gateway_legacy            # 2000 requests, the top packages
    python -m bench.profile gateway_async --requests 4000 --functions 15

The case's app runs in this process (not under Valgrind), driven in-process over ASGI one
request at a time on real PostgreSQL, exactly as bench.instructions drives it, with every
thread profiled on its own CPU clock (the event loop and the worker threads: a cProfile per
thread, cleared after the warm-up; waiting costs nothing). Own time is summed per package:
`gateway.routing`, `starlette`, `sqlalchemy`, ... and C built-ins under the package of
their type where it is known. Shares of CPU under a profiler, not instruction counts: the
profiler's own cost weighs on small functions, so read them as where to look, and the
instruction counts of bench.instructions as what a change saves. Calls per request (Python
functions and C built-ins, per package) are counted, not timed: they repeat exactly.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import os
import pstats
import random
import re
import sys
import threading
import time
from typing import Any

from bench.inprocess import http_scope, receive
from bench.instructions import CASES, PAUSED, USERS, WARM

__all__ = ["main", "package_of"]

SITE = re.compile(r"site-packages/([A-Za-z0-9_]+)")


def package_of(filename: str, name: str) -> str:
    """The package a profiled function belongs to, from its file (or a built-in's name)."""
    found = SITE.search(filename)
    if found:
        return found.group(1)
    for mine in ("gateway", "bench", "legacy_routes"):
        marker = f"/{mine}/"
        if marker in filename:
            rest = filename.split(marker, 1)[1].split("/")
            return f"{mine}.{rest[0].removesuffix('.py')}" if mine == "gateway" else mine
    if filename == "~":
        typed = re.search(r"of '([A-Za-z0-9_]+)", name)
        return f"built-in ({typed.group(1).split('.')[0]})" if typed else "built-in"
    return "python stdlib" if "/lib/python" in filename else filename


async def run(target: str, path: str, requests: int) -> list[cProfile.Profile]:
    from asgi_lifespan import LifespanManager

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def each_thread(*_: Any) -> None:  # a thread's first event: give it a profiler
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(each_thread)
    module, factory = target.split(":")
    app = getattr(importlib.import_module(module), factory)()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"{path}: status {message['status']}")

    async def drive(count: int, rng: random.Random) -> None:
        for _ in range(count):
            await manager.app(http_scope(path.format(rng.randint(1, USERS))), receive, send)

    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        await drive(WARM, random.Random(27))
        gc.collect()
        gc.freeze()
        with lock:
            for profile in profiles:  # their threads wait for work: nothing is running
                profile.clear()
        loop = cProfile.Profile(time.thread_time)
        profiles.append(loop)
        loop.enable()
        await drive(requests, random.Random(26))
        loop.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
    return profiles


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [c.name for c in CASES]
    parser.add_argument("case", choices=names)
    parser.add_argument("--requests", type=int, default=2000, help="profiled requests (2000)")
    parser.add_argument("--packages", type=int, default=14, help="packages shown (14)")
    parser.add_argument("--functions", type=int, default=12, help="functions shown (12)")
    parser.add_argument("--postgres", default=None, help="admin URL of the PostgreSQL server")
    args = parser.parse_args(argv)
    case = next(c for c in CASES if c.name == args.case)

    from bench.database import DEFAULT_ADMIN_URL, throwaway_database

    admin = args.postgres or os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    with throwaway_database(admin, users=USERS) as db:
        os.environ.update(
            GATEWAY_DATABASE_URL=db.url, GATEWAY_POOL_SIZE="1", GATEWAY_MAX_OVERFLOW="1",
            GATEWAY_THREADPOOL_SIZE="4", GATEWAY_LOG_LEVEL="warning", GATEWAY_GC_FREEZE="false",
            **PAUSED, **case.env,
        )  # fmt: skip
        import uvloop

        profiles = uvloop.run(run(case.target, case.path, args.requests))
    stats = pstats.Stats(profiles[0], stream=sys.stdout)
    for more in profiles[1:]:
        stats.add(more)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    per_package: dict[str, float] = {}
    calls: dict[str, int] = {}
    for (filename, _, name), (_, ncalls, tottime, _, _) in table.items():
        package = package_of(filename, name)
        per_package[package] = per_package.get(package, 0.0) + tottime
        calls[package] = calls.get(package, 0) + ncalls
    total = sum(per_package.values())
    print(f"{case.name}: own time by package over {args.requests} requests, all threads")
    print(f"(and calls per request: {sum(calls.values()) / args.requests:,.1f} in all)")
    print("\n| package | share | calls per request |\n|---|---:|---:|")
    for package, seconds in sorted(per_package.items(), key=lambda kv: -kv[1])[: args.packages]:
        share, per = seconds / total * 100, calls[package] / args.requests
        print(f"| {package} | {share:.1f} % | {per:,.1f} |")
    print("\n| function (own time) | share |\n|---|---:|")
    top = sorted(table.items(), key=lambda kv: -kv[1][2])[: args.functions]
    for (filename, line, name), (_, _, tottime, _, _) in top:
        where = f"{package_of(filename, name)} {name}" + (f":{line}" if line else "")
        print(f"| {where} | {tottime / total * 100:.1f} % |")


if __name__ == "__main__":
    main()
