"""The canary judge in one process: counts from real requests, decisions through the store."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway._compat import UTC
from gateway.flags.store import MemoryFlagStore
from gateway.settings import Settings
from tests.apps.canary import BROKEN, FINE, PLAIN, create_canary_gateway
from tests.apps.probe import ADMIN_TOKEN
from tests.conftest import started_client

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def canary_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_tokens": f"ops={ADMIN_TOKEN}",
        "pool_size": 2,
        "max_overflow": 2,
        "judge_interval": 60,  # the tests call tick() themselves, well before that
        "judge_min_requests": 20,
    }
    values.update(overrides)
    return Settings.from_environ({}, **values)


def path_of(key: str) -> str:
    return key.replace(" ", "%20").replace("/", "%2F").replace("{", "%7B").replace("}", "%7D")


async def traffic(client, path: str, count: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    for item in range(count):
        response = await client.get(f"{path}/{item}", headers={"x-user-id": f"u{item}"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


@pytest.mark.anyio
async def test_a_broken_twin_is_rolled_back_by_the_judge_and_a_fine_one_stays(database_url):
    gateway = create_canary_gateway(canary_settings(database_url))
    app = gateway.build()
    async for client in started_client(app):
        for key in (BROKEN, FINE):
            response = await client.put(
                f"/_gateway/routes/{path_of(key)}",
                json={"mode": "canary", "percent": 50, "reason": "try async"},
                headers=AUTH,
            )
            assert response.status_code == 200, response.text
        judge = gateway.judge
        assert judge is not None
        rounds = 0
        while gateway.modes.get(BROKEN).mode.value == "canary":
            rounds += 1
            if rounds > 20:
                raise AssertionError(f"never rolled back: {judge.states[BROKEN]}")
            await traffic(client, "/broken", 60)
            await traffic(client, "/fine", 60)
            await judge.tick()
        assert gateway.modes.get(FINE).describe() == "canary 50%"
        history = (await client.get("/_gateway/history", params={"route": BROKEN})).json()
        newest = history["history"][0]
        assert newest["by"] == "judge"
        assert newest["new"]["mode"] == "legacy"
        assert "async is worse on 5xx" in newest["reason"]
        assert "e-value" in newest["reason"] and "threshold" in newest["reason"]
        routes = (await client.get("/_gateway/routes")).json()["routes"]
        shown = {row["key"]: row["canary"] for row in routes}
        assert shown[BROKEN]["status"] == "rolled back"
        assert shown[FINE]["status"] == "judged"
        assert shown[FINE]["note"].startswith("no regression found")
        decided = gateway.registry.get_sample_value(
            "gateway_judge_decisions_total", {"route": BROKEN, "decision": "rollback"}
        )
        assert decided == 1


@pytest.mark.anyio
async def test_judge_false_in_the_flip_leaves_the_canary_alone(sqlite_url):
    gateway = create_canary_gateway(canary_settings(sqlite_url), store=MemoryFlagStore())
    app = gateway.build()
    async for client in started_client(app):
        response = await client.put(
            f"/_gateway/routes/{path_of(BROKEN)}",
            json={"mode": "canary", "percent": 50, "judge": False},
            headers=AUTH,
        )
        assert response.status_code == 200, response.text
        for _ in range(5):
            await traffic(client, "/broken", 60)
            await gateway.judge.tick()
        assert gateway.modes.get(BROKEN).describe() == "canary 50%"
        assert gateway.judge.states[BROKEN].status == "off"
        refused = await client.put(
            f"/_gateway/routes/{path_of(BROKEN)}", json={"mode": "canary", "percent": 5,
            "judge": "no"}, headers=AUTH,
        )  # fmt: skip
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "judge"]


@pytest.mark.anyio
async def test_a_rollout_walks_a_fine_twin_to_async_and_records_each_step(database_url):
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    gateway = create_canary_gateway(canary_settings(database_url))
    app = gateway.build()
    gateway.judge.clock = lambda: now[0]
    async for client in started_client(app):
        response = await client.put(
            f"/_gateway/rollouts/{path_of(PLAIN)}",
            json={"steps": "10,50,100", "hold": "1m", "reason": "ship it"},
            headers=AUTH,
        )
        assert response.status_code == 200, response.text
        assert gateway.modes.get(PLAIN).describe() == "canary 10%"
        await traffic(client, "/plain", 100)
        await gateway.judge.tick()
        state = gateway.judge.states[PLAIN]
        assert state.step == 0
        assert "waiting" in state.note and "held 0s of 1m" in state.note
        seen = []
        for _ in range(10):
            now[0] += timedelta(seconds=61)
            await traffic(client, "/plain", 300)
            await gateway.judge.tick()
            seen.append(gateway.modes.get(PLAIN).describe())
            if seen[-1] == "async":
                break
        assert seen[-1] == "async", seen
        assert "canary 50%" in seen
        history = (await client.get("/_gateway/history", params={"route": PLAIN})).json()
        reasons = [(h["by"], h["new"]["mode"], h["reason"]) for h in history["history"]]
        assert reasons[0][:2] == ("judge", "async")
        assert reasons[0][2].startswith("rollout step 3/3")
        assert reasons[-1][0] == "ops" and reasons[-1][2].startswith("rollout step 1/3")
        assert gateway.judge.states[PLAIN].status == "done"
        bad = await client.put(
            f"/_gateway/rollouts/{path_of(PLAIN)}", json={"steps": [5, 1, 100], "hold": 60},
            headers=AUTH,
        )  # fmt: skip
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "steps"]
