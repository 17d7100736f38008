"""The admin API in-process, on SQLite and on PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from gateway.flags.table import Flag, choose
from gateway.modes import Mode
from tests.apps.probe import ADMIN_TOKEN, OTHER, OTHER_TOKEN, PROBE, create_probe_gateway
from tests.apps.probe import probe_settings as make_settings
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def url(key: str) -> str:
    return f"/_gateway/routes/{quote(key, safe='')}"


async def start(database_url: str, **overrides):
    gateway = create_probe_gateway(make_settings(database_url, **overrides))
    gateway.build()
    return gateway


@pytest.fixture
async def gateway(database_url):
    return await start(database_url)


@pytest.fixture
async def client(gateway):
    async for client in started_client(gateway.app):
        yield client


async def assert_nothing_recorded(client, gateway):
    assert (await client.get("/_gateway/history")).json() == {"history": []}
    assert {k: f.mode for k, f in gateway.modes.snapshot().items()} == {
        PROBE: Mode.LEGACY,
        OTHER: Mode.LEGACY,
    }
    assert await gateway_store(gateway).load() == {}


def gateway_store(gateway):
    return gateway.follower.store


async def test_routes_lists_implementations_and_modes(client):
    body = (await client.get("/_gateway/routes")).json()
    rows = {row["key"]: row for row in body["routes"]}
    assert rows[PROBE]["implementations"] == ["legacy", "async"]
    assert (rows[PROBE]["mode"], rows[PROBE]["percent"]) == ("legacy", 0.0)
    assert rows["GET /legacy-only"]["paired"] is False
    assert (rows["GET /async-only"]["mode"], rows["GET /async-only"]["percent"]) == ("async", None)
    assert body["store"]["up"] is True
    assert body["store"]["flags_from"] == "store"


async def test_put_changes_the_route_and_records_who_and_why(client, gateway):
    response = await client.put(
        url(PROBE), json={"mode": "async", "reason": "p99 looks good"}, headers=AUTH
    )
    assert response.status_code == 200
    change = response.json()
    assert change["route"] == PROBE
    assert change["by"] == "ops"
    assert change["old"] == {"mode": "legacy", "percent": 0.0}
    assert change["new"] == {"mode": "async", "percent": 100.0}
    assert (await client.get("/probe")).json()["implementation"] == "async"

    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    await client.put(url(OTHER), json={"mode": "canary", "percent": 25}, headers=other)
    history = (await client.get("/_gateway/history")).json()["history"]
    assert [(h["route"], h["by"], h["new"]["mode"]) for h in history] == [
        (OTHER, "bot", "canary"),
        (PROBE, "ops", "async"),
    ]
    assert history[1]["reason"] == "p99 looks good"
    only = (await client.get("/_gateway/history", params={"route": PROBE})).json()["history"]
    assert [h["route"] for h in only] == [PROBE]
    limited = (await client.get("/_gateway/history", params={"limit": 1})).json()["history"]
    assert [h["route"] for h in limited] == [OTHER]
    rows = {r["key"]: r for r in (await client.get("/_gateway/routes")).json()["routes"]}
    assert (rows[OTHER]["mode"], rows[OTHER]["percent"]) == ("canary", 25.0)


async def test_without_a_configured_token_writes_are_403_and_record_nothing(database_url):
    gateway = await start(database_url, admin_tokens="")
    async for client in started_client(gateway.app):
        response = await client.put(url(PROBE), json={"mode": "async"}, headers=AUTH)
        assert response.status_code == 403
        detail = response.json()["detail"]
        assert "no admin token is configured" in detail
        assert "GATEWAY_ADMIN_TOKENS" in detail
        await assert_nothing_recorded(client, gateway)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    ],
    ids=["missing", "wrong", "not-bearer", "longer"],
)
async def test_missing_or_wrong_token_is_401_and_records_nothing(client, gateway, headers, caplog):
    response = await client.put(url(PROBE), json={"mode": "async"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert ADMIN_TOKEN not in response.text
    await assert_nothing_recorded(client, gateway)
    assert ADMIN_TOKEN not in caplog.text


async def test_unknown_route_is_404_with_the_closest_keys(client, gateway):
    response = await client.put(url("GET /prob"), json={"mode": "async"}, headers=AUTH)
    assert response.status_code == 404
    assert response.json()["suggestions"][0] == PROBE
    assert "Did you mean 'GET /probe'" in response.json()["detail"]
    await assert_nothing_recorded(client, gateway)


@pytest.mark.parametrize(
    ("key", "body", "loc", "words"),
    [
        (PROBE, {"mode": "fast"}, ["body", "mode"], "expected one of legacy, async, canary"),
        (PROBE, {"mode": "shadow", "percent": 101}, ["body", "percent"], "expected 0 to 100"),
        (PROBE, {"mode": "canary", "percent": 101}, ["body", "percent"], "expected 0 to 100"),
        (PROBE, {"mode": "canary"}, ["body", "percent"], "needs percent"),
        (PROBE, {"mode": "legacy", "percent": 5}, ["body", "percent"], "does not go with"),
        (PROBE, {"mode": "async", "percent": "x"}, ["body", "percent"], "valid number"),
        (PROBE, {"mode": "async", "extra": 1}, ["body", "extra"], "Extra inputs"),
        (PROBE, {}, ["body", "mode"], "Field required"),
        ("GET /legacy-only", {"mode": "async"}, ["path", "route_key"], "only a legacy"),
        ("GET /async-only", {"mode": "legacy"}, ["path", "route_key"], "only an async"),
    ],
)
async def test_bad_changes_are_422_naming_the_field(client, gateway, key, body, loc, words):
    response = await client.put(url(key), json=body, headers=AUTH)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors[0]["loc"] == loc
    assert words in errors[0]["msg"]
    await assert_nothing_recorded(client, gateway)


async def test_reads_can_require_a_token(database_url):
    gateway = await start(database_url, admin_read_requires_token=True)
    async for client in started_client(gateway.app):
        assert (await client.get("/_gateway/routes")).status_code == 401
        assert (await client.get("/_gateway/history")).status_code == 401
        assert (await client.get("/_gateway/routes", headers=AUTH)).status_code == 200
        assert (await client.get("/_gateway/history", headers=AUTH)).status_code == 200


async def test_canary_ten_percent_by_request_key_is_sticky(client):
    response = await client.put(url(PROBE), json={"mode": "canary", "percent": 10}, headers=AUTH)
    assert response.status_code == 200
    flag = Flag(Mode.CANARY, 10)
    served = {}
    for i in range(400):
        user = f"user-{i}"
        body = (await client.get("/probe", headers={"x-user-id": user})).json()
        served[user] = body["implementation"]
        assert served[user] == choose(flag, salt=PROBE, request_key=user).value
    share = list(served.values()).count("async") / len(served)
    assert 0.06 <= share <= 0.14
    for user in list(served)[:50]:
        again = (await client.get("/probe", headers={"x-user-id": user})).json()
        assert again["implementation"] == served[user]
