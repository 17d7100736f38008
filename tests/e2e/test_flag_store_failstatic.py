"""Fail static: a private PostgreSQL cluster is stopped and started under running gateways.

Never the shared server on 5432: this test runs its own cluster on a free loopback port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from prometheus_client import CollectorRegistry

from gateway.flags.table import Flag
from gateway.modes import Mode
from tests.apps.private_postgres import PrivatePostgres
from tests.apps.private_postgres import private_postgres as running_private_postgres
from tests.apps.probe import (
    ADMIN_TOKEN,
    PROBE,
    create_probe_gateway,
    implementations_by_pid,
    probe_settings,
)
from tests.conftest import started_client

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    with running_private_postgres() as cluster:
        yield cluster


async def eventually(check, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


def gateway_on(url: str):
    gateway = create_probe_gateway(probe_settings(url, flags_resync_interval=1.0))
    registry = gateway.registry
    gateway.build()
    return gateway, registry


@asynccontextmanager
async def running(gateway):
    async for client in started_client(gateway.app):
        yield client


def store_up(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("gateway_flag_store_up")


async def serve_probes(client, count: int) -> set[str]:
    seen = set()
    for _ in range(count):
        response = await client.get("/probe")
        assert response.status_code == 200
        seen.add(response.json()["implementation"])
    return seen


@pytest.mark.anyio
async def test_store_outage_keeps_last_flags_and_catches_up(private_postgres, caplog):
    caplog.set_level(logging.INFO, logger="gateway.flags")
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    one, one_metrics = gateway_on(private_postgres.url)
    two, _ = gateway_on(private_postgres.url)
    async with AsyncExitStack() as stack:
        client_one = await stack.enter_async_context(running(one))
        client_two = await stack.enter_async_context(running(two))
        assert store_up(one_metrics) == 1
        await one.follower.change(PROBE, "async", None, actor="ops")
        await eventually(lambda: two.modes.get(PROBE).mode is Mode.ASYNC)

        private_postgres.stop()
        await eventually(lambda: store_up(one_metrics) == 0)
        assert "flag store unreachable" in caplog.text
        # Requests keep being served with the last known flags: no flag lookup touches the store.
        assert await serve_probes(client_one, 200) == {"async"}
        assert await serve_probes(client_two, 200) == {"async"}
        refused = await client_one.put(
            "/_gateway/routes/GET%20%2Fprobe", json={"mode": "legacy"}, headers=auth
        )
        assert refused.status_code == 503
        assert "unreachable, so nothing was recorded" in refused.json()["detail"]
        assert one.modes.get(PROBE).mode is Mode.ASYNC
        status = (await client_one.get("/_gateway/routes")).json()["store"]
        assert (status["up"], status["flags_from"]) == (False, "store")

        # A worker that starts during the outage serves the default and says so.
        late, late_metrics = gateway_on(private_postgres.url)
        client_late = await stack.enter_async_context(running(late))
        assert late.modes.get(PROBE).mode is Mode.LEGACY
        assert "serving the default mode 'legacy'" in caplog.text
        assert (await client_late.get("/_gateway/routes")).json()["store"]["flags_from"] == (
            "default"
        )

        private_postgres.start()
        canary = Flag(Mode.CANARY, 10)
        await _change_when_back(two, canary)
        for gateway in (one, two, late):
            await eventually(lambda gateway=gateway: gateway.modes.get(PROBE) == canary)
        await eventually(lambda: store_up(one_metrics) == 1 and store_up(late_metrics) == 1)
        assert "flag store reachable again" in caplog.text
        history = (await client_late.get("/_gateway/history")).json()["history"]
        assert [h["new"]["mode"] for h in history] == ["canary", "async"]


async def _change_when_back(gateway, flag: Flag) -> None:
    sync = gateway.follower
    for _ in range(100):
        try:
            await sync.change(PROBE, flag.mode.value, flag.percent, actor="ops")
            return
        except Exception:
            await asyncio.sleep(0.2)
    raise AssertionError("the store did not come back")


def test_ten_second_outage_under_four_workers_loses_no_request(private_postgres):
    """As an operator would see it: `gateway serve --workers 4`, PostgreSQL stopped for 10 s."""
    from typer.testing import CliRunner

    from gateway.cli.commands import cli
    from gateway.testing import serve_in_subprocess

    env = {
        "GATEWAY_DATABASE_URL": private_postgres.url,
        "GATEWAY_ADMIN_TOKENS": f"ops={ADMIN_TOKEN}",
        "GATEWAY_POOL_SIZE": "2",
        "GATEWAY_LOG_LEVEL": "warning",  # the server's pipe is not drained while it runs
    }
    runner = CliRunner()
    app = "tests.apps.probe:create_probe_app"
    with serve_in_subprocess(
        app, env=env, workers=4, ready_path="/probe", ready_timeout=120
    ) as url:
        flip = ["flags", "set", PROBE, "async", "--url", url, "--token", ADMIN_TOKEN]
        assert runner.invoke(cli, flip).exit_code == 0
        workers = asyncio.run(
            implementations_by_pid(
                url, until=lambda s: len(s) == 4 and set(s.values()) == {"async"}
            )
        )

        private_postgres.stop()
        served: dict[int, str] = {}
        outage_ends = time.monotonic() + 10
        while time.monotonic() < outage_ends:
            # Every probe must answer 200 (implementations_by_pid raises otherwise).
            served.update(asyncio.run(implementations_by_pid(url, until=lambda s: bool(s))))
        assert set(served.values()) == {"async"}
        private_postgres.start()

        back = ["flags", "set", PROBE, "legacy", "--reason", "after outage", "--url", url]
        for _ in range(100):  # the first writes may still find the database starting
            result = runner.invoke(cli, [*back, "--token", ADMIN_TOKEN])
            if result.exit_code == 0:
                break
            time.sleep(0.2)
        assert result.exit_code == 0, result.output
        after = asyncio.run(
            implementations_by_pid(
                url,
                until=lambda s: set(workers) <= set(s) and all(s[p] == "legacy" for p in workers),
            )
        )
        assert {after[pid] for pid in workers} == {"legacy"}
