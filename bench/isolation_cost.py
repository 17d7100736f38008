"""What shadow isolation costs a request, in instructions (cachegrind), shadowed and not.

    python -m bench.isolation_cost                    # 4 cases x 2 runs under valgrind
    python -m bench.isolation_cost --small 100 --large 300 --jobs 4

Each case is one process: the example app on a throwaway PostgreSQL database, driven
in-process over ASGI (GET /users/{id}, one request at a time; a shadowed request waits for
its twin's comparison, so the twin's work is inside the request's count). It runs twice
under `valgrind --tool=cachegrind --cache-sim=no`, with `--small` and `--large` requests;
(I(large) - I(small)) / (large - small) is the instructions per request, with start-up,
imports and warm-up cancelled out. Cases: the route in legacy mode ("plain") or shadowed at
100 %, each with isolation on and off (off: gateway.db.isolation's pool listener, the
shadow engine's guards and the seal replaced by no-ops before the gateway is built).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.shadow_cost import throwaway_database

__all__ = ["main"]

CASES = [(case, isolation) for case in ("plain", "shadowed") for isolation in ("on", "off")]
ROUTE = "GET /users/{user_id}"
USERS = 20
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _isolation_off() -> None:
    import gateway.db.isolation as isolation
    import gateway.shadow.runner as runner
    import gateway.shadow.sandbox as sandbox
    import gateway.shadow.twin as twin

    def nothing(*_args: Any) -> None:
        return None

    runner.install_isolation = nothing  # type: ignore[assignment]
    sandbox.guard_engine = nothing  # type: ignore[assignment]
    twin.sealed = lambda seal: contextlib.nullcontext(seal)  # type: ignore[assignment]
    isolation.install_isolation = nothing  # type: ignore[assignment]


async def child(case: str, isolation: str, requests: int, url: str) -> None:
    import httpx
    from asgi_lifespan import LifespanManager

    if isolation == "off":
        _isolation_off()
    from example import create_gateway
    from gateway import Settings

    # A timeout for valgrind's pace (about 50 times slower): every twin runs to its end.
    # Metrics off: their samplers wake on a timer, so their instructions follow the wall
    # clock (valgrind's pace on a loaded machine), not the requests.
    settings = Settings.from_environ(
        {}, database_url=url, pool_size=4, max_overflow=0, shadow_timeout=600, metrics=False
    )
    os.environ["DATABASE_URL"] = url  # the legacy app's own engine
    gw = create_gateway(settings)
    app = gw.build()
    # Start-up under valgrind takes minutes, not asgi-lifespan's default 5 s.
    async with LifespanManager(app, startup_timeout=None, shutdown_timeout=None) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(USERS):
                await client.post("/users", json={"name": f"u{i}", "email": f"u{i}@x.org"})
            if case == "shadowed":
                gw.modes.set_mode(ROUTE, "shadow", 100)
                gw.shadow.results.route(ROUTE).learned = 10**6  # one twin run per request
            for i in range(requests + 20):  # 20 to warm up
                response = await client.get(f"/users/{i % USERS + 1}")
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")
                if gw.shadow is not None:
                    await gw.shadow.settle()
    if case == "shadowed":
        row = gw.shadow.local_report()["routes"][0] if gw.shadow else {}
        if row.get("same") != requests + 20:
            raise RuntimeError(f"expected every request compared the same: {row}")


def instructions(case: str, isolation: str, requests: int, url: str) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.isolation_cost",
        "--child",
        case,
        isolation,
        str(requests),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{case}/{isolation}: valgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=40)
    parser.add_argument("--large", type=int, default=120)
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at a time")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, isolation, requests, url = args.child
        asyncio.run(child(case, isolation, int(requests), url))
        return
    print(f"instructions per request, ({args.large} - {args.small} requests) under cachegrind")

    def measure(job: tuple[str, str, int]) -> int:
        with throwaway_database() as url:
            return instructions(*job, url)

    jobs = [(c, i, n) for c, i in CASES for n in (args.small, args.large)]
    with ThreadPoolExecutor(args.jobs) as pool:  # counts, unlike times, do not mind sharing
        counts = dict(zip(jobs, pool.map(measure, jobs), strict=True))
    per: dict[tuple[str, str], float] = {}
    for case, isolation in CASES:
        small, large = counts[case, isolation, args.small], counts[case, isolation, args.large]
        per[case, isolation] = (large - small) / (args.large - args.small)
        print(
            f"  {case:<9} isolation {isolation:<4} {per[case, isolation]:>12,.0f}"
            f"   (I: {small:,} and {large:,})",
            flush=True,
        )
    for case in ("plain", "shadowed"):
        cost = per[case, "on"] - per[case, "off"]
        share = cost / per[case, "off"] * 100
        print(f"  isolation costs a {case} request {cost:>+10,.0f} ({share:+.2f} %)")


if __name__ == "__main__":
    main()
