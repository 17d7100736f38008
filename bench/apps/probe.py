"""The propagation benchmark's app: one paired route whose answer names its implementation.

    GATEWAY_PROBE_DIR=/tmp/probe gateway serve bench.apps.probe:create_app --workers 4

With GATEWAY_PROBE_DIR set, every worker writes `<dir>/<pid>.log`: one line when it starts
and one line `<unix time> <route key>\\t<mode> <percent>` each time it applies a flag change,
so bench/propagation.py reads when the last worker applied a flip (the time is taken on
the thread that applied it, see ModeTable.on_change).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from fastapi import APIRouter, FastAPI

from gateway import Flag, Gateway

__all__ = ["PROBE", "create_app"]

PROBE = "GET /probe"

legacy = APIRouter()
migrated = APIRouter()


@legacy.get("/probe")
def probe() -> dict[str, object]:
    return {"implementation": "legacy", "pid": os.getpid()}


@migrated.get("/probe")
async def probe_async() -> dict[str, object]:
    return {"implementation": "async", "pid": os.getpid()}


def create_app() -> FastAPI:
    """The probe app from GATEWAY_* variables (an app factory for `gateway serve`)."""
    gateway = Gateway()
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    app = gateway.build()
    probe_dir = os.environ.get("GATEWAY_PROBE_DIR")
    if probe_dir:
        _record_changes(gateway, Path(probe_dir))
    return app


def _record_changes(gateway: Gateway, directory: Path) -> None:
    def log() -> Path:
        return directory / f"{os.getpid()}.log"  # the pid at write time: the worker's

    def started(_: Gateway) -> None:
        with log().open("a") as out:
            out.write(f"{time.time()} started\n")

    def changed(key: str, _old: Flag, new: Flag) -> None:
        # Runs on the thread that applied the change (the flag listener's, the admin
        # port's or the loop): one short append per call, a single write on O_APPEND.
        # The time is taken first: opening the file is the probe's cost, not the flip's.
        at = time.time()
        with log().open("a") as out:
            out.write(f"{at} {key}\t{new.mode.value} {new.percent:g}\n")

    gateway.on_startup(started)
    gateway.modes.on_change(changed)
