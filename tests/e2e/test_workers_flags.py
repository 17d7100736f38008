"""End to end: `gateway serve --workers 4` on PostgreSQL; flips reach every worker process.

Each probe response names the worker pid and the implementation that served it.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli.commands import cli
from gateway.flags.table import Flag, choose
from gateway.modes import Mode
from gateway.testing import serve_in_subprocess
from tests.apps.probe import ADMIN_TOKEN, PROBE, implementations_by_pid

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

APP = "tests.apps.probe:create_probe_app"
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


def test_cli_flips_reach_every_worker_and_canary_keys_stick(postgres_url):
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

        # Canary at 10 %: about 10 % of user keys go to async, each key on one side only,
        # whichever worker serves it.
        result = runner.invoke(
            cli, ["flags", "set", PROBE, "canary", "--percent", "10", "--url", url],
            env={"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        flag = Flag(Mode.CANARY, 10)
        users = [f"user-{i}" for i in range(300)]
        on_async = next(u for u in users if choose(flag, salt=PROBE, request_key=u) == "async")
        asyncio.run(  # every worker has applied the canary once it serves this key async
            implementations_by_pid(
                url,
                headers={"x-user-id": on_async},
                until=lambda s: set(before) <= set(s) and set(s.values()) == {"async"},
            )
        )
        sides = asyncio.run(_sides_by_user(url, users + users))
        assert all(len(seen) == 1 for seen in sides.values()), sides
        for user, seen in sides.items():
            assert seen == {choose(flag, salt=PROBE, request_key=user).value}
        share = sum(seen == {"async"} for seen in sides.values()) / len(users)
        assert 0.05 <= share <= 0.15


async def _sides_by_user(url: str, users: list[str]) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = {}
    limits = httpx.Limits(max_keepalive_connections=0)  # new connections spread over workers
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for start in range(0, len(users), 20):
            batch = users[start : start + 20]
            responses = await asyncio.gather(
                *(client.get(f"{url}/probe", headers={"x-user-id": u}) for u in batch)
            )
            for user, response in zip(batch, responses, strict=True):
                assert response.status_code == 200
                sides.setdefault(user, set()).add(response.json()["implementation"])
    return sides


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
