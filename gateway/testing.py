"""Helpers for tests and benchmarks that need a real server.

with serve_in_subprocess("example:create_app", env={...}, workers=2) as url:
    httpx.get(f"{url}/users/1")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO

import httpx

__all__ = ["free_port", "serve_in_subprocess", "wait_until_ready"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float = 30.0, log: IO[bytes] | None = None
) -> None:
    """Poll `url` until it answers; raise with the server's output if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            source = log if log is not None else process.stdout
            if source is not None and log is not None:
                log.seek(0)
            output = source.read().decode(errors="replace") if source is not None else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{output[-4000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"server at {url} not ready after {timeout} s")


@contextmanager
def serve_in_subprocess(
    app: str = "example:create_app",
    *,
    env: Mapping[str, str] | None = None,
    workers: int | None = 1,
    port: int | None = None,
    ready_path: str = "/openapi.json",
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 30.0,
) -> Iterator[str]:
    """Run `gateway serve APP` in a subprocess on a free port; yield its base URL.

    `workers=None` passes no --workers, leaving it to GATEWAY_WORKERS / WEB_CONCURRENCY.
    The server is stopped with SIGTERM on exit (SIGKILL if it lingers).
    """
    port = port or free_port()
    full_env = {**os.environ, **(env or {})}
    command = [sys.executable, "-m", "gateway", "serve", app, "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    command += ["--log-level", "warning", *extra_args]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        # A file, not a pipe: nobody drains a pipe while the test runs, and a full pipe
        # would block the server's logging (and so the server).
        command,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url + ready_path, process, timeout=ready_timeout, log=log)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
