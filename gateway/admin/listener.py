"""The admin API on a port of its own (GATEWAY_ADMIN_PORT), from a thread with its own loop.

Under load a worker's event loop is saturated, and an operator's flip on the main port waits
behind every request in it. With GATEWAY_ADMIN_PORT set, every worker also serves the admin
API on that port (GATEWAY_ADMIN_HOST, default 127.0.0.1), from a thread running uvicorn on
an event loop of its own; the socket is bound with SO_REUSEPORT, so all the workers of
`gateway serve --workers N` share the port and the kernel spreads connections over them.

    on the admin port                       served
    PUT {prefix}/routes/{key}, GET routes,   on the admin loop: the same handlers and auth,
    GET history, shadow, report              the flip written through a store of this loop
    everything else under {prefix}           handed to the app on its own loop, as is
    anything else                            404: nothing opens here that is not on the main port

    listener = AdminListener(api, app, prefix="/_gateway", host="127.0.0.1", port=8001)
    await listener.start()      # in the app's lifespan (Gateway does this)
    await listener.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway._compat import wait_for
from gateway.admin.auth import refuse_query_tokens
from gateway.exceptions import SettingsError
from gateway.flags.follower import awaiting, call_on_loop

__all__ = ["AdminListener", "AdminPortApp", "bind_shared"]

log = logging.getLogger("gateway")

T = TypeVar("T")
START_TIMEOUT = 20.0  # seconds to open the flag store (at most 10) and start serving
GRACE = 5.0  # seconds requests in flight get when the listener stops


def bind_shared(host: str, port: int) -> socket.socket:
    """A TCP socket on host:port that every worker of this server can bind (SO_REUSEPORT).

    Raises SettingsError naming the port and its setting when something else holds it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(
                f"GATEWAY_ADMIN_PORT={port}: port {port} on {host} is already in use by "
                "another program (or by this server's main port); choose a free port for "
                "the admin listener, or unset GATEWAY_ADMIN_PORT."
            ) from None
        raise SettingsError(
            f"GATEWAY_ADMIN_HOST={host!r} with GATEWAY_ADMIN_PORT={port}: cannot listen there "
            f"({exc.strerror}); expected an address of this host, such as 127.0.0.1."
        ) from None
    return sock


async def _on(loop: asyncio.AbstractEventLoop, work: Awaitable[T]) -> T:
    """Await `work` on `loop` from another loop's thread."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(awaiting(work), loop))


class AdminPortApp:
    """The ASGI app of the admin port: `local` routes here, the rest of `prefix` on `loop`.

    `local` is an app holding only the routes that are safe on this loop; a request that
    none of them takes wholly goes to `main`, the gateway's app, on its own loop.
    """

    def __init__(
        self, local: FastAPI, main: ASGIApp, loop: asyncio.AbstractEventLoop, prefix: str
    ) -> None:
        self.local = local
        self.main = main
        self.loop = loop
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        under = path == self.prefix or path.startswith(self.prefix + "/")
        if scope["type"] != "http" or not under:
            if scope["type"] == "http":
                detail = f"Not Found: the admin port serves {self.prefix}/... only."
                await JSONResponse({"detail": detail}, status_code=404)(scope, receive, send)
            return
        if any(route.matches(scope)[0] is Match.FULL for route in self.local.router.routes):
            await self.local(scope, receive, send)
            return
        here = asyncio.get_running_loop()

        async def receive_here() -> Message:
            return await _on(here, receive())

        async def send_here(message: Message) -> None:
            await _on(here, send(message))

        await _on(self.loop, self.main(scope, receive_here, send_here))


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        # uvicorn < 0.29 calls this from serve(); signals belong to the main thread's server.
        return None


class AdminListener:
    """Serves `api` (the admin router) on host:port from a thread with its own event loop.

    `main` is the gateway's app, for the admin paths `api` does not hold (unless `fallback`
    is given: then that app serves them, on the loop that started the listener, and `main`
    gives only the exception handlers; gateway.serve.relay does this); `opening` runs on
    the admin loop before it serves and `closing` before it ends (the follower opens and
    closes the store it keeps for that loop).
    """

    def __init__(
        self,
        api: APIRouter,
        main: FastAPI,
        *,
        prefix: str,
        host: str,
        port: int,
        opening: Callable[[], Awaitable[None]] | None = None,
        closing: Callable[[], Awaitable[None]] | None = None,
        fallback: ASGIApp | None = None,
    ) -> None:
        self.api = api
        self.main = main
        self.fallback = fallback
        self.prefix = prefix
        self.host = host
        self.port = port
        self.opening = opening
        self.closing = closing
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._done = asyncio.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    def _local_app(self) -> FastAPI:
        local = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        local.include_router(
            self.api,
            prefix=self.prefix,
            include_in_schema=False,
            dependencies=[Depends(refuse_query_tokens)],
        )
        # The same answers as the main port, whose handlers include the legacy app's.
        local.exception_handlers.update(self.main.exception_handlers)
        return local

    async def start(self) -> None:
        """Bind the port (SettingsError if taken), start serving, and log the address."""
        sock = bind_shared(self.host, self.port)
        loop = asyncio.get_running_loop()
        rest = self.fallback if self.fallback is not None else self.main
        app = AdminPortApp(self._local_app(), rest, loop, self.prefix)
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_config=None,  # the gateway's logging stays as configured
            timeout_graceful_shutdown=GRACE,  # type: ignore[arg-type]
        )
        self.server = server = _ThreadServer(config)
        self._done, self._error = asyncio.Event(), None
        self._thread = threading.Thread(
            target=self._run, args=(server, sock, loop), name="gateway-admin-listener", daemon=True
        )
        self._thread.start()
        for _ in range(int(START_TIMEOUT / 0.01)):
            if server.started or self._done.is_set():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            await self.stop()
            why = repr(self._error) if self._error is not None else "no answer"
            raise RuntimeError(f"the admin listener on {self.address} did not start ({why})")
        log.info(
            "admin API also on %s (GATEWAY_ADMIN_PORT), served from its own thread",
            self.address,
        )

    async def stop(self) -> None:
        """Stop serving (requests in flight get GRACE seconds) and wait for the thread."""
        if self.server is None or self._thread is None:
            return
        self.server.should_exit = True
        # Waited for on this loop: a request on the admin port may be waiting for it.
        with contextlib.suppress(TimeoutError):
            await wait_for(self._done.wait(), GRACE + 5)
        self._thread = None

    def _run(
        self, server: uvicorn.Server, sock: socket.socket, main: asyncio.AbstractEventLoop
    ) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(server, sock))
        except BaseException as exc:  # uvicorn exits with SystemExit when it cannot serve
            self._error = exc
            log.warning("admin listener on %s stopped: %r", self.address, exc)
        finally:
            loop.close()
            sock.close()
            call_on_loop(main, self._done.set)

    async def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            if self.opening is not None:
                await self.opening()
            await server.serve(sockets=[sock])
        finally:
            if self.closing is not None:
                await self.closing()
