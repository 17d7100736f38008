"""Wrong admin tokens by client: the pure throttle on a fake clock, then through the app."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from urllib.parse import quote

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.admin.throttle import AdminThrottle, Tally
from tests.apps.probe import ADMIN_TOKEN, PROBE, create_probe_gateway, probe_settings

LIMIT = 5
WINDOW = 60.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> AdminThrottle:
    return AdminThrottle(LIMIT, WINDOW, max_clients=100, now=clock)


def fail(throttle: AdminThrottle, client: str, times: int) -> None:
    for _ in range(times):
        if throttle.blocked_for(client) is not None:
            raise AssertionError(f"{client} blocked before {times} wrong tokens")
        throttle.refused(client, wrong_token=True)


def test_the_limit_passes_and_the_next_attempt_waits_for_the_window(throttle, clock):
    fail(throttle, "1.2.3.4", LIMIT - 1)
    assert throttle.blocked_for("1.2.3.4") is None
    fail(throttle, "1.2.3.4", 1)
    clock.now += 12.5
    assert throttle.blocked_for("1.2.3.4") == 48  # 47.5 s left, rounded up
    clock.now += 47.4
    assert throttle.blocked_for("1.2.3.4") == 1
    clock.now += 0.1
    assert throttle.blocked_for("1.2.3.4") is None


def test_the_window_opens_at_the_first_refusal_and_closes_whole(throttle, clock):
    fail(throttle, "1.2.3.4", LIMIT - 1)
    clock.now += WINDOW
    fail(throttle, "1.2.3.4", LIMIT)  # a new window: the old refusals are gone
    assert throttle.blocked_for("1.2.3.4") == WINDOW


def test_missing_tokens_are_counted_but_never_block(throttle):
    for _ in range(LIMIT * 10):
        throttle.refused("1.2.3.4", wrong_token=False)
    assert throttle.blocked_for("1.2.3.4") is None


def test_other_clients_are_unaffected(throttle, clock):
    fail(throttle, "1.2.3.4", LIMIT)
    assert throttle.blocked_for("1.2.3.4") is not None
    assert throttle.blocked_for("5.6.7.8") is None
    fail(throttle, "5.6.7.8", LIMIT - 1)
    assert throttle.blocked_for("5.6.7.8") is None


def test_only_the_refusal_that_opens_a_window_is_reported_with_the_last_tally(throttle, clock):
    first = throttle.refused("1.2.3.4", wrong_token=True)
    assert first is not None and first.previous is None
    assert "further refusals from 1.2.3.4 for 60 s are counted" in first.summary()
    fail(throttle, "1.2.3.4", LIMIT - 1)
    throttle.refused("1.2.3.4", wrong_token=False)
    for _ in range(3):
        assert throttle.blocked_for("1.2.3.4") is not None
    assert throttle.refused("1.2.3.4", wrong_token=True) is None
    clock.now += WINDOW
    second = throttle.refused("1.2.3.4", wrong_token=True)
    assert second is not None
    assert second.previous == Tally(wrong=LIMIT + 1, missing=1, throttled=3)
    assert "previous 60 s: 6 wrong tokens, 1 without a token, 3 answered 429" in second.summary()
    # A client back after more than a window of silence starts afresh.
    clock.now += 3 * WINDOW
    again = throttle.refused("1.2.3.4", wrong_token=True)
    assert again is not None and again.previous is None


def test_memory_is_bounded_by_evicting_the_oldest_and_the_long_closed(throttle, clock):
    for number in range(250):
        clock.now += 0.01
        throttle.refused(f"10.0.{number // 256}.{number % 256}", wrong_token=True)
    assert throttle.tracked == 100
    clock.now += 2 * WINDOW
    throttle.refused("1.2.3.4", wrong_token=True)
    assert throttle.tracked == 1


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"limit": 0}, "limit=0: expected at least 1"),
        ({"window": 0.0}, "window=0.0: expected a number of seconds above 0"),
        ({"max_clients": 0}, "max_clients=0: expected at least 1"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(arguments, words):
    with pytest.raises(ValueError, match=words):
        AdminThrottle(**arguments)


URL = f"/_gateway/routes/{quote(PROBE, safe='')}"
WRONG = "wrong-token-0123456789"


@pytest.mark.anyio
async def test_through_the_app_wrong_tokens_are_slowed_and_logged_once(sqlite_url, caplog):
    clock = Clock()
    gateway = create_probe_gateway(
        probe_settings(sqlite_url), throttle=AdminThrottle(LIMIT, WINDOW, now=clock)
    )
    app = gateway.build()
    caplog.set_level(logging.WARNING, logger="gateway.auth")
    async with AsyncExitStack() as stack:
        manager = await stack.enter_async_context(
            LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
        )

        async def client(host: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=manager.app, client=(host, 4321))
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://test")
            )

        attacker, operator = await client("203.0.113.7"), await client("198.51.100.2")
        bad = {"Authorization": f"Bearer {WRONG}"}
        good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        flip = {"mode": "async"}

        answers = [await attacker.put(URL, json=flip, headers=bad) for _ in range(LIMIT + 30)]
        assert [a.status_code for a in answers] == [401] * LIMIT + [429] * 30
        assert answers[0].json()["detail"].startswith("Invalid bearer token")
        assert answers[0].headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert answers[-1].headers["retry-after"] == "60"
        assert "203.0.113.7" in answers[-1].json()["detail"]
        # The one blocked gets 429 even with the right token; anyone else is served at once.
        assert (await attacker.put(URL, json=flip, headers=good)).status_code == 429
        assert (await operator.put(URL, json=flip, headers=good)).status_code == 200
        assert (await operator.get("/probe")).json()["implementation"] == "async"

        clock.now += 30
        assert (await attacker.get("/_gateway/routes")).status_code == 200  # reads are open
        blocked = await attacker.put(URL, json=flip, headers=bad)
        assert (blocked.status_code, blocked.headers["retry-after"]) == (429, "30")
        assert len(caplog.records) == 1
        clock.now += 30
        assert (await attacker.put(URL, json=flip, headers=good)).status_code == 200
        assert (await attacker.put(URL, json=flip, headers=bad)).status_code == 401

    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2  # one per window of the attacker, none for the operator
    assert all("from 203.0.113.7" in line for line in lines)
    assert "previous 60 s: 5 wrong tokens, 0 without a token, 32 answered 429" in lines[1]
    assert not any(WRONG in line or ADMIN_TOKEN in line for line in lines)
