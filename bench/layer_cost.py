"""What the gateway layer costs a request, in CPU, like for like (issue 14, target 1a).

    python -m bench.layer_cost                      # both profiles, 8 rounds
    python -m bench.layer_cost --rounds 12 --requests 6000 --profiles plain
    python -m bench.layer_cost --profile-out /tmp/gw.prof   # cProfile the gateway's blocks

The same route (a primary-key lookup of a random user on real PostgreSQL) served by bare
FastAPI and through the gateway with all its metrics on, each app in a long-lived process of
its own, driven in-process over ASGI (no sockets, no client) by `--concurrency` tasks on
uvloop. Both processes get the same garbage-collector policy: `gc.freeze()` once the app has
started and been warmed up (what GATEWAY_GC_FREEZE does; the gateway's own freeze is turned
off so the harness applies the same call to both), or none with `--gc default`.

The parent alternates measured blocks between the two processes (A B, then B A, ...): each
block is `--requests` requests, and its CPU time per request is the process's
`time.process_time()` over the block (the event loop, the driver, the worker threads: all of
it). A round's ratio is gateway / bare for the blocks of that round; the mean of the ratios
is printed with a 95 % Student t interval (bench.report.interval95).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.inprocess import CollectorClock, lookups
from bench.report import interval95

__all__ = ["PAIRS", "main"]

MARK = "layer-cost "  # the child's answers on stdout start with this (logs may not)

# (name, bare app, gateway app, gateway mode)
PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("async", "bench.apps.bare_async:create_app", "bench.apps.gateway_app:create_app", "async"),
    ("legacy", "bench.apps.bare_def:create_app", "bench.apps.gateway_app:create_app", "legacy"),
    # a legacy route behind the gateway against the hand-migrated async one
    (
        "legacy/async",
        "bench.apps.bare_async:create_app",
        "bench.apps.gateway_app:create_app",
        "legacy",
    ),
)

# -- the child: one app, measured blocks on request -------------------------------------


async def child(target: str, gc_policy: str, concurrency: int, users: int, prof: str) -> None:
    from asgi_lifespan import LifespanManager

    module, factory = target.split(":")
    app = getattr(importlib.import_module(module), factory)()
    clock = CollectorClock()
    profiler = None
    if prof:
        import cProfile

        profiler = cProfile.Profile()
    loop = asyncio.get_running_loop()
    async with LifespanManager(app) as manager:
        await lookups(manager.app, 2000, concurrency, users)  # pools filled, caches built
        objects = len(gc.get_objects())
        if gc_policy == "freeze":
            gc.freeze()
        gc.callbacks.append(clock)
        print(MARK + json.dumps({"ready": os.getpid(), "objects": objects}), flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line.strip() or line.strip() == "quit":
                break
            requests = int(line.split()[1])
            clock.seconds = 0.0
            if profiler is not None:
                profiler.enable()
            before = os.times()
            failed = await lookups(manager.app, requests, concurrency, users)
            after = os.times()
            user, system = after.user - before.user, after.system - before.system
            cpu = user + system
            if profiler is not None:
                profiler.disable()
            print(
                MARK
                + json.dumps(
                    {
                        "cpu_us": cpu / requests * 1e6,
                        "sys_us": system / requests * 1e6,
                        "threads": threading.active_count(),
                        "gc_us": clock.seconds / requests * 1e6,
                        "failed": failed,
                    }
                ),
                flush=True,
            )
        gc.callbacks.remove(clock)
    if profiler is not None:
        profiler.dump_stats(prof)


# -- the parent -------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]

    def ask(self, requests: int) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"run {requests}\n")
        self.process.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit(f"{self.name} exited with {self.process.wait()}")
            if line.startswith(MARK):
                return dict(json.loads(line[len(MARK) :]))

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start(
    name: str, target: str, env: dict[str, str], args: argparse.Namespace, prof: str
) -> Child:
    command = [sys.executable, "-m", "bench.layer_cost", "--child", target, "--gc", args.gc]
    command += ["--concurrency", str(args.concurrency), "--users", str(args.users)]
    if prof:
        command += ["--profile-out", prof]
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    started = Child(name, process)
    ready = started.read()
    print(f"  {name}: pid {ready['ready']}, {ready['objects']} tracked objects", flush=True)
    return started


def run_pair(
    pair: tuple[str, str, str, str], env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    name, bare_target, gateway_target, mode = pair
    prof = f"{args.profile_out}.{name.replace('/', '-')}" if args.profile_out else ""
    bare = start(f"bare {name}", bare_target, env, args, prof + ".bare" if prof else "")
    extra = dict(item.split("=", 1) for item in args.gateway_env)
    gw_env = {**env, "GATEWAY_DEFAULT_MODE": mode, **extra}
    gateway = start(f"gateway {name}", gateway_target, gw_env, args, prof)
    rows: list[dict[str, Any]] = []
    try:
        for _ in range(args.warm_blocks):  # the first blocks of a fresh process run slow
            bare.ask(args.requests), gateway.ask(args.requests)
        for number in range(1, args.rounds + 1):
            order = (bare, gateway) if number % 2 else (gateway, bare)
            got = {child.name: child.ask(args.requests) for child in order}
            b, g = got[bare.name], got[gateway.name]
            if b["failed"] or g["failed"]:
                raise SystemExit(f"non-200 answers: bare {b['failed']}, gateway {g['failed']}")
            rows.append({"bare": b, "gateway": g, "ratio": g["cpu_us"] / b["cpu_us"]})
            print(
                f"  round {number:2d}: bare {b['cpu_us']:7.1f} µs (gc {b['gc_us']:5.1f}), "
                f"gateway {g['cpu_us']:7.1f} µs (gc {g['gc_us']:5.1f}, sys {g['sys_us']:5.1f}, "
                f"{g['threads']} threads; bare sys {b['sys_us']:5.1f}, {b['threads']}), "
                f"gateway / bare {rows[-1]['ratio']:.3f}",
                flush=True,
            )
    finally:
        bare.close()
        gateway.close()
    ratios = [r["ratio"] for r in rows]
    found = interval95(ratios)
    return {
        "pair": name,
        "ratios": ratios,
        "mean": statistics.fmean(ratios),
        "interval": found,
        "bare_cpu_us": statistics.fmean(r["bare"]["cpu_us"] for r in rows),
        "gateway_cpu_us": statistics.fmean(r["gateway"]["cpu_us"] for r in rows),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="measured rounds (8)")
    parser.add_argument("--requests", type=int, default=4000, help="requests per block (4000)")
    parser.add_argument("--warm-blocks", type=int, default=2, help="unmeasured blocks first (2)")
    parser.add_argument("--concurrency", type=int, default=200, help="tasks in flight (200)")
    parser.add_argument("--pool", type=int, default=30, help="pool size per app (30)")
    parser.add_argument("--users", type=int, default=10_000, help="seeded users (10000)")
    parser.add_argument("--gc", choices=("freeze", "default"), default="freeze")
    parser.add_argument("--pairs", default="async,legacy", help="async,legacy,legacy/async")
    parser.add_argument("--profiles", default="plain,delay5ms", help="plain,delay5ms")
    parser.add_argument("--profile-out", default="", help="cProfile the gateway to this prefix")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the gateway's process only (to find where a cost goes)",
    )
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument("--postgres", default=None, help="admin URL of the PostgreSQL server")
    parser.add_argument("--child", metavar="APP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        policy = args.gc
        uvloop.run(child(args.child, policy, args.concurrency, args.users, args.profile_out))
        return

    from bench.cases import PROFILES
    from bench.database import DEFAULT_ADMIN_URL, throwaway_database

    pairs = [p for p in PAIRS if p[0] in {n.strip() for n in args.pairs.split(",")}]
    profiles = [p for p in PROFILES if p.name in {n.strip() for n in args.profiles.split(",")}]
    if not pairs or not profiles:
        raise SystemExit(
            f"--pairs {args.pairs!r} / --profiles {args.profiles!r}: expected some of "
            f"{','.join(p[0] for p in PAIRS)} / {','.join(p.name for p in PROFILES)}"
        )
    admin = args.postgres or os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    print(
        f"CPU µs per request, in-process, {args.concurrency} concurrent, {args.rounds} rounds "
        f"x {args.requests} requests per app, GC {args.gc} on both, pool {args.pool} each"
    )
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    with throwaway_database(admin, users=args.users) as db:
        env = dict(
            os.environ,
            GATEWAY_DATABASE_URL=db.url,
            GATEWAY_POOL_SIZE=str(args.pool),
            GATEWAY_MAX_OVERFLOW="0",
            GATEWAY_THREADPOOL_SIZE=str(args.concurrency),
            GATEWAY_LOG_LEVEL="warning",
            GATEWAY_METRICS="true",
            GATEWAY_GC_FREEZE="false",  # the harness freezes both alike
        )
        for profile in profiles:
            db.use_profile(profile)
            for pair in pairs:
                print(f"{profile.name}, {pair[0]} route:", flush=True)
                result = {"profile": profile.name, **run_pair(pair, env, args)}
                results.append(result)
    print(f"\nsummary ({time.monotonic() - started:.0f} s):")
    for r in results:
        print(
            f"  {r['profile']:>8} {r['pair']:<6} bare {r['bare_cpu_us']:7.1f} µs, gateway "
            f"{r['gateway_cpu_us']:7.1f} µs: gateway / bare {r['mean']:.3f} "
            + (
                f"± {r['interval']['plus_minus_pct']:.1f} % (95 %)"
                if r["interval"]
                else "(one round: no interval)"
            )
            + ", per round "
            + " ".join(f"{x:.3f}" for x in r["ratios"])
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"command": sys.argv, "results": results}, out, indent=2)


if __name__ == "__main__":
    main()
