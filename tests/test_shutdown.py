"""Graceful shutdown of a real `gateway serve`: SIGTERM under load drops nothing in flight.

Requests that hold a database connection (pg_sleep) are in flight when SIGTERM arrives; every
one of them must complete with 200, new connections must be refused, the pools closed and
the process exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.testing import free_port, wait_until_ready
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

IN_FLIGHT = 16
SLEEP = 3.0  # seconds each request holds its connection: long enough to SIGTERM mid-flight


def sleeping(database: str) -> int:
    engine = create_engine(make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = :db AND query LIKE 'SELECT pg_sleep%'"
                ),
                {"db": database},
            ).scalar_one()
    finally:
        engine.dispose()


def connections(database: str) -> int:
    engine = create_engine(make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"),
                {"db": database},
            ).scalar_one()
    finally:
        engine.dispose()


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize(("mode", "workers"), [("legacy", 1), ("async", 2)])
def test_sigterm_under_load_drops_nothing_in_flight(postgres_url, mode, workers):
    database = make_url(postgres_url).database
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": postgres_url,
        "GATEWAY_DEFAULT_MODE": mode,
        "GATEWAY_POOL_SIZE": str(IN_FLIGHT + 4),
        "GATEWAY_WORKERS": str(workers),
    }
    command = [sys.executable, "-m", "gateway", "serve", "tests.apps.deploy:create_slow_app"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_until_ready(f"{url}/_gateway/live", server)

        def one_request() -> tuple[int, dict[str, str]]:
            with httpx.Client(timeout=60) as client:
                response = client.get(f"{url}/slow", params={"seconds": SLEEP})
                return response.status_code, response.json()

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            futures = [pool.submit(one_request) for _ in range(IN_FLIGHT)]

            def all_in_flight() -> bool:
                finished = [f.result() for f in futures if f.done()]
                assert not finished, f"requests finished before SIGTERM: {finished[:3]}"
                return sleeping(database) == IN_FLIGHT

            wait_for(all_in_flight, f"{IN_FLIGHT} requests in flight")
            server.send_signal(signal.SIGTERM)

            def refused() -> bool:
                try:
                    httpx.get(f"{url}/_gateway/live", timeout=1)
                except httpx.ConnectError:
                    return True
                except httpx.TransportError:
                    return False
                return False

            wait_for(refused, "new connections to be refused")
            still_running = sum(not f.done() for f in futures)
            results = [f.result() for f in futures]

        assert still_running > 0, "the listener closed only after the requests had finished"
        assert results == [(200, {"served_by": mode})] * IN_FLIGHT
        assert server.wait(timeout=60) == 0
        output = server.stdout.read().decode(errors="replace") if server.stdout else ""
        assert output.count("gateway stopped: pools closed") == workers, output[-3000:]
        assert connections(database) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()
