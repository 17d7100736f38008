"""How often a correct read twin is reported different while other requests write.

    python -m bench.shadow_false_differences [--requests 3000] [--writes 0.03] [--clients 2]

The example app on a throwaway PostgreSQL database (or `--sqlite`), driven in-process over
ASGI by `--clients` concurrent clients: GET /users/{id} shadowed at 100 % (its twin is
correct), and a share `--writes` of the requests PATCH /users/{id} (legacy mode) on the same
few users, so writes land between legacy's read and its twin's. Every "different" is a false
difference; the rate is different / (same + different), with what was skipped beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from bench.shadow_cost import throwaway_database

__all__ = ["main"]

READ, WRITE = "GET /users/{user_id}", "PATCH /users/{user_id}"
USERS = 5


async def run(url: str, requests: int, writes: float, clients: int) -> dict[str, Any]:
    from example import create_gateway
    from gateway import Settings

    settings = Settings.from_environ({}, database_url=url, pool_size=8, max_overflow=4)
    os.environ["DATABASE_URL"] = url  # the legacy app's own engine
    gw = create_gateway(settings)
    app = gw.build()
    randoms = random.Random(7)
    plan = [randoms.random() < writes for _ in range(requests)]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(USERS):
                await client.post("/users", json={"name": f"u{i}", "email": f"u{i}@x.org"})
            gw.modes.set_mode(READ, "shadow", 100)
            gw.shadow.results.route(READ).learned = 10**6  # a correct twin: no noise to learn
            queue = list(enumerate(plan))

            async def one_client() -> None:
                while queue:
                    i, write = queue.pop()
                    user = i % USERS + 1
                    if write:
                        await client.patch(f"/users/{user}", json={"name": f"n{i}"})
                    else:
                        response = await client.get(f"/users/{user}")
                        if response.status_code != 200:
                            raise RuntimeError(f"{response.status_code} {response.text[:200]}")

            await asyncio.gather(*(one_client() for _ in range(clients)))
            await gw.shadow.settle()
    row = next(r for r in gw.shadow.local_report()["routes"] if r["route"] == READ)
    return {"writes": sum(plan), "requests": requests, **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--writes", type=float, default=0.03)
    # Fewer clients than shadow slots (4): past that, reads queue without a snapshot pinned
    # before legacy read, and a queued read's difference can only be skipped as unconfirmed.
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--sqlite", metavar="PATH", help="a SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    if args.sqlite:
        found = asyncio.run(
            run(f"sqlite:///{args.sqlite}", args.requests, args.writes, args.clients)
        )
    else:
        with throwaway_database() as url:
            found = asyncio.run(run(url, args.requests, args.writes, args.clients))
    compared = found["same"] + found["different"]
    rate = found["different"] / compared * 100 if compared else 0.0
    print(
        f"{found['requests']} requests, {found['writes']} writes: compared {compared}, "
        f"different {found['different']} ({rate:.2f} %), skipped {found['skipped']}"
    )


if __name__ == "__main__":
    main()
