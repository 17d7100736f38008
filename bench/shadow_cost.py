"""What shadow mode costs the client: p50 latency and throughput at 0 %, 10 % and 100 %.

    python -m bench.shadow_cost [--seconds 5] [--rounds 3] [--clients 16]

The example app (legacy `def` routes on their own engine, async twins on AsyncDB) on a
throwaway PostgreSQL database, driven in-process through ASGI by `--clients` concurrent
clients for `--seconds` per case: a read route (GET /users/{id}) and a write route
(PATCH /users/{id}, a rename). Cases alternate within each round, so a noisy machine shifts
all of them alike; the median round is reported, as ratios to shadow 0 % of the same round.
Reads run the twin after the response (the client does not wait; it shares the CPU);
writes run it first, rolled back (the client waits for it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from contextlib import contextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PERCENTS = (0, 10, 100)
ROUTES = {"read": "GET /users/{user_id}", "write": "PATCH /users/{user_id}"}
USERS = 50


@contextmanager
def throwaway_database() -> Any:
    name = f"gateway_shadow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        make_url(ADMIN_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def drive(client: httpx.AsyncClient, kind: str, seconds: float, clients: int) -> list[float]:
    """Latencies of every request `clients` concurrent clients made in `seconds`."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one_client(number: int) -> None:
        i = number
        while time.perf_counter() < deadline:
            user_id = i % USERS + 1
            started = time.perf_counter()
            if kind == "read":
                response = await client.get(f"/users/{user_id}")
            else:
                response = await client.patch(f"/users/{user_id}", json={"name": f"n{number}-{i}"})
            latencies.append(time.perf_counter() - started)
            if response.status_code not in (200, 409):
                raise RuntimeError(f"{kind}: {response.status_code} {response.text[:200]}")
            i += clients

    await asyncio.gather(*(one_client(n) for n in range(clients)))
    return latencies


async def run(seconds: float, rounds: int, clients: int) -> dict[str, Any]:
    from example import create_gateway
    from gateway import Settings

    results: dict[str, list[dict[str, float]]] = {}
    with throwaway_database() as url:
        settings = Settings.from_environ(
            {}, database_url=url, pool_size=8, max_overflow=4, metrics=True, gc_freeze=True
        )
        os.environ["DATABASE_URL"] = url  # the legacy app's own engine
        gw = create_gateway(settings)
        app = gw.build()
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for i in range(USERS):
                    await client.post("/users", json={"name": f"u{i}", "email": f"u{i}@x.org"})
                for _ in range(rounds):
                    for kind, key in ROUTES.items():
                        for percent in PERCENTS:
                            mode = "shadow" if percent else "legacy"
                            gw.modes.set_mode(key, mode, percent if percent else None)
                            latencies = await drive(client, kind, seconds, clients)
                            await gw.shadow.settle()
                            results.setdefault(f"{kind} {percent}%", []).append(
                                {
                                    "rps": len(latencies) / seconds,
                                    "p50_ms": statistics.median(latencies) * 1000,
                                }
                            )
                        gw.modes.set_mode(key, "legacy")
                shadow = gw.shadow.local_report()
    return {"cases": results, "shadow": shadow}


def summarize(found: dict[str, Any]) -> str:
    cases = found["cases"]
    lines = ["case          req/s   p50 ms   req/s vs 0%   p50 vs 0%   (median of rounds)"]
    for kind in ROUTES:
        base = cases[f"{kind} 0%"]
        for percent in PERCENTS:
            rows = cases[f"{kind} {percent}%"]
            rps = statistics.median(r["rps"] for r in rows)
            p50 = statistics.median(r["p50_ms"] for r in rows)
            pairs = list(zip(rows, base, strict=True))
            ratio_rps = statistics.median(r["rps"] / b["rps"] for r, b in pairs)
            ratio_p50 = statistics.median(r["p50_ms"] / b["p50_ms"] for r, b in pairs)
            lines.append(
                f"{kind + ' ' + str(percent) + '%':<12}{rps:>8.0f}{p50:>9.2f}"
                f"{ratio_rps:>14.3f}{ratio_p50:>12.3f}"
            )
    lines.append("")
    for row in found["shadow"]["routes"]:
        lines.append(
            f"{row['route']}: compared {row['compared']}, different {row['different']}, "
            f"candidate errors {row['candidate_errors']}, skipped {row['skipped']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    print(summarize(asyncio.run(run(args.seconds, args.rounds, args.clients))))


if __name__ == "__main__":
    main()
