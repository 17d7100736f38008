"""The admin API on GATEWAY_ADMIN_PORT, and flips applied off the event loop.

End to end with `gateway serve --workers 2`: the admin port, held by the supervisor, flips
every worker, refuses what the main port refuses, and serves the CLI. In-process: while
the test holds the event loop, the flag listener thread applies another process's flip,
and the admin port takes a flip; the judge's tally takes a change made on another thread
on its own loop; the admin loop's one-trip change stores and notifies what the usual one
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from bench.procstat import parse_stat_parent
from gateway import Settings
from gateway.admin.listener import bind_shared
from gateway.canary.judge import Tally
from gateway.cli.commands import cli
from gateway.exceptions import SettingsError
from gateway.flags.follower import FlagFollower
from gateway.flags.store import MemoryFlagStore, SqlFlagStore, StoredFlag
from gateway.flags.table import Flag, ModeTable
from gateway.modes import Implementation, Mode
from gateway.testing import free_port, serve_in_subprocess
from tests.apps.probe import ADMIN_TOKEN, PROBE, create_probe_gateway, probe_settings
from tests.apps.probe import implementations_by_pid as by_pid
from tests.conftest import started_client

APP = "tests.apps.probe:create_probe_app"
ROUTE = "/_gateway/routes/GET%20%2Fprobe"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HANG = 60.0  # seconds: only stops a hang, never decides a result


def test_admin_port_is_off_unless_set():
    assert Settings.from_environ({}).admin_port is None
    assert Settings.from_environ({"GATEWAY_ADMIN_PORT": ""}).admin_port is None
    settings = Settings.from_environ({"GATEWAY_ADMIN_PORT": "8001"})
    assert (settings.admin_port, settings.admin_host) == (8001, "127.0.0.1")
    with pytest.raises(SettingsError, match="GATEWAY_ADMIN_PORT='0' is invalid"):
        Settings.from_environ({"GATEWAY_ADMIN_PORT": "0"})


def test_workers_share_the_port_but_another_program_is_refused_by_name():
    port = free_port()
    first, second = bind_shared("127.0.0.1", port), bind_shared("127.0.0.1", port)
    first.close(), second.close()
    with socket.socket() as other:  # a program without SO_REUSEPORT
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(SettingsError) as caught:
            bind_shared("127.0.0.1", port)
    message = str(caught.value)
    assert f"GATEWAY_ADMIN_PORT={port}" in message
    assert "already in use" in message


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + HANG
    while True:
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_taken_admin_port_stops_gateway_serve_before_its_workers_start(tmp_path):
    with socket.socket() as other:  # another program holds the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {**os.environ, "GATEWAY_ADMIN_PORT": str(port),
               "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db"}  # fmt: skip
        served = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", APP, "--workers", "2",
             "--port", str(free_port())],
            env=env, capture_output=True, text=True, timeout=HANG,
        )  # fmt: skip
    assert served.returncode == 1
    assert served.stderr.strip().splitlines()[-1] == (
        f"gateway: GATEWAY_ADMIN_PORT={port}: port {port} on 127.0.0.1 is already in use by "
        "another program (or by this server's main port); choose a free port for the admin "
        "listener, or unset GATEWAY_ADMIN_PORT."
    )
    assert "Started parent process" not in served.stderr  # no worker was started


def _listening_on(port: int) -> set[int]:
    """The pids holding a listening TCP socket on `port` (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                holders.add(int(fd.parent.parent.name))
    return holders


def _parents_of(pids: set[int]) -> set[int]:
    return {parse_stat_parent(Path(f"/proc/{pid}/stat").read_text()) for pid in pids}


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_serve_the_admin_api_on_the_admin_port(postgres_url):
    port = free_port()
    env = {
        "GATEWAY_DATABASE_URL": postgres_url,
        "GATEWAY_ADMIN_TOKENS": f"ops={ADMIN_TOKEN}",
        "GATEWAY_ADMIN_PORT": str(port),
        "GATEWAY_POOL_SIZE": "2",
        "GATEWAY_MAX_OVERFLOW": "2",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    with serve_in_subprocess(APP, env=env, workers=2, ready_timeout=120) as url:
        admin = f"http://127.0.0.1:{port}"
        _wait_for(f"{admin}/_gateway/routes")
        before = asyncio.run(by_pid(url, until=lambda seen: len(seen) == 2))

        def everywhere(mode: str) -> None:
            asyncio.run(
                by_pid(url, until=lambda s: set(before) <= set(s) and set(s.values()) == {mode})
            )

        flip = httpx.put(f"{admin}{ROUTE}", json={"mode": "async"}, headers=AUTH, timeout=30)
        assert flip.status_code == 200, flip.text
        assert flip.json()["new"] == {"mode": "async", "percent": 100.0}
        everywhere("async")

        # Refused exactly as on the main port, and nothing recorded.
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            answers = [
                httpx.put(f"{base}{ROUTE}", json={"mode": "legacy"}, headers=headers, timeout=30)
                for base in (url, admin)
            ]
            assert answers[0].status_code in (401, 403)
            assert [a.status_code for a in answers] == [answers[0].status_code] * 2
            assert answers[1].json() == answers[0].json()
            assert answers[1].headers.get("www-authenticate") == answers[0].headers.get(
                "www-authenticate"
            )

        routes = httpx.get(f"{admin}/_gateway/routes", timeout=30).json()
        probe = next(row for row in routes["routes"] if row["key"] == PROBE)
        assert (probe["mode"], routes["store"]["up"]) == ("async", True)
        history = httpx.get(f"{admin}/_gateway/history", timeout=30).json()["history"]
        assert [row["new"]["mode"] for row in history] == ["async"]
        # The rest of the prefix is answered by the app's own loop; nothing else opens.
        assert httpx.get(f"{admin}/_gateway/live", timeout=30).status_code == 200
        assert httpx.get(f"{admin}/probe", timeout=30).status_code == 404
        assert httpx.get(f"{admin}/metrics", timeout=30).status_code == 404

        # One process holds the admin port: the supervisor (this test's child), not a worker.
        assert _parents_of(_listening_on(port)) == {os.getpid()}

        # The main port still serves the admin API.
        back = httpx.put(f"{url}{ROUTE}", json={"mode": "legacy"}, headers=AUTH, timeout=30)
        assert back.status_code == 200, back.text
        everywhere("legacy")

        result = CliRunner().invoke(
            cli, ["flags", "set", PROBE, "canary", "--percent", "100", "--url", admin],
            env={"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "legacy -> canary 100%" in result.output
        everywhere("async")  # canary 100 %: every key is served by async


@pytest.mark.anyio
@pytest.mark.postgres
async def test_the_listener_thread_applies_a_flip_while_the_loop_is_held(postgres_url):
    gateway = create_probe_gateway(probe_settings(postgres_url, judge=False, metrics=False))
    app = gateway.build()
    applied: list[tuple[Flag, int]] = []
    heard = threading.Event()

    def changed(key: str, _old: Flag, new: Flag) -> None:
        applied.append((new, threading.get_ident()))
        heard.set()

    gateway.modes.on_change(changed)
    async for _client in started_client(app):
        loop_thread = threading.get_ident()
        # From here until the check the loop runs nothing else: the test holds it.
        subprocess.run(
            [sys.executable, "-m", "gateway", "flags", "set", PROBE, "async",
             "--database-url", postgres_url],
            check=True, capture_output=True, timeout=HANG,
        )  # fmt: skip
        assert heard.wait(HANG), "the flip was not applied while the loop was held"
        assert applied == [(Flag(Mode.ASYNC, 100), applied[0][1])]
        assert applied[0][1] != loop_thread
        assert gateway.modes.get(PROBE) == Flag(Mode.ASYNC, 100)


@pytest.mark.anyio
@pytest.mark.postgres
async def test_the_admin_port_takes_a_flip_while_the_loop_is_held(postgres_url):
    port = free_port()
    settings = probe_settings(postgres_url, metrics=False, admin_port=port)
    gateway = create_probe_gateway(settings)
    app = gateway.build()
    heard = threading.Event()
    gateway.modes.on_change(lambda key, old, new: heard.set())
    answers: list[httpx.Response] = []

    def operator() -> None:
        admin = f"http://127.0.0.1:{port}{ROUTE}"
        answers.append(httpx.put(admin, json={"mode": "async"}, headers=AUTH, timeout=HANG))

    async for _client in started_client(app):
        sender = threading.Thread(target=operator)
        sender.start()
        # The loop is held: the flip is stored and applied on the admin listener's loop.
        assert heard.wait(HANG), "the admin port's flip was not applied while the loop was held"
        assert gateway.modes.get(PROBE) == Flag(Mode.ASYNC, 100)
        assert not answers  # its answer waits for the judge, on the loop
        while sender.is_alive():  # let the loop run the judge's part of the flip
            await asyncio.sleep(0.01)
        assert answers[0].status_code == 200, answers[0].text
        assert answers[0].json()["new"]["mode"] == "async"


@pytest.mark.anyio
@pytest.mark.postgres
async def test_the_admin_loops_one_trip_change_stores_and_notifies_as_change_does(postgres_url):
    one_trip = SqlFlagStore(postgres_url, one_trip_changes=True)
    usual = SqlFlagStore(postgres_url)
    heard: list[str] = []
    ready, stop = threading.Event(), threading.Event()
    listener = threading.Thread(target=usual.listen, args=(heard.append, ready.set, stop))
    try:
        await usual.prepare()
        listener.start()
        assert ready.wait(HANG)
        default = Flag(Mode.LEGACY)
        first = await one_trip.change(
            PROBE, Flag(Mode.CANARY, 10), actor="ops", reason="try", default=default
        )
        second = await usual.change(
            PROBE, Flag(Mode.ASYNC, 100), actor="bot", reason="", default=default
        )
        third = await one_trip.change(
            PROBE, Flag(Mode.LEGACY), actor="ops", reason="back", default=default
        )
        assert (first.old, first.new) == (default, Flag(Mode.CANARY, 10))
        assert third.old == Flag(Mode.ASYNC, 100)
        assert first.id < second.id < third.id
        assert (await usual.load())[PROBE] == StoredFlag(Flag(Mode.LEGACY), third.id)
        rows = await usual.history(route=PROBE)
        assert [row.as_dict() for row in rows] == [
            change.as_dict() for change in (third, second, first)
        ]
        deadline = time.monotonic() + HANG
        while len(heard) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        payloads = [json.loads(payload) for payload in heard]
        assert [(p["key"], p["mode"], float(p["percent"]), p["v"]) for p in payloads] == [
            (PROBE, "canary", 10.0, first.id),
            (PROBE, "async", 100.0, second.id),
            (PROBE, "legacy", 0.0, third.id),
        ]
    finally:
        stop.set()
        if listener.is_alive():
            listener.join()
        await one_trip.aclose()
        await usual.aclose()


@pytest.mark.anyio
async def test_a_change_applied_on_another_thread_reaches_the_judge_on_its_loop():
    both = [Implementation.LEGACY, Implementation.ASYNC]
    follower = FlagFollower(
        MemoryFlagStore(), ModeTable([PROBE]), {PROBE: both}, registry=CollectorRegistry()
    )
    tally = Tally(follower)
    tally.follow()  # on this loop
    canary, legacy = Flag(Mode.CANARY, 10), Flag(Mode.LEGACY)

    def apply(flag: Flag, version: int) -> None:
        worker = threading.Thread(target=follower.apply, args=(PROBE, flag, version, "notify"))
        worker.start()
        worker.join()

    apply(canary, 5)
    assert PROBE not in tally._canary  # the loop has not run since: the tally hops to it
    await asyncio.sleep(0)
    assert PROBE in tally._canary
    # A hop overtaken by a newer change made on the loop itself is dropped.
    apply(legacy, 6)
    follower.apply(PROBE, canary, 7, "local")
    await asyncio.sleep(0)
    assert PROBE in tally._canary
    assert tally._tags[PROBE] == 7
