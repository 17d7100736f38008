"""What `gateway serve`'s supervisor does for its workers' flags, from threads of its own.

The supervisor of `gateway serve --workers N` builds the app once to check it and serves
no request: it is the one process of the server whose threads never wait for a busy GIL.
So, for as long as the workers run, it

    follows the flag store   with that app's FlagFollower (LISTEN on PostgreSQL, polling on
                             SQLite) and posts the table on the board (gateway.flags.board)
                             after every change: each worker reads it before a request
                             chooses, so a flip does not wait for any thread of a busy worker
    serves the admin port    when GATEWAY_ADMIN_PORT is set, instead of the workers: a flip
                             (PUT {prefix}/routes/{key}) and the history are answered here,
                             the flip stored and posted on the board at once; every other
                             admin path is passed on to the main port, where a worker answers

    with relaying(gateway, main_url="http://127.0.0.1:8000"):   # gateway.serve.server does this
        ...                                                     # the workers run
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from gateway._process.workers import ADMIN_IN_SUPERVISOR_ENV
from gateway.exceptions import first_line
from gateway.flags.board import BOARD_ENV, FlagBoard

if TYPE_CHECKING:
    from gateway.admin.listener import AdminListener
    from gateway.app import Gateway

__all__ = ["FlagRelay", "MainPortForwarder", "relaying"]

log = logging.getLogger("gateway.flags")

START_TIMEOUT = 30.0  # the follower waits at most 10 s for the store, the listener 20 s
# The admin routes the supervisor answers itself; the rest need a worker's state.
SERVED_HERE = {("/routes/{route_key:path}", "PUT"), ("/history", "GET")}
_HOP_HEADERS = {b"host", b"content-length", b"connection", b"transfer-encoding"}
_NOT_RETURNED = _HOP_HEADERS | {b"content-encoding"}  # httpx hands the body decoded


@contextlib.contextmanager
def relaying(gateway: Gateway, *, main_url: str | None) -> Iterator[FlagRelay]:
    """Relay `gateway`'s flags to the workers started inside the block (see the module).

    The workers find the board through BOARD_ENV (and learn that the admin port is served
    here through ADMIN_IN_SUPERVISOR_ENV), both set before the block and inherited.
    """
    directory = tempfile.mkdtemp(prefix="gateway-flags-")
    board = FlagBoard.create(os.path.join(directory, "board"), gateway.modes)
    relay = FlagRelay(gateway, board, main_url=main_url)
    try:
        relay.start()
        os.environ[BOARD_ENV] = board.path
        if relay.admin is not None:
            os.environ[ADMIN_IN_SUPERVISOR_ENV] = "1"
        yield relay
    finally:
        os.environ.pop(BOARD_ENV, None)
        os.environ.pop(ADMIN_IN_SUPERVISOR_ENV, None)
        relay.stop()
        board.close()
        shutil.rmtree(directory, ignore_errors=True)


class FlagRelay:
    """Follows `gateway`'s flag store on a loop of its own and posts it on `board`."""

    def __init__(self, gateway: Gateway, board: FlagBoard, *, main_url: str | None) -> None:
        if gateway.follower is None:
            raise RuntimeError("FlagRelay needs a built gateway (Gateway.build())")
        self.gateway = gateway
        self.follower = gateway.follower
        self.board = board
        self.main_url = main_url
        self.admin: AdminListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Follow the store and post the table; serve the admin port when it is set.

        Raises SettingsError (the admin port is taken) or RuntimeError (no start in time).
        """
        self.gateway.modes.on_change(lambda _key, _old, _new: self.post())
        self._thread = threading.Thread(target=self._run, name="gateway-flag-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"the flag relay did not start within {START_TIMEOUT:g} s")
        if self._error is not None:
            error, self._error = self._error, None
            self.stop()
            raise error

    def post(self) -> None:
        """Put every flag the follower applied on the board (from any thread)."""
        try:
            self.board.publish(self.follower.applied())
        except ValueError as exc:  # the board is sized for every route: not expected
            log.error("flag relay: %s; workers follow the store on their own", exc)

    def stop(self) -> None:
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None:
            thread.join(START_TIMEOUT)
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            if self._ready.is_set():  # it had started: nobody waits for the error
                log.error(
                    "flag relay stopped (%s): the workers follow the flag store on their own "
                    "and the admin port is closed",
                    first_line(exc),
                )
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        follower = self.follower
        judge = self.gateway.judge
        forwarder = MainPortForwarder(self.main_url)
        try:
            await follower.start()
            self.post()
            self.admin = self._admin_listener(forwarder)
            if self.admin is not None:
                await self.admin.start()
            self._ready.set()
            await self._stopping.wait()
        finally:
            if self.admin is not None:
                await self.admin.stop()
            await forwarder.aclose()
            await follower.stop()
            if judge is not None:  # a flip here records the canary's state through it
                await judge.store.aclose()

    def _admin_listener(self, forwarder: MainPortForwarder) -> AdminListener | None:
        gateway = self.gateway
        settings, api = gateway.settings, gateway.admin_api
        if settings.admin_port is None or api is None or gateway.app is None:
            return None
        from gateway.admin.listener import AdminListener

        here = APIRouter()
        here.routes.extend(
            route
            for route in api.routes
            if isinstance(route, APIRoute)
            and any((route.path, method) in SERVED_HERE for method in route.methods or ())
        )
        return AdminListener(
            here,
            gateway.app,
            prefix=settings.admin_prefix,
            host=settings.admin_host,
            port=settings.admin_port,
            opening=self.follower.open_store_here,
            closing=self.follower.close_store_here,
            fallback=forwarder,
        )


class MainPortForwarder:
    """An ASGI app that passes each request on to the server's main port and answers with
    what comes back (a 502 naming the main port when it does not answer)."""

    def __init__(
        self,
        base_url: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.transport = transport
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope.get("path", "")
        if self.base_url is None:
            await self._unavailable(scope, receive, send, path, "not reachable by TCP")
            return
        if self._client is None:
            # verify=False: this server's own port on loopback, its certificate names the host
            self._client = httpx.AsyncClient(
                timeout=self.timeout, verify=False, transport=self.transport
            )
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.base_url + path + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _HOP_HEADERS]
        try:
            answer = await self._client.request(scope["method"], url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            await self._unavailable(scope, receive, send, path, first_line(exc))
            return
        content = answer.content
        returned = [(k, v) for k, v in answer.headers.raw if k.lower() not in _NOT_RETURNED]
        returned.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": returned})  # fmt: skip
        await send({"type": "http.response.body", "body": content})

    async def _unavailable(
        self, scope: Scope, receive: Receive, send: Send, path: str, why: str
    ) -> None:
        detail = (
            f"the admin port answers flips and history itself and passes {path} on to the "
            f"main port ({self.base_url or 'unknown'}), which did not answer: {why}"
        )
        await JSONResponse({"detail": detail}, status_code=502)(scope, receive, send)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
