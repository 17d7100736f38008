"""The size and CPU of an idle /metrics scrape, by route count (issue 26, target 5).

    python -m bench.exposition                    # 250 and 1000 routes
    python -m bench.exposition --routes 250 --scrapes 50

A gateway over bench.apps.many_routes' legacy app (all `def` routes, the last one with the
lookup) is built on a throwaway SQLite file (no request touches the database) and started;
no request but the scrapes reaches it. Printed per app: the body's size, its samples (lines
not starting with #), the thread-timing samples among them, the process CPU per scrape
(`time.process_time()` over `--scrapes` scrapes after one unmeasured), and the body's size
once every route but the lookup has served one request (its series appear with it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

from bench.inprocess import http_scope, receive

__all__ = ["main", "scrape"]

THREAD_SERIES = ("gateway_thread_", "gateway_threadpool_queue_")


async def ignore(message: dict[str, Any]) -> None:
    pass


async def scrape(app: Any) -> bytes:
    """One GET /metrics over ASGI; the body."""
    parts: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"/metrics answered {message['status']}")
        parts.append(message.get("body", b""))

    await app(http_scope("/metrics"), receive, send)
    return b"".join(parts)


async def measure(routes: int, scrapes: int) -> dict[str, Any]:
    from asgi_lifespan import LifespanManager

    from bench.apps import many_routes

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            BENCH_ROUTES=str(routes),
            GATEWAY_DATABASE_URL=f"postgresql://unused@127.0.0.1:1/{routes}",
            GATEWAY_FLAGS_DATABASE_URL=f"sqlite:///{tmp}/flags.db",
            GATEWAY_LOG_LEVEL="warning",
            GATEWAY_LOOP_LAG_INTERVAL="60",
            GATEWAY_JUDGE_INTERVAL="60",
        )
        app = many_routes.create_gateway_app()
        async with LifespanManager(app) as manager:
            body = await scrape(manager.app)
            before = time.process_time()
            for _ in range(scrapes):
                await scrape(manager.app)
            cpu = (time.process_time() - before) / scrapes
            for method, path in many_routes.filler(routes - 1):  # each route once
                scope = {**http_scope(path.format(item_id=1, n=2)), "method": method}
                await manager.app(scope, receive, ignore)
            served = await scrape(manager.app)
    lines = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    thread = [line for line in lines if line.startswith(THREAD_SERIES)]
    return {
        "routes": routes,
        "bytes": len(body),
        "samples": len(lines),
        "thread_samples": len(thread),
        "cpu_ms": cpu * 1000,
        "served_bytes": len(served),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default="250,1000", help="route counts (250,1000)")
    parser.add_argument("--scrapes", type=int, default=20, help="measured scrapes (20)")
    args = parser.parse_args(argv)
    print(
        "| routes | idle /metrics bytes | samples | thread-timing samples | CPU per scrape "
        "| bytes once every route served |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for count in (int(n) for n in args.routes.split(",")):
        found = asyncio.run(measure(count, args.scrapes))
        print(
            f"| {found['routes']} | {found['bytes']:,} | {found['samples']:,} | "
            f"{found['thread_samples']:,} | {found['cpu_ms']:.1f} ms | {found['served_bytes']:,} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
