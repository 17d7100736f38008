"""Load over many keep-alive connections, recording when each request was sent and its answer.

    outcomes = asyncio.run(hammer("127.0.0.1", port, ["/users/1"], connections=200,
                                  stop=stopped.is_set, seconds=30))
    lost = [o for o in outcomes if o.sent_at < signalled_at and o.status is None]

Raw HTTP/1.1 over asyncio streams, so `sent_at` is when the request's bytes were handed to
the kernel (after `drain()`), not when a client library got round to it. A connection that
is refused is not a request sent; a request written and never answered is one lost.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gateway._compat import wait_for
from gateway.testing import free_port, wait_until_ready

__all__ = ["Outcome", "Served", "hammer", "read_log", "serving", "wait_for_workers"]

READ_TIMEOUT = 60.0  # seconds one answer may take before the request counts as lost
STARTED = re.compile(r"gateway started pid=(\d+)")


@dataclass
class Outcome:
    """One request: when it was sent and answered (time.monotonic), and what came back."""

    path: str
    sent_at: float
    answered_at: float | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


async def _one_connection(
    host: str,
    port: int,
    paths: Sequence[str],
    offset: int,
    stop: Callable[[], bool],
    deadline: float,
    outcomes: list[Outcome],
    pause: float,
) -> None:
    reader = writer = None
    turn = offset
    while not stop() and time.monotonic() < deadline:
        if writer is None:
            try:
                reader, writer = await wait_for(asyncio.open_connection(host, port), timeout=5)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)  # refused: nothing was sent
                continue
        assert reader is not None
        path = paths[turn % len(paths)]
        turn += 1
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        try:
            writer.write(request)
            await writer.drain()
        except OSError:
            writer.close()
            reader = writer = None
            continue  # the connection was gone before the request left
        outcome = Outcome(path, time.monotonic())
        outcomes.append(outcome)
        try:
            status, headers, body = await wait_for(_read_response(reader), timeout=READ_TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            writer.close()
            reader = writer = None
            continue
        outcome.answered_at = time.monotonic()
        outcome.status, outcome.headers, outcome.body = status, headers, body
        if headers.get("connection", "").lower() == "close":
            writer.close()
            reader = writer = None
        if pause:
            await asyncio.sleep(pause)
    if writer is not None:
        writer.close()


async def hammer(
    host: str,
    port: int,
    paths: Sequence[str],
    *,
    connections: int,
    stop: Callable[[], bool],
    seconds: float,
    pause: float = 0.0,
    outcomes: list[Outcome] | None = None,
) -> list[Outcome]:
    """Send requests on `connections` keep-alive connections until `stop()` or `seconds`.

    Pass `outcomes` to watch them grow from another thread.
    """
    outcomes = [] if outcomes is None else outcomes
    deadline = time.monotonic() + seconds
    await asyncio.gather(
        *(
            _one_connection(host, port, paths, i, stop, deadline, outcomes, pause)
            for i in range(connections)
        )
    )
    return outcomes


@dataclass
class Served:
    """A `gateway serve` subprocess: its port, its process, and its output so far."""

    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return read_log(self.log)


def read_log(log: IO[bytes]) -> str:
    """What a server wrote to `log` so far, read without moving the offset it writes at (the
    file description, and so its offset, is shared with the server's processes)."""
    log.flush()
    size = os.fstat(log.fileno()).st_size
    return os.pread(log.fileno(), size, 0).decode(errors="replace")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for_workers(
    log: IO[bytes], process: subprocess.Popen[bytes], workers: int, timeout: float = 300.0
) -> set[int]:
    """Wait until `workers` running processes have logged "gateway started", and return their
    pids. /live answers as soon as one worker serves; on a busy host uvicorn may also replace
    a worker that was slow to answer its health check while starting, and a signal sent
    before its replacement has started would find it half-built."""
    deadline = time.monotonic() + timeout
    while True:
        started = {pid for pid in map(int, STARTED.findall(read_log(log))) if _running(pid)}
        if len(started) >= workers:
            return started
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{read_log(log)[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(started)} of {workers} workers started after {timeout} s")
        time.sleep(0.05)


@contextmanager
def serving(app: str, env: dict[str, str], *, workers: int = 1) -> Iterator[Served]:
    """`gateway serve APP --workers N` on a free port, output in a file (nobody drains a pipe
    while the load runs); killed on exit if the test did not stop it."""
    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", app, "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/_gateway/live", process, 120, log=log)
            wait_for_workers(log, process, workers)
            yield Served(port, process, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
