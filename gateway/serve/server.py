"""Serve an app with uvicorn, building it once per process.

    run(AppTarget("mypkg.main:create_app"), workers=4, host="0.0.0.0", port=8000)

One worker: this process builds the app, checks it (database, flags file) and serves that
same object. Several workers (or --reload): each worker process builds its own app from the
`AppTarget`, which uvicorn calls as a factory; the supervisor builds it once beforehand only
to fail fast, in one line, when the app or its database is broken (not with --reload, whose
point is to wait for the fix).

SIGTERM drains each serving process before uvicorn's own graceful shutdown (`Drain`):

    SIGTERM      readiness answers 503 at once; requests keep being served, each response
                 with `Connection: close`, and the listener stays open, so every request
                 already sent (on a keep-alive connection or in the listen backlog) is read
    + drain      (GATEWAY_SHUTDOWN_DRAIN_SECONDS, 5) the listener and idle connections close
    + grace      (GATEWAY_SHUTDOWN_GRACE_SECONDS, 20) requests in flight finish; then the
                 lifespan closes the pools and the process exits 0

5 + 20 s stays inside Kubernetes' default terminationGracePeriodSeconds (30 s) with time
left to close the pools; the drain is what a preStop `sleep 5` would buy, done by the
server itself: long enough for endpoints to drop this replica, the way Envoy drains
listeners before it closes them. A second SIGTERM ends the drain at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.supervisors import ChangeReload
from uvicorn.supervisors.multiprocess import Multiprocess

from gateway._process.workers import become_supervisor, exit_with_supervisor, prepare_multiprocess
from gateway.flags.seed_file import read_flags_file
from gateway.logging import log_event
from gateway.serve.loader import AppTarget, gateway_of
from gateway.serve.relay import relaying
from gateway.settings import Settings

__all__ = [
    "STARTED_ENV",
    "Drain",
    "DrainingApp",
    "check_before_serving",
    "main_port_url",
    "run",
]

# When `gateway serve` started, for every worker's report window (set once, inherited).
STARTED_ENV = "GATEWAY_SERVE_STARTED"


def run(target: AppTarget, *, workers: int = 1, reload: bool = False, **options: Any) -> None:
    """Serve `target`; `options` are uvicorn.Config's (host, port, root_path, ...)."""
    os.environ.setdefault(STARTED_ENV, repr(time.time()))
    settings = Settings.from_environ()
    config = uvicorn.Config(
        target.path,
        factory=True,
        workers=workers,
        reload=reload,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # type: ignore[arg-type]
        **options,
    )
    # Given the path, uvicorn sets up --reload (it reloads only apps named by a string);
    # given the target, every worker and every reload builds through AppTarget.load.
    config.app = _DrainingTarget(target, settings.shutdown_drain_seconds)
    # uvicorn re-raises SIGTERM after its graceful shutdown; a clean stop should exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if reload:
        server = uvicorn.Server(config)
        ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
    elif workers > 1:
        prepare_multiprocess()
        become_supervisor()
        app = target.load()
        check_before_serving(app)
        from prometheus_client import multiprocess

        # The supervisor built the app to check it and serves no request; it relays the
        # flags to its workers (and serves the admin port), see gateway.serve.relay.
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
        with relaying(gateway_of(app), main_url=main_port_url(config)):
            _Supervisor(config, sockets=[config.bind_socket()]).run()
    else:
        app = target.load()
        check_before_serving(app)
        config.app, config.factory = serve_draining(app, settings.shutdown_drain_seconds), False
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(3)  # uvicorn's STARTUP_FAILURE: the lifespan or the bind failed


def main_port_url(config: uvicorn.Config) -> str | None:
    """Where this server's own process reaches its main port (None: a Unix socket or fd)."""
    if config.uds or config.fd is not None:
        return None
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(config.host, config.host)
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if config.is_ssl else "http"
    return f"{scheme}://{host}:{config.port}"


def check_before_serving(app: FastAPI) -> None:
    """Fail before serving, in one line, when the database or the flags file is unusable."""
    gateway = gateway_of(app)
    gateway.database.check()  # raises DatabaseUnreachable
    gateway.database.sync_engine.dispose()
    if gateway.settings.flags_file:
        read_flags_file(gateway.settings.flags_file, gateway.implementations)  # SettingsError


class _Supervisor(Multiprocess):
    """uvicorn's multi-worker supervisor, but SIGTERM reaches the workers at once.

    uvicorn's supervisor looks at its signals every 0.5 s, so the workers would start
    draining (and fail readiness) up to half a second late. It closes its own copy of the
    listening socket: the workers' copies keep it open while they drain.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, sig: int, _frame: FrameType | None) -> None:
        self.signal_queue.append(sig)
        self.should_exit.set()  # wakes the supervisor's wait: terminate_all runs now

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


class Drain:
    """SIGTERM in one serving process: unready at once, keep serving `seconds`, then stop.

    drain = Drain(seconds=5)
    app = DrainingApp(app, drain)     # arms itself once the lifespan has started
    await drain.readiness()           # None, or why /ready answers 503
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False
        self._stop: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def readiness(self) -> str | None:
        """A readiness check (gateway.admin.health): failing from the moment SIGTERM arrives."""
        if self.draining:
            return "draining after SIGTERM: this process is shutting down, send requests elsewhere"
        return None

    def arm(self) -> None:
        """Take SIGTERM over from uvicorn; its own handler runs when the drain ends.

        Only in the main thread with a running loop (where uvicorn installs its handler).
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)

        def stop() -> None:
            if callable(previous):
                previous(signal.SIGTERM, None)
            else:  # nobody handled it before: let the default action happen
                signal.signal(signal.SIGTERM, previous)
                signal.raise_signal(signal.SIGTERM)

        def on_sigterm(_sig: int, _frame: FrameType | None) -> None:
            # A signal handler must not touch the loop's internals: hand over to it.
            loop.call_soon_threadsafe(self._finish if self.draining else self._begin, loop)
            self.draining = True  # readiness fails from here, before the loop even wakes

        self._stop = stop
        signal.signal(signal.SIGTERM, on_sigterm)

    def _begin(self, loop: asyncio.AbstractEventLoop) -> None:
        log_event(
            "draining: readiness answers 503 and responses close their connections; "
            "the listener closes after the drain",
            drain_seconds=self.seconds,
            pid=os.getpid(),
        )
        self._timer = loop.call_later(self.seconds, self._finish, loop)

    def _finish(self, _loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        stop, self._stop = self._stop, None
        if stop is not None:
            log_event("drained: closing the listener", pid=os.getpid())
            stop()


class DrainingApp:
    """The ASGI app uvicorn serves: `app`, plus `Connection: close` while draining."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._arming(send))
        elif scope["type"] == "http" and self.drain.draining:
            await self.app(scope, receive, _closing(send))
        else:
            await self.app(scope, receive, send)

    def _arming(self, send: Send) -> Send:
        async def arming(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.drain.arm()
            await send(message)

        return arming


def _closing(send: Send) -> Send:
    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return closing


def serve_draining(app: FastAPI, drain_seconds: float) -> DrainingApp:
    """`app` as one process serves it: drained on SIGTERM, its readiness failing meanwhile."""
    drain = Drain(drain_seconds)
    gateway_of(app).add_check("shutdown", drain.readiness)
    return DrainingApp(app, drain)


@dataclass(frozen=True)
class _DrainingTarget:
    """The factory each worker (or each reload) calls: build the app, then serve it drained."""

    target: AppTarget
    drain_seconds: float

    def __call__(self) -> DrainingApp:
        exit_with_supervisor()  # a worker whose supervisor is killed drains and stops
        return serve_draining(self.target.load(), self.drain_seconds)
