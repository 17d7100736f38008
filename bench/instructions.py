"""Instructions per request, counted under Valgrind: a layer's cost on a noisy machine.

    scripts/bench --instructions                   # every case, 3 runs
    python -m bench.instructions --cases bare_async,gateway_async --runs 1
    python -m bench.instructions --profile gateway_legacy   # where a request's instructions go

Wall-clock ratios of the same benchmark disagree by 8-17 % between runs on a shared
machine; the instructions a process executes do not depend on the machine's load. Each case
is one app in a process of its own under Valgrind's callgrind, driven in-process over ASGI
one request at a time (GET of a random user, ids from a fixed seed) on real PostgreSQL. The
process starts uninstrumented, warms up, freezes its heap (`gc.freeze()`, on every case
alike), and only then has Valgrind count (bench.valgrind: client requests), dumping the
count at N1, 2 N1, ... N2 requests; per request = (I(N2) - I(N1)) / (N2 - N1), so start-up,
warm-up and the first measured requests are out of the figure, and the dumps in between
show how steady it is within the process. The gateway's periodic work (loop-lag ticks, the
judge, the flag follower) is paused for that through its settings (long intervals; the
flags in SQLite, so no listener thread polls PostgreSQL ten times a second, which under
Valgrind lands on the requests as wall time stretches with the load); what it costs an
idle process per second is measured apart (`IDLE`), with default settings, the same way
over idle seconds S1 and S2.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.inprocess import http_scope, receive
from bench.valgrind import LIB_ENV, callgrind_command, compile_client_requests, read_counts

__all__ = [
    "CASES", "DEFAULT_REQUESTS", "IDLE", "Case", "environment", "laid_out", "main", "marks",
    "measure", "per_request", "prepared", "requests_of", "spread",
]  # fmt: skip

MARK = "instructions "
USERS = 10_000
DEFAULT_REQUESTS = (200, 1000)  # N1, N2: per request = (I(N2) - I(N1)) / (N2 - N1)
WARM = 100  # unmeasured requests before the heap is frozen: pools filled, caches built
PAUSED = {  # the gateway's periodic work, out of the measured part
    "GATEWAY_LOOP_LAG_INTERVAL": "3600",  # also the metrics' sample and snapshot
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
    headers: tuple[tuple[str, str], ...] = ()  # sent with each request, besides host
    requests: tuple[int, int] | None = None  # N1, N2 of its own (a slow case), unless --requests


GATEWAY = "bench.apps.gateway_app:create_app"


def _mode(mode: str) -> dict[str, str]:
    return {"GATEWAY_DEFAULT_MODE": mode}


def _scaled(name: str, factory: str, routes: int, requests: tuple[int, int] | None = None) -> Case:
    """The lookup registered last in an app of `routes` routes (bench.apps.many_routes)."""
    target = f"bench.apps.many_routes:{factory}"
    env = {"BENCH_ROUTES": str(routes)}
    return Case(f"{name}_{routes}", target, "/api/v1/users/{}", env, requests=requests)


def _real_shapes(name: str, factory: str) -> Case:
    """GET of the last route behind the async auth dependency (bench.apps.real_shapes)."""
    from bench.apps.real_shapes import AUTHORIZATION, MEASURED

    header = tuple(part.decode() for part in AUTHORIZATION)
    return Case(name, f"bench.apps.real_shapes:{factory}", MEASURED, headers=(header,))  # type: ignore[arg-type]


CASES: tuple[Case, ...] = (
    Case("bare_async", "bench.apps.bare_async:create_app"),
    Case("gateway_async", GATEWAY, env=_mode("async")),
    Case("bare_def", "bench.apps.bare_def:create_app"),
    Case("gateway_legacy", GATEWAY, env=_mode("legacy")),
    Case("instrumented", "bench.apps.instrumented:create_app"),
    _scaled("bare_def", "create_bare_app", 10),
    _scaled("bare_def", "create_bare_app", 1000, (50, 250)),  # 35 M instructions a request
    _scaled("gateway_legacy", "create_gateway_app", 10),
    _scaled("gateway_legacy", "create_gateway_app", 1000),
    _real_shapes("real_shapes_bare", "create_bare_app"),
    _real_shapes("real_shapes_gateway", "create_gateway_app"),
)
# Idle processes with the default intervals: what the periodic work costs per second.
IDLE: tuple[Case, ...] = (
    Case("idle_bare_async", "bench.apps.bare_async:create_app"),
    Case("idle_gateway", GATEWAY, env=_mode("legacy")),
)

# -- the child: one app, N requests (or S idle seconds), then exit ---------------------


DISTURBED = 0.5  # % between the steps of one process: undisturbed runs stay under 0.1 %
LAYOUT_STEP = 96  # bytes of environment between two layouts


def laid_out(layout: int) -> dict[str, str]:
    """The environment of memory layout number `layout` (0: none added)."""
    return {"BENCH_LAYOUT": "x" * (LAYOUT_STEP * layout)} if layout else {}


def marks(first: float, last: float) -> list[float]:
    """Where the count is dumped: every `first` up to `last` (or just the two)."""
    if last <= first:
        raise ValueError(f"expected N2 > N1 (or S2 > S1), got {first:g} and {last:g}")
    steps = last / first
    if steps == int(steps):
        return [first * k for k in range(1, int(steps) + 1)]
    return [first, last]


async def child(
    target: str, path: str, headers: list[tuple[str, str]], at: list[float], idle: bool, seed: int
) -> None:
    from asgi_lifespan import LifespanManager

    from bench.valgrind import ClientRequests

    counter = ClientRequests()
    module, factory = target.split(":")
    app = getattr(importlib.import_module(module), factory)()
    failed: dict[int, int] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            failed[message["status"]] = failed.get(message["status"], 0) + 1

    sent = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def drive(count: int, rng: random.Random) -> None:
        for _ in range(count):
            scope = http_scope(path.format(rng.randint(1, USERS)), sent)
            await manager.app(scope, receive, send)

    # Start-up takes minutes under Valgrind, not LifespanManager's default 5 s.
    async with LifespanManager(app, startup_timeout=None, shutdown_timeout=None) as manager:
        await drive(WARM, random.Random(seed + 1))
        gc.collect()
        gc.freeze()
        rng, done = random.Random(seed), 0.0
        counter.start()
        for mark in at:
            if idle:
                await asyncio.sleep(mark - done)
            else:
                await drive(int(mark - done), rng)
            counter.dump(f"{mark:g}")
            done = mark
        counter.stop()
        gc.unfreeze()
    print(MARK + json.dumps({"failed": failed, "valgrind": counter.on_valgrind}), flush=True)


# -- the parent --------------------------------------------------------------------------


def per_request(low: int, high: int, n_low: float, n_high: float) -> float:
    """Instructions per unit from two counts: (I(N2) - I(N1)) / (N2 - N1)."""
    if n_high <= n_low:
        raise ValueError(f"expected N2 > N1, got N1={n_low}, N2={n_high}")
    return (high - low) / (n_high - n_low)


def count(case: Case, env: dict[str, str], args: argparse.Namespace, idle: bool) -> list[int]:
    """The counts of one child process under callgrind at each mark, cumulative from the
    first measured request (or idle second)."""
    at = marks(*(args.idle if idle else requests_of(case, args)))
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            *callgrind_command(tmp), sys.executable, "-m", "bench.instructions",
            "--child", case.target, "--path", case.path, "--seed", str(args.seed),
            "--headers", json.dumps(case.headers),
            "--at", ",".join(f"{m:g}" for m in at), *(["--idle-child"] if idle else []),
        ]  # fmt: skip
        if not idle:  # flags in SQLite: no listener thread polling PostgreSQL 10 times a second
            env = {**env, "GATEWAY_FLAGS_DATABASE_URL": f"sqlite:///{tmp}/flags.db"}
        done = subprocess.run(
            command, env={**env, **case.env}, capture_output=True, text=True, check=False
        )
        if done.returncode or MARK not in done.stdout:
            log = Path(tmp, "valgrind.log")
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise SystemExit(
                f"{case.name} failed with {done.returncode}:\n{done.stderr[-3000:]}\n{tail}"
            )
        answer = json.loads(done.stdout.split(MARK, 1)[1].splitlines()[0])
        if answer["failed"]:
            raise SystemExit(f"{case.name}: non-200 answers {answer['failed']}")
        counts = read_counts(tmp)
        labels = [f"{m:g}" for m in at]
        if not answer["valgrind"] or [label for label, _ in counts] != labels:
            raise SystemExit(
                f"{case.name}: expected callgrind dumps at {labels}, found "
                f"{[label for label, _ in counts]} (under valgrind: {answer['valgrind']})"
            )
        cumulative, total = [], 0
        for _, instructions in counts:
            total += instructions
            cumulative.append(total)
        return cumulative


def requests_of(case: Case, args: argparse.Namespace) -> tuple[int, int]:
    """N1, N2 of `case`: --requests if given, else the case's own, else 200, 1000."""
    if args.requests is not None:
        return args.requests[0], args.requests[1]
    return case.requests or DEFAULT_REQUESTS


def measure(case: Case, env: dict[str, str], args: argparse.Namespace, idle: bool) -> float:
    """Instructions per request (or per idle second) of `case`: one process, (I(N2) - I(N1))
    / (N2 - N1); the steps between the marks in between are printed beside it."""
    first, last = args.idle if idle else requests_of(case, args)
    at = marks(first, last)
    cumulative = count(case, env if idle else {**env, **PAUSED}, args, idle)
    found = per_request(cumulative[0], cumulative[-1], first, last)
    steps = [
        per_request(low, high, a, b)
        for low, high, a, b in zip(cumulative, cumulative[1:], at, at[1:], strict=False)
    ]
    within = f", steps within {spread(steps):.2f} %" if len(steps) > 1 else ""
    if not idle and len(steps) > 1 and spread(steps) > DISTURBED:
        within += (
            " (disturbed: more than two busy processes on two cores make some of the "
            "gateway's work follow wall time; re-run on a quieter machine)"
        )
    print(f"  {case.name}: {found / 1e6:.4f} M{within}", flush=True)
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


@contextmanager
def prepared(admin: str) -> Iterator[dict[str, str]]:
    """The environment of measured children: a throwaway database of USERS users on the
    PostgreSQL server at `admin`, and Valgrind's client requests compiled for them."""
    from bench.database import throwaway_database

    with throwaway_database(admin, users=USERS) as db, tempfile.TemporaryDirectory() as lib:
        yield {**environment(db.url), LIB_ENV: str(compile_client_requests(lib))}


def spread(values: list[float]) -> float:
    """The largest distance from the mean, in % of the mean."""
    mean = statistics.fmean(values)
    return max(abs(v - mean) for v in values) / mean * 100


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ",".join(c.name for c in CASES + IDLE)
    parser.add_argument("--cases", default=names, help=f"some of {names}")
    parser.add_argument("--runs", type=int, default=3, help="repeated runs per case (3)")
    parser.add_argument(
        "--layouts",
        type=int,
        default=1,
        help="memory layouts per run (1): each moves the process's memory by a longer "
        "environment, which moves CPython's type-attribute cache collisions",
    )
    parser.add_argument(
        "--requests",
        default=None,
        help="N1,N2: counted from the N1-th to the N2-th request (200,1000; 50,250 for "
        "bare_def_1000)",
    )
    parser.add_argument("--idle", default="2,12", help="idle seconds S1,S2 (2,12)")
    parser.add_argument("--seed", type=int, default=26, help="seed of the requested ids (26)")
    parser.add_argument("--jobs", type=int, default=2, help="processes at once (2)")
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument("--postgres", default=None, help="admin URL of the PostgreSQL server")
    parser.add_argument("--from-json", default="", help="print the tables of a saved run")
    parser.add_argument("--child", metavar="APP", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/users/{}", help=argparse.SUPPRESS)
    parser.add_argument("--at", default="", help=argparse.SUPPRESS)
    parser.add_argument("--idle-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--headers", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        at = [float(m) for m in args.at.split(",")]
        headers = [(name, value) for name, value in json.loads(args.headers)]
        uvloop.run(child(args.child, args.path, headers, at, args.idle_child, args.seed))
        return
    if args.requests is not None:
        args.requests = [int(n) for n in args.requests.split(",")]
    args.idle = [float(n) for n in args.idle.split(",")]
    if args.from_json:
        with open(args.from_json) as saved:
            run = json.load(saved)
        keys = ("requests", "idle", "runs", "seed")
        vars(args).update({k: run["args"][k] for k in keys}, layouts=run["args"].get("layouts", 1))
        runs = {name: case["runs"] for name, case in run["results"]["cases"].items()}
        print(render(summarize(runs), args, run.get("seconds", 0.0)))
        return
    wanted = {n.strip() for n in args.cases.split(",")}
    chosen = [(c, False) for c in CASES if c.name in wanted]
    chosen += [(c, True) for c in IDLE if c.name in wanted]
    if not chosen:
        raise SystemExit(f"--cases {args.cases!r}: expected some of {names}")

    from bench.database import DEFAULT_ADMIN_URL

    admin = args.postgres or os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    started = time.monotonic()
    results: dict[str, list[float]] = {}
    with prepared(admin) as env:
        jobs = [
            (case, idle, layout)
            for _ in range(args.runs)
            for layout in range(args.layouts)
            for case, idle in chosen
        ]

        def one(job: tuple[Case, bool, int]) -> tuple[str, float]:
            case, idle, layout = job
            return case.name, measure(case, {**env, **laid_out(layout)}, args, idle)

        with ThreadPoolExecutor(args.jobs) as pool:
            found = list(pool.map(one, jobs))
        for name, value in found:
            results.setdefault(name, []).append(value)
    summary = summarize(results)
    seconds = time.monotonic() - started
    print(render(summary, args, seconds))
    if args.json:
        command = ["python", "-m", "bench.instructions", *sys.argv[1:]]  # no path of this machine
        saved = {"command": command, "args": vars(args), "seconds": seconds, "results": summary}
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
    ("behind async auth: gateway / the app alone", "real_shapes_gateway", "real_shapes_bare", 0.70),
    ("idle second: gateway / bare async", "idle_gateway", "idle_bare_async", None),
)


def render(summary: dict[str, Any], args: argparse.Namespace, seconds: float) -> str:
    if args.requests:
        counts = f"N1={args.requests[0]}, N2={args.requests[1]}"
    else:
        own = "; ".join(f"{c.name}: {c.requests[0]}, {c.requests[1]}" for c in CASES if c.requests)
        counts = f"N1={DEFAULT_REQUESTS[0]}, N2={DEFAULT_REQUESTS[1]}; {own}"
    lines = [
        f"instructions per request ({counts}) or per idle second "
        f"(S1={args.idle[0]:g}, S2={args.idle[1]:g}), {args.runs} runs x {args.layouts} "
        f"memory layouts, seed {args.seed}, {seconds:.0f} s",
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
