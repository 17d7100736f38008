"""Worker processes and prometheus-client's multiprocess mode, below everything that serves.

With more than one worker, prometheus-client needs a directory shared by them, empty at
start (`prepare_multiprocess`); each scrape then drops the live gauges of workers that died
(`mark_dead_workers`). The supervisor that starts the workers builds the app once to check
it and serves no request, so it records no metrics (`is_supervisor`); it relays the flags
to its workers, and may serve the admin port for them (`admin_port_in_supervisor`, see
gateway.serve.relay).
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

__all__ = [
    "ADMIN_IN_SUPERVISOR_ENV",
    "MULTIPROC_ENV",
    "admin_port_in_supervisor",
    "become_supervisor",
    "exit_with_supervisor",
    "is_supervisor",
    "mark_dead_workers",
    "prepare_multiprocess",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Set by `gateway serve`'s supervisor when it serves GATEWAY_ADMIN_PORT for its workers.
ADMIN_IN_SUPERVISOR_ENV = "GATEWAY_SERVE_ADMIN_IN_SUPERVISOR"
_PID = re.compile(r"_(\d+)\.db$")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_supervisor_pid: int | None = None


def become_supervisor() -> None:
    """Mark this process as the one that starts workers (a forked child is not it)."""
    global _supervisor_pid
    _supervisor_pid = os.getpid()


def is_supervisor() -> bool:
    """True in the process that starts several workers: it builds the app only to check it."""
    return _supervisor_pid == os.getpid()


def admin_port_in_supervisor() -> bool:
    """True in a worker whose supervisor serves the admin port (gateway.serve.relay)."""
    return os.environ.get(ADMIN_IN_SUPERVISOR_ENV) == "1" and not is_supervisor()


def exit_with_supervisor() -> bool:
    """In a worker: be sent SIGTERM (and so drain and stop) when its supervisor dies.

    A supervisor killed outright (SIGKILL, the OOM killer) cannot stop its workers, which
    would go on serving the port with nobody to restart or stop them, and with no more
    flags from its board; gunicorn's workers leave when their arbiter is gone, for the
    same reason. Linux only (prctl PR_SET_PDEATHSIG); True if it is set.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent or parent == 1:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def prepare_multiprocess(directory: str | None = None) -> Path:
    """Create (or empty) the metrics directory and export PROMETHEUS_MULTIPROC_DIR.

    A directory from the environment is emptied of *.db files left by an earlier run;
    otherwise a fresh temporary one is made.
    """
    directory = directory or os.environ.get(MULTIPROC_ENV)
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def mark_dead_workers(directory: str) -> list[int]:
    """Drop the live-gauge files of worker processes that no longer exist; return their pids."""
    from prometheus_client import multiprocess

    dead: set[int] = set()
    for name in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = _PID.search(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid not in dead and not _alive(pid):
            dead.add(pid)
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
