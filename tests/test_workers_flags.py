"""End to end: `gateway serve --workers 4` on PostgreSQL; flips reach every worker process.

Each probe response names the worker pid and the implementation that served it.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import cli
from gateway.testing import serve_in_subprocess
from tests.support_flags import ADMIN_TOKEN, PROBE, implementations_by_pid

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

APP = "tests.support_flags:create_probe_app"
WORKERS = 4


def env_for(database_url: str) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ADMIN_TOKENS": f"ops={ADMIN_TOKEN}",
        "GATEWAY_POOL_SIZE": "2",
        "GATEWAY_MAX_OVERFLOW": "2",
        # The server's output pipe is not drained while it runs: no per-flip INFO lines.
        "GATEWAY_LOG_LEVEL": "warning",
    }


def test_cli_flip_is_served_by_every_worker(postgres_url):
    with serve_in_subprocess(
        APP, env=env_for(postgres_url), workers=WORKERS, ready_timeout=120
    ) as url:
        before = asyncio.run(implementations_by_pid(url, until=lambda s: len(s) == WORKERS))
        assert set(before.values()) == {"legacy"}

        runner = CliRunner()
        for mode in ("async", "legacy", "async"):
            result = runner.invoke(
                cli, ["flags", "set", PROBE, mode, "--url", url, "--token", ADMIN_TOKEN]
            )
            assert result.exit_code == 0, result.output
            after = asyncio.run(
                implementations_by_pid(
                    url,
                    until=lambda s, mode=mode: (
                        set(before) <= set(s) and all(s[pid] == mode for pid in before)
                    ),
                )
            )
            assert {after[pid] for pid in before} == {mode}


async def _load_while_flipping(url: str, *, clients: int, flips: int) -> tuple[int, int, set]:
    failures: list[str] = []
    done = 0
    stop = asyncio.Event()

    async def user(client: httpx.AsyncClient, number: int) -> None:
        nonlocal done
        while not stop.is_set():
            try:
                response = await client.get(f"{url}/probe", headers={"x-user-id": str(number)})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            done += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        users = [asyncio.create_task(user(client, n)) for n in range(clients)]
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        modes = [{"mode": "async"}, {"mode": "canary", "percent": 50}, {"mode": "legacy"}]
        served = set()
        for i in range(flips):
            response = await client.put(
                f"{url}/_gateway/routes/GET%20%2Fprobe", json=modes[i % 3], headers=admin
            )
            assert response.status_code == 200, response.text
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*users)
        history = (await client.get(f"{url}/_gateway/history?limit=1000")).json()["history"]
        served = {h["new"]["mode"] for h in history}
    assert not failures, failures[:5]
    return done, len(history), served


def test_repeated_flips_under_concurrent_load_fail_no_request(postgres_url):
    with serve_in_subprocess(
        APP, env=env_for(postgres_url), workers=WORKERS, ready_timeout=120
    ) as url:
        done, recorded, modes = asyncio.run(_load_while_flipping(url, clients=50, flips=20))
    assert recorded == 20
    assert modes == {"async", "canary", "legacy"}
    assert done > 0
