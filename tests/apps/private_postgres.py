"""A throwaway PostgreSQL cluster on a free loopback port, which a test may stop and start.

Never the shared server on 5432: the fault tests stop this one under load.

    with private_postgres() as cluster:     # skips when the server binaries are missing
        cluster.stop(); cluster.start()
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.testing import free_port

__all__ = ["BIN", "PrivatePostgres", "private_postgres"]

BIN = Path(os.environ.get("GATEWAY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PrivatePostgres:
    """A cluster in `root`, run as the postgres user when the tests run as root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root; run the cluster as the postgres user then.
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            check=check,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def init(self) -> None:
        if self.user:
            shutil.chown(self.root, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self, *, max_connections: int = 100) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c max_connections={max_connections}"
        )
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """A fast stop: open connections are closed, as in a real database restart."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def kill(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)


@contextmanager
def private_postgres(*, max_connections: int = 100) -> Iterator[PrivatePostgres]:
    """A started cluster, removed afterwards; skips the test without the server binaries."""
    if not (BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {BIN} (set GATEWAY_TEST_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    cluster = PrivatePostgres(root)
    try:
        cluster.init()
        cluster.start(max_connections=max_connections)
        yield cluster
    finally:
        cluster.kill()
        shutil.rmtree(root, ignore_errors=True)
