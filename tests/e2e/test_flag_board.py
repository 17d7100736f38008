"""The flag board of `gateway serve --workers N` and the supervisor's relay that fills it.

The board: a table posted whole and read whole, never half-written; refused when too big or
not a board. A worker: serves the board's flag from its next request, moves only forward by
version, and carries on without the board when it cannot be read. The relay: posts what the
store says (SQLite polling, PostgreSQL LISTEN) and what its own admin port flips, answers the
rest of the admin API from the main port (or a 502 naming it). End to end the workers of
`gateway serve --workers 2` share the supervisor's admin port (tests/e2e/test_admin_listener.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from starlette.types import Message

from gateway._process.workers import ADMIN_IN_SUPERVISOR_ENV
from gateway.flags.board import BOARD_ENV, BoardWatch, FlagBoard
from gateway.flags.store import MemoryFlagStore, SqlFlagStore
from gateway.flags.table import Flag
from gateway.modes import Mode
from gateway.serve.relay import MainPortForwarder, relaying
from gateway.serve.server import main_port_url
from gateway.testing import free_port
from tests.apps.probe import ADMIN_TOKEN, PROBE, create_probe_gateway, probe_settings
from tests.conftest import started_client

HANG = 60.0  # seconds: only stops a hang, never decides a result
CANARY = Flag(Mode.CANARY, 25.0)
ASYNC = Flag(Mode.ASYNC, 100.0)
LEGACY = Flag(Mode.LEGACY, 0.0)


def test_a_board_holds_the_whole_table_and_counts_its_posts(tmp_path: Path):
    board = FlagBoard.create(str(tmp_path / "board"), [PROBE, "GET /other"])
    reader = FlagBoard.open(board.path)
    assert reader.read() == (0, {})
    assert board.publish({PROBE: (CANARY, 3)}) == 2
    assert reader.read() == (2, {PROBE: (CANARY, 3)})
    assert board.publish({PROBE: (ASYNC, 4), "GET /other": (LEGACY, 1)}) == 4
    assert reader.seq == 4
    assert reader.read() == (4, {PROBE: (ASYNC, 4), "GET /other": (LEGACY, 1)})
    assert (tmp_path / "board").stat().st_mode & 0o777 == 0o600
    reader.close()
    board.close()


def test_a_reader_never_sees_a_half_written_table(tmp_path: Path):
    keys = [f"GET /route/{i}" for i in range(50)]
    board = FlagBoard.create(str(tmp_path / "board"), keys)
    reader = FlagBoard.open(board.path)
    small = {keys[0]: (CANARY, 1)}
    large = {key: (ASYNC, 10**9 + i) for i, key in enumerate(keys)}
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            board.publish(small)
            board.publish(large)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = [reader.read() for _ in range(3000)]
    finally:
        stop.set()
        thread.join()
    assert all(table in (small, large) for _, table in seen)
    assert all(seq % 2 == 0 for seq, _ in seen)
    assert [seq for seq, _ in seen] == sorted(seq for seq, _ in seen)
    reader.close()
    board.close()


def test_a_table_larger_than_the_board_is_refused_by_size(tmp_path: Path):
    board = FlagBoard.create(str(tmp_path / "board"), [PROBE])
    too_many = {f"GET /{'x' * 200}/{i}": (CANARY, i) for i in range(100)}
    with pytest.raises(ValueError, match=r"the flag table is \d+ bytes; the board at .* holds"):
        board.publish(too_many)
    assert board.seq == 0  # nothing was half-posted
    board.close()


def test_a_file_that_is_not_a_board_is_refused(tmp_path: Path):
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(ValueError, match=r"is 3 bytes: not a flag board \(expected at least 16"):
        FlagBoard.open(str(short))


def test_a_watch_reads_the_board_only_when_it_moved(tmp_path: Path):
    board = FlagBoard.create(str(tmp_path / "board"), [PROBE])
    applied: list[tuple[str, Flag, int, str]] = []
    watch = BoardWatch(FlagBoard.open(board.path), lambda *args: applied.append(args) or True)
    watch.check()
    assert applied == []
    board.publish({PROBE: (CANARY, 7)})
    watch.check()
    watch.check()
    assert applied == [(PROBE, CANARY, 7, "board")]
    board.close()


@pytest.mark.anyio
async def test_a_worker_serves_the_boards_flag_from_its_next_request(tmp_path, monkeypatch):
    board = FlagBoard.create(str(tmp_path / "board"), [PROBE])
    monkeypatch.setenv(BOARD_ENV, board.path)
    settings = probe_settings(f"sqlite:///{tmp_path}/db.sqlite", metrics=False, judge=False)
    gateway = create_probe_gateway(settings, store=MemoryFlagStore())
    app = gateway.build()

    async for client in started_client(app):

        async def served(client: httpx.AsyncClient = client) -> str:
            return str((await client.get("/probe")).json()["implementation"])

        assert await served() == "legacy"
        board.publish({PROBE: (ASYNC, 5)})  # no store, no listener: only the board says so
        assert gateway.modes.get(PROBE) == LEGACY  # nothing applies it before a request
        assert await served() == "async"
        board.publish({PROBE: (LEGACY, 3)})  # older than what the worker has: ignored
        assert await served() == "async"
        board.publish({PROBE: (LEGACY, 6)})
        assert await served() == "legacy"
        assert gateway.follower is not None and gateway.follower.versions[PROBE] == 6
    board.close()


@pytest.mark.anyio
async def test_a_board_that_cannot_be_read_leaves_the_worker_on_its_listener(
    tmp_path, monkeypatch, caplog
):
    missing = tmp_path / "no-board"
    monkeypatch.setenv(BOARD_ENV, str(missing))
    settings = probe_settings(f"sqlite:///{tmp_path}/db.sqlite", metrics=False, judge=False)
    gateway = create_probe_gateway(settings, store=MemoryFlagStore())
    with caplog.at_level(logging.WARNING, logger="gateway"):
        app = gateway.build()
    assert f"{BOARD_ENV}={missing}: cannot read the flag board" in caplog.text
    async for client in started_client(app):
        assert (await client.get("/probe")).json()["implementation"] == "legacy"
        await gateway.follower.change(PROBE, "async", None, actor="test")
        assert (await client.get("/probe")).json()["implementation"] == "async"


def _posted(board: FlagBoard, flag: Flag) -> dict[str, tuple[Flag, int]]:
    deadline = time.monotonic() + HANG
    while True:
        _, table = board.read()
        if table.get(PROBE, (None, 0))[0] == flag:
            return table
        assert time.monotonic() < deadline, f"the board never showed {flag}: {table}"
        time.sleep(0.01)


@pytest.mark.slow
def test_the_relay_posts_what_the_store_says_and_what_its_admin_port_flips(database_url):
    port = free_port()
    settings = probe_settings(database_url, metrics=False, judge=False, admin_port=port)
    gateway = create_probe_gateway(settings)
    gateway.build()
    elsewhere = SqlFlagStore.from_settings(settings)  # another host's change, through the store

    async def change_elsewhere(flag: Flag) -> None:
        await elsewhere.change(PROBE, flag, actor="other host", reason="", default=LEGACY)
        await elsewhere.aclose()

    with relaying(gateway, main_url=None) as relay:
        board = FlagBoard.open(relay.board.path)
        assert board.path and board.seq >= 2  # posted once at start, before any change
        assert ADMIN_IN_SUPERVISOR_ENV in os.environ

        asyncio.run(change_elsewhere(CANARY))
        _posted(board, CANARY)

        admin = f"http://127.0.0.1:{port}/_gateway"
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        route = f"{admin}/routes/GET%20%2Fprobe"
        flip = httpx.put(route, json={"mode": "async"}, headers=auth, timeout=HANG)
        assert flip.status_code == 200, flip.text
        version = flip.json()["id"]
        assert board.read()[1][PROBE] == (ASYNC, version)  # posted before the answer
        history = httpx.get(f"{admin}/history", headers=auth, timeout=HANG).json()["history"]
        assert [row["new"]["mode"] for row in history] == ["async", "canary"]

        # The rest of the admin API needs a worker: passed on to the main port, here none.
        routes = httpx.get(f"{admin}/routes", headers=auth, timeout=HANG)
        assert routes.status_code == 502
        assert "passes /_gateway/routes on to the main port" in routes.json()["detail"]
        unauthenticated = httpx.put(route, json={"mode": "legacy"}, timeout=HANG)
        assert unauthenticated.status_code in (401, 403)
        board.close()
    assert BOARD_ENV not in os.environ
    assert not Path(relay.board.path).exists()


@pytest.mark.anyio
async def test_the_forwarder_passes_a_request_on_and_its_answer_back():
    seen: list[httpx.Request] = []

    def main_port(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(207, json={"ok": True}, headers={"x-from": "main"})

    forwarder = MainPortForwarder("http://127.0.0.1:8000", transport=httpx.MockTransport(main_port))
    status, headers, body = await _call(
        forwarder, "POST", "/_gateway/rollout", b"q=1", b'{"a": 1}', [(b"authorization", b"x")]
    )
    await forwarder.aclose()
    assert (status, body) == (207, b'{"ok":true}')
    assert (b"x-from", b"main") in headers
    request = seen[0]
    assert (request.method, str(request.url)) == (
        "POST",
        "http://127.0.0.1:8000/_gateway/rollout?q=1",
    )
    assert request.content == b'{"a": 1}'
    assert request.headers["authorization"] == "x"


@pytest.mark.anyio
async def test_the_forwarder_answers_502_naming_the_main_port_when_it_is_down():
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    forwarder = MainPortForwarder("http://127.0.0.1:8000", transport=httpx.MockTransport(refused))
    status, _, body = await _call(forwarder, "GET", "/_gateway/report", b"", b"", [])
    await forwarder.aclose()
    assert status == 502
    assert b"main port (http://127.0.0.1:8000), which did not answer: connection refused" in body


def test_the_main_port_is_reached_on_loopback_when_bound_to_every_address():
    import uvicorn

    def url(**options: object) -> str | None:
        return main_port_url(uvicorn.Config("x:y", **options))  # type: ignore[arg-type]

    assert url(host="0.0.0.0", port=8000) == "http://127.0.0.1:8000"
    assert url(host="::", port=8000) == "http://[::1]:8000"
    assert url(host="10.0.0.5", port=9000) == "http://10.0.0.5:9000"
    assert url(uds="/tmp/gateway.sock") is None


async def _call(
    app: MainPortForwarder,
    method: str,
    path: str,
    query: bytes,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    scope = {"type": "http", "method": method, "path": path, "query_string": query,
             "headers": [(b"host", b"admin"), *headers]}  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], sent[0]["headers"], sent[1]["body"]
