"""Process-level preparation for serving: worker processes and multiprocess metrics.

`gateway serve --workers N` calls prepare_serving before uvicorn starts the workers. With
more than one worker, prometheus-client's multiprocess mode needs a directory shared by
them, empty at start; each scrape then marks workers that died so their live gauges go.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from pathlib import Path

__all__ = [
    "MULTIPROC_ENV",
    "is_supervisor",
    "mark_dead_workers",
    "prepare_multiprocess",
    "prepare_serving",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STARTED_ENV = "GATEWAY_SERVE_STARTED"
_PID = re.compile(r"_(\d+)\.db$")
_supervisor_pid: int | None = None


def is_supervisor() -> bool:
    """True in the process that starts several workers: it builds the app only to check it."""
    return _supervisor_pid == os.getpid()


def prepare_serving(app_path: str, *, workers: int) -> None:
    """Set up multiprocess metrics (workers > 1), then check the app imports and builds."""
    import time

    from gateway.cli import build_app

    global _supervisor_pid
    os.environ.setdefault(STARTED_ENV, repr(time.time()))
    if workers > 1:
        prepare_multiprocess()
        _supervisor_pid = os.getpid()
    build_app(app_path)
    if workers > 1:
        from prometheus_client import multiprocess

        # The supervisor built the app only to check it; it serves nothing.
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


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
