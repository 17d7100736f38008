"""What the garbage collector costs a request under many concurrent requests, per app.

    python -m bench.gc_cost [--requests 8000] [--concurrency 1000] [--rounds 3]

Each (app, collector mode) runs in a fresh process of its own, so every app pays only for
its own heap. The app is driven in-process over ASGI (no sockets) by `--concurrency` tasks
on uvloop, against a throwaway PostgreSQL database, the same lookup as `scripts/bench`.
Printed per run: process CPU µs per request, collector time µs per request (from
`gc.callbacks`), collections of the oldest generation, and the tracked objects once the
app has started. Modes: `on` (Python's default), `off` (`gc.disable()`: what the code
itself costs), `freeze` (`gc.freeze()` after startup, what `GATEWAY_GC_FREEZE` does) and
`freeze+10000,10,10` (plus `gc.set_threshold(10000, 10, 10)`, what
`GATEWAY_GC_THRESHOLD=10000,10,10` adds). The gateway app's own freeze is turned off here
so the mode alone decides.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time

from bench.inprocess import CollectorClock, lookups

APPS = {
    "bare_async": "bench.apps.bare_async:create_app",
    "gateway_async": "bench.apps.gateway_app:create_app",
}
MODES = ("on", "off", "freeze", "freeze+10000,10,10")


async def _child(target: str, mode: str, requests: int, concurrency: int, rounds: int) -> None:
    from asgi_lifespan import LifespanManager

    module, factory = target.split(":")
    app = getattr(importlib.import_module(module), factory)()
    clock = CollectorClock()
    async with LifespanManager(app) as manager:
        objects = len(gc.get_objects())
        if mode == "freeze":
            gc.freeze()
        elif mode == "off":
            gc.disable()
        elif mode.startswith("freeze+"):  # freeze+A,B,C: what GATEWAY_GC_THRESHOLD=A,B,C adds
            gc.freeze()
            gc.set_threshold(*map(int, mode.split("+")[1].split(",")))
        await lookups(manager.app, 500, concurrency)  # warm-up: pools filled, caches built
        gc.callbacks.append(clock)
        cpu, collector, full, failed = [], [], [], 0
        for _ in range(rounds):
            clock.seconds, clock.full = 0.0, 0
            started = time.process_time()
            failed += sum((await lookups(manager.app, requests, concurrency)).values())
            cpu.append((time.process_time() - started) / requests * 1e6)
            collector.append(clock.seconds / requests * 1e6)
            full.append(clock.full)
        gc.callbacks.remove(clock)
        gc.enable()
    print(
        json.dumps(
            {
                "cpu_us": statistics.median(cpu),
                "gc_us": statistics.median(collector),
                "full_collections": statistics.median(full),
                "objects": objects,
                "failed": failed,
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000, help="per round (8000)")
    parser.add_argument("--concurrency", type=int, default=1000, help="tasks in flight (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many (3)")
    parser.add_argument("--pool", type=int, default=80, help="pool size, no overflow (80)")
    parser.add_argument("--postgres", default=None, help="admin URL of the PostgreSQL server")
    parser.add_argument("--child", nargs=2, metavar=("APP", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        target, mode = args.child
        uvloop.run(_child(target, mode, args.requests, args.concurrency, args.rounds))
        return

    from bench.cases import PROFILES
    from bench.database import DEFAULT_ADMIN_URL, throwaway_database

    admin = args.postgres or os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    print(
        f"{args.concurrency} concurrent requests, {args.rounds} x {args.requests} per run, "
        f"pool {args.pool}; µs per request (median of rounds)"
    )
    print(f"{'app':<16}{'gc':<20}{'CPU':>8}{'in gc':>8}{'full gc':>9}{'objects':>9}")
    with throwaway_database(admin, users=10_000) as db:
        db.use_profile(PROFILES[0])
        env = dict(
            os.environ,
            GATEWAY_DATABASE_URL=db.url,
            GATEWAY_POOL_SIZE=str(args.pool),
            GATEWAY_MAX_OVERFLOW="0",
            GATEWAY_THREADPOOL_SIZE=str(args.concurrency),
            GATEWAY_LOG_LEVEL="warning",
            GATEWAY_DEFAULT_MODE="async",
            GATEWAY_GC_FREEZE="false",
        )
        for name, target in APPS.items():
            for mode in MODES:
                command = [sys.executable, "-m", "bench.gc_cost", "--child", target, mode]
                command += ["--requests", str(args.requests), "--rounds", str(args.rounds)]
                command += ["--concurrency", str(args.concurrency)]
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                if done.returncode != 0 or not lines:
                    raise SystemExit(f"{name} ({mode}) failed:\n{done.stderr[-2000:]}")
                r = json.loads(lines[-1])
                print(
                    f"{name:<16}{mode:<20}{r['cpu_us']:>8.0f}{r['gc_us']:>8.0f}"
                    f"{r['full_collections']:>9.0f}{r['objects']:>9}"
                    + (f"  {r['failed']} non-200!" if r["failed"] else "")
                )


if __name__ == "__main__":
    main()
