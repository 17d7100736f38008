"""What shadow isolation costs a request, in instructions (cachegrind), shadowed and not.

    python -m bench.isolation_cost                         # 6 cases x 2 runs under valgrind
    python -m bench.isolation_cost --cases plain,shadowed --requests 200,1000 --runs 3
    python -m bench.isolation_cost --cases checkout --requests 1000,5000

The harness is bench.instructions's (`measure`): each figure is one process under Valgrind's
callgrind that counts only from its N1-th to its N2-th request after the same warm-up, per
request = (I(N2) - I(N1)) / (N2 - N1); the gateway's periodic work is
paused through its settings and the flags sit in a SQLite file, so nothing polls while a
request takes seconds under valgrind. The app is bench.apps.gateway_app's pair (GET
/users/{id}, bare_def mounted unchanged, its async twin) on a throwaway PostgreSQL database.

Cases: the route in legacy mode ("plain") or shadowed at 100 % (each request waits for its
twin's comparison, so the twin's work is inside the request's count; the shadow results'
flush, every 2 s of wall time, is paused like the rest), and "checkout": an ASGI app whose
every request checks one connection out of a SQLAlchemy pool (SQLite) and back, with the
outage watch on as in any serving gateway, so the seal's own cost per checkout shows without
a request's noise around it. Each with the isolation on and off. Off: the seal's check in
gateway.db.checkout's listener (the one the outage watch uses too), the shadow engine's
guards and the seal replaced by no-ops before the gateway is built; every child checks that
the listener is installed, with the seal's check exactly when the isolation is on.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

import gateway.db.checkout as checkout
import gateway.db.isolation as isolation
from bench.instructions import Case, measure, prepared, spread
from gateway.db.checkout import install_checkout

__all__ = ["CASES", "create_app", "main"]

TARGET = "bench.isolation_cost:create_app"
CASES = tuple(
    Case(f"{case}_{isolation}", TARGET, env={"BENCH_CASE": case, "BENCH_ISOLATION": isolation})
    for case in ("plain", "shadowed", "checkout")
    for isolation in ("on", "off")
)
PAUSED = 10**6  # seconds: the shadow results' flush, out of the measured part
LEARNED = 10**6  # comparisons counted as learned: the twin runs once per request


def _isolation_off() -> None:
    import gateway.shadow.runner as runner
    import gateway.shadow.sandbox as sandbox
    import gateway.shadow.twin as twin

    def nothing(*_args: Any) -> None:
        return None

    runner.install_isolation = nothing  # type: ignore[assignment]
    sandbox.guard_engine = nothing  # type: ignore[assignment]
    twin.sealed = lambda seal: contextlib.nullcontext(seal)  # type: ignore[assignment]
    isolation.install_isolation = nothing  # type: ignore[assignment]
    checkout._checkout = _watchers_only  # type: ignore[assignment]  # before it is installed


def _watchers_only(_dbapi: Any, _record: Any, _proxy: Any) -> None:
    """gateway.db.checkout's listener without the seal's check: the outage watch alone."""
    for watcher in checkout._watchers:
        watcher()


class Settled:
    """The app, each HTTP request returning only once its twin has been compared "same"."""

    def __init__(self, app: Any, shadow: Any, key: str) -> None:
        self.app, self.shadow, self.key, self.served = app, shadow, key, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        self.served += 1
        await self.shadow.settle()
        route = self.shadow.results.routes[self.key]
        if route.counts["same"] != self.served or route.learned < LEARNED:
            raise RuntimeError(  # a skipped, differing or learning twin: not this cost
                f"expected {self.served} twins run once and compared same, found "
                f"{route.counts} with {route.learned} learned"
            )


def _installed_as_asked() -> None:
    listener = checkout._checkout
    on = os.environ["BENCH_ISOLATION"] == "on"
    if not event.contains(Pool, "checkout", listener) or (listener is _watchers_only) == on:
        raise RuntimeError(f"BENCH_ISOLATION={os.environ['BENCH_ISOLATION']}: {listener=}")


def _checkout_app() -> Any:
    """An ASGI app whose every request is one checkout and return of a pooled connection
    (SQLite, no I/O worth the name), with the outage watch on as in a gateway: the seal's
    own cost at a checkout, apart from any request."""
    from prometheus_client import CollectorRegistry
    from sqlalchemy import create_engine

    from gateway.db.outage import Outage

    isolation.install_isolation()  # a no-op when off
    watch = Outage(retry_after=1, registry=CollectorRegistry()).watching()
    watch.__enter__()  # for the life of the process, as a gateway's lifespan does
    # the flags' SQLite file bench.instructions gives each child: a file, so a QueuePool
    pool = create_engine(os.environ["GATEWAY_FLAGS_DATABASE_URL"], pool_size=1).pool

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        pool.connect().close()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def create_app() -> Any:
    """The measured app of one case, from BENCH_CASE and BENCH_ISOLATION (bench.instructions
    --child bench.isolation_cost:create_app)."""
    from bench.apps.gateway_app import ROUTE, create_gateway, read_user_async

    if os.environ["BENCH_ISOLATION"] == "off":
        _isolation_off()
    if os.environ["BENCH_CASE"] == "checkout":
        app = _checkout_app()
        _installed_as_asked()
        return app
    gateway = create_gateway()
    app = gateway.build()
    install_checkout()  # as the lifespan's outage watch does, before the check below
    _installed_as_asked()
    if os.environ["BENCH_CASE"] == "plain":
        gateway.modes.set_mode(ROUTE, "legacy")
        return app
    shadow = gateway.shadow
    if shadow is None:
        raise RuntimeError("expected the built gateway to have a shadow runner, found None")
    gateway.modes.set_mode(ROUTE, "shadow", 100)
    shadow.results.flush_interval = PAUSED
    results = shadow.results  # one twin run per request: its noise counts as learned
    results.route(ROUTE, results.version_of(read_user_async)).learned = LEARNED
    return Settled(app, shadow, ROUTE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ",".join(sorted({c.env["BENCH_CASE"] for c in CASES}))
    parser.add_argument("--cases", default=names, help=f"some of {names}")
    parser.add_argument("--requests", default="200,1000", help="N1,N2 (200,1000)")
    parser.add_argument("--runs", type=int, default=2, help="repeated runs per case (2)")
    parser.add_argument("--jobs", type=int, default=2, help="processes at once (2)")
    parser.add_argument("--seed", type=int, default=23, help="seed of the requested ids (23)")
    parser.add_argument("--postgres", default=None, help="admin URL of the PostgreSQL server")
    args = parser.parse_args(argv)
    args.requests = [int(n) for n in args.requests.split(",")]

    from bench.database import DEFAULT_ADMIN_URL

    admin = args.postgres or os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    n1, n2 = args.requests
    print(f"instructions per request, (I({n2}) - I({n1})) / {n2 - n1}, {args.runs} runs")
    with prepared(admin) as env:
        env["GATEWAY_SHADOW_TIMEOUT"] = "600"  # valgrind's pace
        wanted = {name.strip() for name in args.cases.split(",")}
        chosen = [case for case in CASES if case.env["BENCH_CASE"] in wanted]
        if not chosen:
            raise SystemExit(f"--cases {args.cases!r}: expected some of {names}")
        jobs = [case for _ in range(args.runs) for case in chosen]
        with ThreadPoolExecutor(args.jobs) as pool:
            found = list(pool.map(lambda case: measure(case, env, args, False), jobs))
    runs: dict[str, list[float]] = {}
    for case, value in zip(jobs, found, strict=True):
        runs.setdefault(case.name, []).append(value)
    print("\n| case | mean | runs | largest distance from the mean |\n|---|---:|---|---:|")
    for name, values in runs.items():
        listed = ", ".join(f"{v:,.0f}" for v in values)
        mean = statistics.fmean(values)
        print(f"| {name} | {mean:,.0f} | {listed} | {spread(values):.2f} % |")
    for case in sorted(wanted & {c.env["BENCH_CASE"] for c in CASES}):
        on, off = runs[f"{case}_on"], runs[f"{case}_off"]
        each = ", ".join(f"{a - b:+,.0f}" for a, b in zip(on, off, strict=True))
        cost = statistics.fmean(on) - statistics.fmean(off)
        share = cost / statistics.fmean(off) * 100
        print(f"isolation costs a {case} request {cost:+,.0f} ({share:+.3f} %); per run: {each}")


if __name__ == "__main__":
    main()
