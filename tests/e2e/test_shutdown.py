"""Graceful shutdown of a real `gateway serve`: SIGTERM under load drops nothing in flight.

Requests that hold a database connection (waiting for an advisory lock the test holds until
the listener has closed) are in flight when SIGTERM arrives; every
one of them must complete with 200, new connections must be refused once the drain is over,
the pools closed and the process exit 0. Under 500 keep-alive connections, with 1 and with 2
workers, no request sent before the signal goes unanswered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.testing import free_port, wait_until_ready
from tests.apps.load import Outcome, hammer, read_log, serving, wait_for_workers
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

IN_FLIGHT = 16
LOCK = 7305  # the advisory lock the test holds; each /slow request waits for it


def waiting(database: str) -> int:
    """Requests whose connection waits for the test's advisory lock."""
    engine = create_engine(make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                    "AND wait_event_type = 'Lock' AND query LIKE 'SELECT pg_advisory_xact_lock%'"
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


def wait_for(condition, what: str, timeout: float = 300.0) -> None:
    """Poll `condition` until it holds; the timeout only guards against a hang."""
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
        "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "1",  # the drain ends while the requests wait
    }
    command = [sys.executable, "-m", "gateway", "serve", "tests.apps.deploy:create_slow_app"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_ready(f"{url}/_gateway/live", server, 120, log=log)
            wait_for_workers(log, server, workers)

            def one_request() -> tuple[int, dict[str, str]]:
                with httpx.Client(timeout=None) as client:
                    response = client.get(f"{url}/slow", params={"lock": LOCK})
                    return response.status_code, response.json()

            # The requests hold their connections until the test lets go of the lock: in
            # flight when SIGTERM arrives and after the listener closes, however slow the
            # host is.
            holder = create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"))
            lock = holder.connect()
            lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK})
            with ThreadPoolExecutor(IN_FLIGHT) as pool:
                futures = [pool.submit(one_request) for _ in range(IN_FLIGHT)]

                def all_in_flight() -> bool:
                    finished = [f.result() for f in futures if f.done()]
                    assert not finished, f"requests finished before SIGTERM: {finished[:3]}"
                    return waiting(database) == IN_FLIGHT

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
                lock.close()  # lets the requests finish
                holder.dispose()
                results = [f.result() for f in futures]

            assert still_running == IN_FLIGHT, "requests finished while the lock was held"
            assert results == [(200, {"served_by": mode})] * IN_FLIGHT
            assert server.wait(timeout=60) == 0
            output = read_log(log)
            assert output.count("gateway stopped: pools closed") == workers, output[-3000:]
            assert connections(database) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()


LOAD_CONNECTIONS = 500
BURST = 100  # requests on fresh connections written just before the signal
DRAIN = 3.0  # seconds of GATEWAY_SHUTDOWN_DRAIN_SECONDS in the load test
SERVED_DRAINING = 1.5  # requests sent this soon after the signal are served too (< DRAIN)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_500_connections_loses_no_request_sent_before_it(postgres_url, workers):
    env = {
        "GATEWAY_DATABASE_URL": postgres_url,
        "GATEWAY_POOL_SIZE": "5",
        "GATEWAY_MAX_OVERFLOW": "5",
        "GATEWAY_SHUTDOWN_DRAIN_SECONDS": str(DRAIN),
        "GATEWAY_LOG_LEVEL": "info",
    }
    paths = ["/users/1", "/users/first", "/users"]
    with serving("example:create_app", env, workers=workers) as server:
        created = httpx.post(
            f"{server.url}/users", json={"name": "ada", "email": "ada@example.com"}, timeout=30
        )
        assert created.status_code == 201, created.text
        marks: dict[str, float] = {}
        readiness: list[int] = []

        burst: list[tuple[float, int | None]] = []

        outcomes: list[Outcome] = []

        def signal_under_load() -> None:
            wait_for(
                lambda: sum(o.status == 200 for o in outcomes) > 2 * LOAD_CONNECTIONS,
                "the load to get going",
            )
            # Requests on fresh connections, written just before the signal: most still
            # wait in the listen backlog (or unread in their socket) when it arrives.
            sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(BURST)]
            for sock in sockets:
                sock.sendall(b"GET /users/1 HTTP/1.1\r\nHost: gateway\r\n\r\n")
            marks["signal"] = time.monotonic()
            server.process.send_signal(signal.SIGTERM)

            def not_ready() -> bool:
                readiness.append(httpx.get(f"{server.url}/_gateway/ready", timeout=60).status_code)
                return readiness[-1] != 200

            # However late the server handles the signal, readiness turns 503 before the
            # listener closes; from then on the gateway is draining.
            wait_for(not_ready, "readiness to answer 503")
            marks["draining"] = time.monotonic()
            for sock in sockets:
                burst.append((marks["signal"], status_of(sock)))

        signaller = threading.Thread(target=signal_under_load)
        signaller.start()
        try:
            asyncio.run(
                hammer(
                    "127.0.0.1",
                    server.port,
                    paths,
                    connections=LOAD_CONNECTIONS,
                    stop=lambda: server.process.poll() is not None,
                    seconds=120,
                    outcomes=outcomes,
                )
            )
        finally:
            signaller.join(timeout=60)
        exit_code = server.process.wait(timeout=60)
        output = server.output()

    assert "signal" in marks, "SIGTERM was never sent"
    before = [o for o in outcomes if o.sent_at < marks["signal"]]
    before += [Outcome("/users/1 (burst)", sent, status=status) for sent, status in burst]
    unanswered = [o for o in before if o.status is None]
    after = [o for o in outcomes if o.sent_at >= marks["signal"]]
    # Well inside the drain the gateway still serves whatever arrives; only requests sent
    # near its end may meet the closing listener (a load balancer has stopped sending by then).
    draining = [o for o in after if o.sent_at < marks["signal"] + SERVED_DRAINING]
    print(
        f"\nSIGTERM figures ({workers} worker(s), {LOAD_CONNECTIONS} connections): "
        f"{len(before)} requests sent before the signal, {len(unanswered)} unanswered, "
        f"statuses {dict(Counter(o.status for o in before))}; after it: {len(after)} sent, "
        f"statuses {dict(Counter(o.status for o in after))}"
    )
    assert len(before) > LOAD_CONNECTIONS, "the load never got going"
    assert unanswered == [], [o.error for o in unanswered][:5]
    assert {o.status for o in before} == {200}, dict(Counter(o.status for o in before))
    assert draining and [o for o in draining if o.status is None] == [], [
        o.error for o in draining if o.status is None
    ][:5]
    # Requests read before the signal was handled may still keep their connection alive;
    # those sent once readiness said 503 are answered with "connection: close".
    settled = [o for o in after if o.sent_at > marks["draining"] and o.status is not None]
    assert settled and {o.headers.get("connection") for o in settled} == {"close"}
    assert readiness[-1] == 503 and set(readiness[:-1]) <= {200}, readiness
    assert exit_code == 0, output[-3000:]
    assert output.count("gateway stopped: pools closed") == workers, output[-3000:]
    assert output.count("draining: readiness answers 503") == workers, output[-3000:]


def status_of(sock: socket.socket) -> int | None:
    """The status of the one response on `sock`, or None when the server closed it unanswered."""
    sock.settimeout(60)
    received = b""
    try:
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            received += chunk
    except OSError:
        return None
    finally:
        sock.close()
    return int(received.split(b" ", 2)[1])
