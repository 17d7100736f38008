"""Apps and servers for the deployment tests: a slow paired route, a server under control.

gateway serve tests.apps.deploy:create_slow_app
with running_server("example:create_app", env) as (url, process): ...
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from gateway import AsyncDB, Gateway, SyncDB
from gateway.testing import free_port

__all__ = ["create_slow_app", "running_server"]


def create_slow_app() -> Any:
    """A gateway with one paired route that holds a database connection for `seconds`, or
    until the test releases the advisory lock `lock` that it holds (PostgreSQL).

    GET /slow?seconds=2   (pg_sleep; the mode comes from GATEWAY_DEFAULT_MODE)
    GET /slow?lock=42     (waits for pg_advisory_xact_lock_shared(42))
    """
    legacy, migrated = APIRouter(), APIRouter()

    def holding(seconds: float, lock: int | None) -> tuple[Any, dict[str, float | int]]:
        if lock is not None:
            return text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": lock}
        return text("SELECT pg_sleep(:s)"), {"s": seconds}

    @legacy.get("/slow")
    def slow(db: SyncDB, seconds: float = 1.0, lock: int | None = None) -> dict[str, str]:
        db.execute(*holding(seconds, lock))
        return {"served_by": "legacy"}

    @migrated.get("/slow")
    async def slow_async(
        db: AsyncDB, seconds: float = 1.0, lock: int | None = None
    ) -> dict[str, str]:
        await db.execute(*holding(seconds, lock))
        return {"served_by": "async"}

    gateway = Gateway()
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    return gateway.build()


@contextmanager
def running_server(
    app: str, env: dict[str, str], *, ready_path: str = "/_gateway/ready"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`gateway serve APP` on a free port, output to a pipe; yields (url, process).

    The caller may signal the process; on exit it is killed if still running.
    """
    import sys

    from gateway.testing import wait_until_ready

    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", app, "--port", str(port)]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url + ready_path, process, timeout=60)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
