"""Serve an app with uvicorn, building it once per process.

    run(AppTarget("mypkg.main:create_app"), workers=4, host="0.0.0.0", port=8000)

One worker: this process builds the app, checks it (database, flags file) and serves that
same object. Several workers (or --reload): each worker process builds its own app from the
`AppTarget`, which uvicorn calls as a factory; the supervisor builds it once beforehand only
to fail fast, in one line, when the app or its database is broken (not with --reload, whose
point is to wait for the fix).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import ChangeReload
from uvicorn.supervisors.multiprocess import Multiprocess

from gateway.flagfile import read_flags_file
from gateway.loader import AppTarget, gateway_of
from gateway.workers import become_supervisor, prepare_multiprocess

__all__ = ["STARTED_ENV", "check_before_serving", "run"]

# When `gateway serve` started, for every worker's report window (set once, inherited).
STARTED_ENV = "GATEWAY_SERVE_STARTED"
GRACEFUL_SHUTDOWN_SECONDS = 30


def run(target: AppTarget, *, workers: int = 1, reload: bool = False, **options: Any) -> None:
    """Serve `target`; `options` are uvicorn.Config's (host, port, root_path, ...)."""
    os.environ.setdefault(STARTED_ENV, repr(time.time()))
    config = uvicorn.Config(
        target.path,
        factory=True,
        workers=workers,
        reload=reload,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **options,
    )
    # Given the path, uvicorn sets up --reload (it reloads only apps named by a string);
    # given the target, every worker and every reload builds through AppTarget.load.
    config.app = target
    # uvicorn re-raises SIGTERM after its graceful shutdown; a clean stop should exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if reload:
        server = uvicorn.Server(config)
        ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
    elif workers > 1:
        prepare_multiprocess()
        become_supervisor()
        check_before_serving(target.load())
        from prometheus_client import multiprocess

        # The supervisor built the app only to check it; it serves nothing.
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
        _Draining(config, sockets=[config.bind_socket()]).run()
    else:
        app = target.load()
        check_before_serving(app)
        config.app, config.factory = app, False
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(3)  # uvicorn's STARTUP_FAILURE: the lifespan or the bind failed


def check_before_serving(app: FastAPI) -> None:
    """Fail before serving, in one line, when the database or the flags file is unusable."""
    gateway = gateway_of(app)
    gateway.database.check()  # raises DatabaseUnreachable
    gateway.database.sync_engine.dispose()
    if gateway.settings.flags_file:
        routes = {key: entry.implementations for key, entry in gateway.entries.items()}
        read_flags_file(gateway.settings.flags_file, routes)  # raises SettingsError


class _Draining(Multiprocess):
    """uvicorn's multi-worker supervisor, but it stops listening on SIGTERM at once.

    Otherwise the supervisor's copy of the listening socket keeps accepting into the
    backlog while the workers drain, and those connections are reset when it exits.
    """

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()
