"""`gateway serve --workers 4` on a fresh PostgreSQL database, as a new user starts it.

All four workers prepare the schema at once (the lock in example.seed keeps them from
racing), the metrics add up over the workers, and a flip is followed by every worker.
"""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.apps.deploy import running_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TOKEN = "workers-test-token-0123456789"
REQUESTS = 40


def served(url: str, implementation: str) -> float:
    wanted = ('route="/users"', 'method="GET"', f'implementation="{implementation}"')
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{url}/metrics").text.splitlines()
        if line.startswith("gateway_requests_total{") and all(w in line for w in wanted)
    )


def served_eventually(url: str, implementation: str, wanted: float) -> float:
    """Workers add their batched counts every GATEWAY_LOOP_LAG_INTERVAL (0.25 s)."""
    deadline = time.monotonic() + 10
    while (found := served(url, implementation)) < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_four_workers_start_on_a_fresh_database_and_follow_a_flip(postgres_url):
    env = {
        "GATEWAY_DATABASE_URL": postgres_url,
        "GATEWAY_WORKERS": "4",
        "GATEWAY_ADMIN_TOKENS": f"ops={TOKEN}",
        "GATEWAY_POOL_SIZE": "3",
    }
    with running_server("example:create_app", env) as (url, process):
        with httpx.Client(base_url=url) as client:
            assert client.get("/_gateway/ready").json()["status"] == "ready"
            for _ in range(REQUESTS):
                assert client.get("/users", headers={"connection": "close"}).status_code == 200
            assert served_eventually(url, "legacy", REQUESTS) == REQUESTS
            flip = client.put(
                "/_gateway/routes/GET%20%2Fusers",
                json={"mode": "async", "reason": "workers test"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert flip.status_code == 200, flip.text
            # Every worker follows; each new connection may land on any of them.
            for _ in range(200):
                client.get("/users", headers={"connection": "close"})
                if served(url, "async") >= REQUESTS:
                    break
            time.sleep(0.5)  # two flush intervals: every request so far is counted
            before, async_before = served(url, "legacy"), served(url, "async")
            for _ in range(REQUESTS):
                assert client.get("/users", headers={"connection": "close"}).status_code == 200
            wanted = async_before + REQUESTS
            assert served_eventually(url, "async", wanted) == wanted
            assert served(url, "legacy") == before
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    assert output.count("gateway started") == 4, output[-3000:]
    assert output.count("route flipped") == 4, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
