"""End to end: `gateway serve --workers 2` on PostgreSQL; the judge rolls a broken canary back
on every worker by itself, leaves a correct one in canary, and sits out a database outage."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from gateway.testing import serve_in_subprocess
from tests.apps.canary import BROKEN, FINE
from tests.apps.private_postgres import private_postgres
from tests.apps.probe import ADMIN_TOKEN

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

APP = "tests.apps.canary:create_canary_app"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BOUND = 60.0  # the bound, from the first failure to every worker on legacy


def env_for(database_url: str) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ADMIN_TOKENS": f"ops={ADMIN_TOKEN}",
        "GATEWAY_POOL_SIZE": "2",
        "GATEWAY_MAX_OVERFLOW": "2",
        "GATEWAY_LOG_LEVEL": "warning",
    }


def quoted(key: str) -> str:
    return key.replace(" ", "%20").replace("/", "%2F").replace("{", "%7B").replace("}", "%7D")


async def flip(client: httpx.AsyncClient, url: str, key: str, percent: float) -> None:
    body = {"mode": "canary", "percent": percent, "reason": "try async"}
    response = await client.put(f"{url}/_gateway/routes/{quoted(key)}", json=body, headers=AUTH)
    assert response.status_code == 200, response.text


class Load:
    """Clients on /broken and /fine with random user keys until stopped."""

    def __init__(self, url: str, clients: int = 8) -> None:
        self.url, self.clients = url, clients
        self.first_failure: float | None = None
        self.statuses: dict[str, dict[int, int]] = {"broken": {}, "fine": {}}
        self._stop = asyncio.Event()

    async def _user(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        while not self._stop.is_set():
            path = rng.choice(("broken", "fine"))
            item, user = rng.randrange(10_000), f"user-{rng.randrange(100_000)}"
            try:
                response = await client.get(
                    f"{self.url}/{path}/{item}", headers={"x-user-id": user}
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            seen = self.statuses[path]
            seen[status] = seen.get(status, 0) + 1
            if path == "broken" and status == 500 and self.first_failure is None:
                self.first_failure = time.monotonic()

    async def run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # spread over both workers
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await asyncio.gather(
                *(self._user(client, random.Random(n)) for n in range(self.clients))
            )

    def stop(self) -> None:
        self._stop.set()


async def every_worker_on_legacy(url: str, key_path: str, deadline: float) -> set[int]:
    """Poll with fresh connections until both workers answer /broken from legacy for users
    the canary would send to async; return the pids seen."""
    pids: dict[int, str] = {}
    async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        while time.monotonic() < deadline:
            responses = await asyncio.gather(
                *(client.get(f"{url}/{key_path}/1", headers={"x-user-id": f"k{n}"})
                  for n in range(40))
            )  # fmt: skip
            for response in responses:
                body = response.json()
                pids[body["pid"]] = body["implementation"]
            if len(pids) == 2 and set(pids.values()) == {"legacy"}:
                return set(pids)
            pids.clear()
            await asyncio.sleep(0.2)
    raise AssertionError(f"not every worker serves {key_path} from legacy: {pids}")


def test_broken_canary_rolled_back_on_every_worker_and_fine_one_stays(postgres_url):
    with serve_in_subprocess(APP, env=env_for(postgres_url), workers=2, ready_timeout=120) as url:

        async def scenario() -> None:
            load = Load(url)
            async with httpx.AsyncClient(timeout=30) as admin:
                await flip(admin, url, BROKEN, 50)
                await flip(admin, url, FINE, 50)
                running = asyncio.create_task(load.run())
                limit = time.monotonic() + 120
                while load.first_failure is None and time.monotonic() < limit:
                    await asyncio.sleep(0.1)
                assert load.first_failure is not None, load.statuses
                await every_worker_on_legacy(url, "broken", load.first_failure + BOUND)
                await asyncio.sleep(5)  # the fine canary keeps serving under the judge
                load.stop()
                await running
                history = (await admin.get(f"{url}/_gateway/history?limit=100")).json()
                routes = (await admin.get(f"{url}/_gateway/routes")).json()["routes"]
            by_judge = [h for h in history["history"] if h["by"] == "judge"]
            assert [(h["route"], h["new"]["mode"]) for h in by_judge] == [(BROKEN, "legacy")]
            assert "async is worse on 5xx" in by_judge[0]["reason"]
            modes = {r["key"]: (r["mode"], r["percent"]) for r in routes}
            assert modes[FINE] == ("canary", 50.0)
            assert modes[BROKEN] == ("legacy", 0.0)
            canary = {r["key"]: r["canary"] for r in routes}
            assert canary[BROKEN]["status"] == "rolled back"
            assert load.statuses["fine"].get(200, 0) > 0

        asyncio.run(scenario())


def test_a_database_outage_during_a_canary_rolls_nothing_back():
    with private_postgres() as cluster:
        env = {**env_for(cluster.url), "GATEWAY_DB_RETRY_AFTER": "1"}
        with serve_in_subprocess(APP, env=env, workers=2, ready_timeout=120) as url:

            async def scenario() -> None:
                load = Load(url)
                async with httpx.AsyncClient(timeout=30) as admin:
                    await flip(admin, url, FINE, 50)
                    running = asyncio.create_task(load.run())
                    await asyncio.sleep(10)
                    cluster.stop()
                    await asyncio.sleep(10)  # both arms of /fine fail while it is down
                    cluster.start()
                    await asyncio.sleep(15)  # counts written late arrive; the judge decides
                    load.stop()
                    await running
                    routes = (await admin.get(f"{url}/_gateway/routes")).json()["routes"]
                    history = (await admin.get(f"{url}/_gateway/history")).json()["history"]
                modes = {r["key"]: (r["mode"], r["percent"]) for r in routes}
                judged = [h for h in history if h["by"] == "judge"]
                reasons = [h["reason"] for h in judged]
                assert (modes[FINE], judged) == (("canary", 50.0), []), (load.statuses, reasons)
                failed = sum(n for s, n in load.statuses["fine"].items() if s != 200)
                assert failed > 0, load.statuses  # the outage did reach both arms

            asyncio.run(scenario())
