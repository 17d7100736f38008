"""Instructions per request, counted under Valgrind: a layer's cost on a noisy machine.

    scripts/bench --instructions                   # every case, 3 runs
    python -m bench.instructions --cases bare_async,gateway_async --runs 1
    python -m bench.instructions --profile gateway_legacy   # where a request's instructions go

Wall-clock ratios of the same benchmark disagree by 8-17 % between runs on a shared
machine; the instructions a process executes do not depend on the machine's load. Each case
is one app in a process of its own under `valgrind --tool=cachegrind --cache-sim=no`,
driven in-process over ASGI one request at a time (GET of a random user, ids from a fixed
seed) on real PostgreSQL. A process starts, warms up, freezes its heap (`gc.freeze()`, on
every case alike), serves N requests and exits; per request = (I(N2) - I(N1)) / (N2 - N1),
so start-up, warm-up and shutdown cancel out. The gateway's periodic work (loop-lag ticks,
the judge, the flag follower) is paused for that through its settings (long intervals; the
flags in SQLite, so no listener thread polls PostgreSQL ten times a second, which under
Valgrind lands on the requests as wall time stretches with the load); what it costs an
idle process per second is measured apart (`IDLE`), with default settings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.inprocess import http_scope, receive

__all__ = ["CASES", "IDLE", "Case", "environment", "main", "measure", "per_request", "spread"]

MARK = "instructions "
USERS = 10_000
WARM = 100  # unmeasured requests before the heap is frozen: pools filled, caches built
PAUSED = {  # the gateway's periodic work, out of the measured part
    "GATEWAY_LOOP_LAG_INTERVAL": "60",
    "GATEWAY_JUDGE_INTERVAL": "60",
    "GATEWAY_FLAGS_POLL_INTERVAL": "3600",
    "GATEWAY_FLAGS_RESYNC_INTERVAL": "86400",
    "GATEWAY_JUDGE": "false",  # its interval stops at 60 s, shorter than a run under Valgrind
}


@dataclass(frozen=True)
class Case:
    """One app and the request it is driven with; `env` on top of the shared settings."""

    name: str
    target: str
    path: str = "/users/{}"
    env: dict[str, str] = field(default_factory=dict)


GATEWAY = "bench.apps.gateway_app:create_app"


def _mode(mode: str) -> dict[str, str]:
    return {"GATEWAY_DEFAULT_MODE": mode}


def _scaled(name: str, factory: str, routes: int) -> Case:
    """The lookup registered last in an app of `routes` routes (bench.apps.many_routes)."""
    target = f"bench.apps.many_routes:{factory}"
    return Case(f"{name}_{routes}", target, "/api/v1/users/{}", {"BENCH_ROUTES": str(routes)})


CASES: tuple[Case, ...] = (
    Case("bare_async", "bench.apps.bare_async:create_app"),
    Case("gateway_async", GATEWAY, env=_mode("async")),
    Case("bare_def", "bench.apps.bare_def:create_app"),
    Case("gateway_legacy", GATEWAY, env=_mode("legacy")),
    Case("instrumented", "bench.apps.instrumented:create_app"),
    _scaled("bare_def", "create_bare_app", 10),
    _scaled("bare_def", "create_bare_app", 1000),
    _scaled("gateway_legacy", "create_gateway_app", 10),
    _scaled("gateway_legacy", "create_gateway_app", 1000),
)
# Idle processes with the default intervals: what the periodic work costs per second.
IDLE: tuple[Case, ...] = (
    Case("idle_bare_async", "bench.apps.bare_async:create_app"),
    Case("idle_gateway", GATEWAY, env=_mode("legacy")),
)

# -- the child: one app, N requests (or S idle seconds), then exit ---------------------


async def child(target: str, path: str, requests: int, idle: float, seed: int) -> None:
    from asgi_lifespan import LifespanManager

    module, factory = target.split(":")
    app = getattr(importlib.import_module(module), factory)()
    failed: dict[int, int] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            failed[message["status"]] = failed.get(message["status"], 0) + 1

    async def drive(count: int, rng: random.Random) -> None:
        for _ in range(count):
            await manager.app(http_scope(path.format(rng.randint(1, USERS))), receive, send)

    # Start-up takes minutes under Valgrind, not LifespanManager's default 5 s.
    async with LifespanManager(app, startup_timeout=None, shutdown_timeout=None) as manager:
        await drive(WARM, random.Random(seed + 1))
        gc.collect()
        gc.freeze()
        if idle:
            await asyncio.sleep(idle)
        else:
            await drive(requests, random.Random(seed))
        gc.unfreeze()
    print(MARK + json.dumps({"failed": failed}), flush=True)


# -- the parent --------------------------------------------------------------------------

REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def per_request(low: int, high: int, n_low: float, n_high: float) -> float:
    """Instructions per unit from two runs: (I(N2) - I(N1)) / (N2 - N1)."""
    if n_high <= n_low:
        raise ValueError(f"expected N2 > N1, got N1={n_low}, N2={n_high}")
    return (high - low) / (n_high - n_low)


def count(case: Case, env: dict[str, str], args: argparse.Namespace, n: int, idle: float) -> int:
    """Total instructions of one child process under cachegrind."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "valgrind.log")
        command = [
            "valgrind", "--tool=cachegrind", "--cache-sim=no", f"--log-file={log}",
            f"--cachegrind-out-file={os.path.join(tmp, 'out')}",
            sys.executable, "-m", "bench.instructions", "--child", case.target,
            "--path", case.path, "--requests", str(n), "--idle", str(idle),
            "--seed", str(args.seed),
        ]  # fmt: skip
        if not idle:  # flags in SQLite: no listener thread polling PostgreSQL 10 times a second
            env = {**env, "GATEWAY_FLAGS_DATABASE_URL": f"sqlite:///{tmp}/flags.db"}
        done = subprocess.run(
            command, env={**env, **case.env}, capture_output=True, text=True, check=False
        )
        if done.returncode or MARK not in done.stdout:
            raise SystemExit(f"{case.name} (N={n}) failed with {done.returncode}:\n{done.stderr}")
        answer = json.loads(done.stdout.split(MARK, 1)[1].splitlines()[0])
        if answer["failed"]:
            raise SystemExit(f"{case.name}: non-200 answers {answer['failed']}")
        with open(log) as found:
            refs = REFS.search(found.read())
        if refs is None:
            raise SystemExit(f"{case.name}: no 'I refs' line in valgrind's log")
        return int(refs.group(1).replace(",", ""))


def measure(case: Case, env: dict[str, str], args: argparse.Namespace, idle: bool) -> float:
    if idle:
        low, high = count(case, env, args, 0, args.idle[0]), count(case, env, args, 0, args.idle[1])
        found = per_request(low, high, args.idle[0], args.idle[1])
    else:
        paused = {**env, **PAUSED}
        with ThreadPoolExecutor(2) as both:  # the two processes of one figure side by side
            pair = both.map(lambda n: count(case, paused, args, n, 0), args.requests)
            low, high = pair
        found = per_request(low, high, args.requests[0], args.requests[1])
    print(f"  {case.name}: {found / 1e6:.4f} M (I = {low:,} and {high:,})", flush=True)
    return found


def environment(url: str) -> dict[str, str]:
    """The settings every measured child shares, on the database at `url`."""
    return dict(
        os.environ,
        PYTHONHASHSEED="0",
        GATEWAY_DATABASE_URL=url,
        GATEWAY_POOL_SIZE="1",
        GATEWAY_MAX_OVERFLOW="1",
        GATEWAY_THREADPOOL_SIZE="4",
        GATEWAY_LOG_LEVEL="warning",
        GATEWAY_METRICS="true",
        GATEWAY_GC_FREEZE="false",  # the child freezes every case alike
    )


def spread(values: list[float]) -> float:
    """The largest distance from the mean, in % of the mean."""
    mean = statistics.fmean(values)
    return max(abs(v - mean) for v in values) / mean * 100


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ",".join(c.name for c in CASES + IDLE)
    parser.add_argument("--cases", default=names, help=f"some of {names}")
    parser.add_argument("--runs", type=int, default=3, help="repeated runs per case (3)")
    parser.add_argument("--requests", default="200,1200", help="N1,N2 (200,1200)")
    parser.add_argument("--idle", default="2,12", help="idle seconds S1,S2 (2,12)")
    parser.add_argument("--seed", type=int, default=26, help="seed of the requested ids (26)")
    parser.add_argument(
        "--jobs", type=int, default=2, help="figures measured at once (2 processes each)"
    )
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument("--postgres", default=None, help="admin URL of the PostgreSQL server")
    parser.add_argument("--from-json", default="", help="print the tables of a saved run")
    parser.add_argument("--child", metavar="APP", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/users/{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        requests, idle = int(args.requests), float(args.idle)
        uvloop.run(child(args.child, args.path, requests, idle, args.seed))
        return
    args.requests = [int(n) for n in args.requests.split(",")]
    args.idle = [float(n) for n in args.idle.split(",")]
    if args.from_json:
        with open(args.from_json) as saved:
            run = json.load(saved)
        vars(args).update({k: run["args"][k] for k in ("requests", "idle", "runs", "seed")})
        runs = {name: case["runs"] for name, case in run["results"]["cases"].items()}
        print(render(summarize(runs), args, run.get("seconds", 0.0)))
        return
    wanted = {n.strip() for n in args.cases.split(",")}
    chosen = [(c, False) for c in CASES if c.name in wanted]
    chosen += [(c, True) for c in IDLE if c.name in wanted]
    if not chosen:
        raise SystemExit(f"--cases {args.cases!r}: expected some of {names}")

    from bench.database import DEFAULT_ADMIN_URL, throwaway_database

    admin = args.postgres or os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    started = time.monotonic()
    results: dict[str, list[float]] = {}
    with throwaway_database(admin, users=USERS) as db:
        env = environment(db.url)
        jobs = [(case, idle) for _ in range(args.runs) for case, idle in chosen]
        with ThreadPoolExecutor(args.jobs) as pool:
            found = list(
                pool.map(lambda job: (job[0].name, measure(*job[:1], env, args, job[1])), jobs)
            )
        for name, value in found:
            results.setdefault(name, []).append(value)
    summary = summarize(results)
    seconds = time.monotonic() - started
    print(render(summary, args, seconds))
    if args.json:
        saved = {"command": sys.argv, "args": vars(args), "seconds": seconds, "results": summary}
        with open(args.json, "w") as out:
            json.dump(saved, out, indent=2)


def summarize(results: dict[str, list[float]]) -> dict[str, Any]:
    """Per case: the runs, their mean and spread; then the guard and scaling ratios."""
    cases = {
        name: {"runs": runs, "mean": statistics.fmean(runs), "spread_pct": spread(runs)}
        for name, runs in results.items()
    }
    ratios: dict[str, dict[str, Any]] = {}
    for label, top, bottom, limit in RATIOS:
        if top in cases and bottom in cases:
            value = cases[top]["mean"] / cases[bottom]["mean"]
            ratios[label] = {"value": value, "at_most": limit}
    return {"cases": cases, "ratios": ratios}


RATIOS: tuple[tuple[str, str, str, float | None], ...] = (  # (label, top, bottom, at most)
    ("gateway async / bare async", "gateway_async", "bare_async", 1.03),
    ("gateway legacy / bare def", "gateway_legacy", "bare_def", 0.70),
    ("gateway legacy / bare async", "gateway_legacy", "bare_async", 1.00),
    ("instrumentator / bare async (reference)", "instrumented", "bare_async", None),
    ("gateway legacy, 1000 routes / 10", "gateway_legacy_1000", "gateway_legacy_10", 1.05),
    ("bare def, 1000 routes / 10 (reference)", "bare_def_1000", "bare_def_10", None),
    ("idle second: gateway / bare async", "idle_gateway", "idle_bare_async", None),
)


def render(summary: dict[str, Any], args: argparse.Namespace, seconds: float) -> str:
    n1, n2 = args.requests
    lines = [
        f"instructions per request (N1={n1}, N2={n2}) or per idle second "
        f"(S1={args.idle[0]:g}, S2={args.idle[1]:g}), {args.runs} runs, seed {args.seed}, "
        f"{seconds:.0f} s",
        "",
        "| case | mean | runs | largest distance from the mean |",
        "|---|---:|---|---:|",
    ]
    for name, case in summary["cases"].items():
        runs = ", ".join(f"{v / 1e6:.4f}" for v in case["runs"])
        spread = case["spread_pct"]
        lines.append(f"| {name} | {case['mean'] / 1e6:.4f} M | {runs} | {spread:.2f} % |")
    lines += ["", "| ratio | value | target |", "|---|---:|---|"]
    for label, ratio in summary["ratios"].items():
        limit = ratio["at_most"]
        met = "met" if limit is None or ratio["value"] <= limit else "**missed**"
        target = "" if limit is None else f"≤ {limit:.2f}: {met}"
        lines.append(f"| {label} | {ratio['value']:.3f} | {target} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
