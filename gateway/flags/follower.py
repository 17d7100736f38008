"""How every worker follows the flag store, and makes changes through it.

Every worker applies what it hears to its in-memory ModeTable, which is all a request ever
reads:

    PostgreSQL  LISTEN on a dedicated connection in a thread of its own, which applies each
                change at once (even while the event loop is saturated), + a full resync
                every flags_resync_interval on the loop
    SQLite      a full reload every flags_poll_interval

ModeTable listeners therefore run on the thread that applied a change: the listener thread,
the event loop (resyncs, changes made here), or the admin listener's thread
(gateway.admin.listener). Async stores are bound to the loop that made them, so a change
made on another loop goes through a store of that loop (`store_factory`).

When the store is unreachable the workers keep the last flags they knew (fail static), log
one line, set gateway_flag_store_up to 0 and catch up when it returns.

    follower = FlagFollower(store, modes, routes, registry=registry)   # Gateway.build() does this
    await follower.start()
    await follower.change("GET /users", "canary", 10, actor="ops")
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from gateway._compat import UTC, wait_for
from gateway.exceptions import first_line
from gateway.flags.store import FlagChange, FlagStore, SqlFlagStore, StoredFlag
from gateway.flags.table import Flag, ModeTable, check_change
from gateway.modes import Implementation, Mode

__all__ = ["FlagFollower", "FollowerMetrics", "awaiting", "call_on_loop"]

log = logging.getLogger("gateway.flags")

RETRY_MIN, RETRY_MAX = 0.2, 2.0  # seconds between reconnection attempts
STARTUP_TIMEOUT = 10.0  # a store that does not answer by then is treated as unreachable
STOP_TIMEOUT = 5.0  # seconds stop() waits for the listener thread (a connect in progress)
T = TypeVar("T")


def call_on_loop(loop: asyncio.AbstractEventLoop | None, callback: Callable[[], None]) -> None:
    """Run `callback` on `loop`: now when already there (or no loop is known), else soon.

    A loop already closed (a thread outliving its app) drops the call.
    """
    if loop is None or _running_loop() is loop:
        callback()
        return
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


async def awaiting(work: Awaitable[T]) -> T:
    """`work` as a coroutine, which run_coroutine_threadsafe needs."""
    return await work


async def _warm(store: FlagStore) -> None:
    if isinstance(store, SqlFlagStore):
        await store.warm()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Stopped(Exception):
    """The listener thread was told to stop while it waited for the loop."""


class FollowerMetrics:
    """The flag store's metrics, registered in `registry` (one set per gateway)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.up = Gauge(
            "gateway_flag_store_up",
            "1 when this worker follows the flag store, 0 while it serves the last known "
            "flags because the store is unreachable",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.failures = Counter(
            "gateway_flag_store_failures",
            "Failed reads, writes or notification connections to the flag store",
            registry=registry,
        )
        self.applied = Counter(
            "gateway_flag_changes_applied",
            "Flag changes this worker applied to its in-memory table, by how it heard",
            ["source"],
            registry=registry,
        )


class FlagFollower:
    """Keeps one worker's ModeTable in step with a FlagStore, and makes changes through it.

    `routes` maps every route key to its implementations (to check a change before it is
    stored); `seeds` are the flags file's flags, stored only where a route has none yet.
    `store_factory` makes a store for another event loop (the admin listener's): without
    it, `store` is used on every loop, which suits only stores with no connections.
    """

    def __init__(
        self,
        store: FlagStore,
        modes: ModeTable,
        routes: Mapping[str, Sequence[Implementation]],
        *,
        resync_interval: float = 30.0,
        poll_interval: float = 1.0,
        seeds: Mapping[str, Flag] | None = None,
        seed_source: str = "",
        registry: CollectorRegistry = REGISTRY,
        store_factory: Callable[[], FlagStore] | None = None,
    ) -> None:
        self.store = store
        self.store_factory = store_factory
        self.modes = modes
        self.routes = routes
        self.resync_interval = resync_interval
        self.poll_interval = poll_interval
        self.seeds = dict(seeds or {})
        self.seed_source = seed_source
        self.metrics = FollowerMetrics(registry)
        self.versions: dict[str, int] = {}
        self.up: bool | None = None  # None until the first attempt
        self.loaded_from_store = False
        self.last_sync: float | None = None
        self._prepared = False
        self._listening = False
        self._retry = RETRY_MIN
        self._tasks: list[asyncio.Task[None]] = []
        self._first_attempt = asyncio.Event()
        # apply() runs on the loop and on other threads; reentrant for applied(), which a
        # ModeTable listener may call while apply() holds it.
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._other_stores: dict[asyncio.AbstractEventLoop, FlagStore] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread_done = asyncio.Event()

    # -- changing ------------------------------------------------------------------------

    async def change(
        self, key: str, mode: str, percent: float | None, *, actor: str, reason: str = ""
    ) -> FlagChange:
        """Validate, store, and apply here at once; other workers hear it from the store.

        Raises UnknownRouteError or FlagError before touching the store; store errors
        propagate and nothing is applied.
        """
        flag = check_change(key, mode, percent, self.routes)
        change = await self.store_here().change(
            key, flag, actor=actor, reason=reason, default=self.modes.default
        )
        if change is None:  # not reachable: only_if_missing is False
            raise RuntimeError("the flag store returned no change")
        self.apply(key, change.new, change.id, "local")
        return change

    async def history(self, *, limit: int = 100, route: str | None = None) -> list[FlagChange]:
        """The store's history, read through the running loop's store (see store_here)."""
        return await self.store_here().history(limit=limit, route=route)

    def store_here(self) -> FlagStore:
        """The store for the running loop: `store` on the follower's own loop (or with no
        store_factory), else one made by store_factory for that loop and kept for it."""
        loop = asyncio.get_running_loop()
        if self.store_factory is None or self._loop is None or loop is self._loop:
            return self.store
        store = self._other_stores.get(loop)
        if store is None:
            store = self._other_stores[loop] = self.store_factory()
        return store

    async def open_store_here(self) -> None:
        """Make the running loop's store and open its connections now, so that the first
        change does not pay for them; a store out of reach is left for that change to open."""
        store = self.store_here()
        try:
            await wait_for(_warm(store), STARTUP_TIMEOUT)
        except Exception as exc:
            log.warning(
                "flag store: could not connect ahead of the first change (%s at %s)",
                first_line(exc),
                self._describe_store(),
            )

    async def close_store_here(self) -> None:
        """Close the store store_here() made for the running loop (call before it ends)."""
        store = self._other_stores.pop(asyncio.get_running_loop(), None)
        if store is not None:
            await store.aclose()

    async def on_own_loop(self, work: Awaitable[T]) -> T:
        """Await `work` on the follower's loop (where the app's async resources live), from
        whichever loop calls: at once there, else handed over and waited for."""
        loop = self._loop
        if loop is None or asyncio.get_running_loop() is loop:
            return await work
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(awaiting(work), loop))

    # -- applying ------------------------------------------------------------------------

    def apply(self, key: str, flag: Flag, version: int, source: str) -> bool:
        """Set one flag if its version is newer than the one applied; True if it was.

        A resync that read the table before a newer change committed is thus harmless, and
        one that finds nothing new leaves the table alone. Safe from any thread: the
        version check and the write (with the table's listeners) hold one lock.
        """
        modes = self.modes
        with self._lock:
            if key not in modes or version <= self.versions.get(key, 0):
                return False
            self.versions[key] = version
            if modes.get(key) != flag:
                modes.set(key, flag)
                self.metrics.applied.labels(source).inc()
        return True

    def applied(self) -> dict[str, tuple[Flag, int]]:
        """Every flag taken from the store, with the version it came at (a consistent copy)."""
        with self._lock:
            # apply() records versions only for keys of the table
            return {key: (self.modes.get(key), version) for key, version in self.versions.items()}

    def apply_all(self, loaded: Mapping[str, StoredFlag], source: str) -> None:
        """Apply a full load; routes with no stored flag keep what they have."""
        for key, stored in loaded.items():
            self.apply(key, stored.flag, stored.version, source)

    def _on_payload(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            flag = Flag(Mode(data["mode"]), float(data["percent"]))
            self.apply(str(data["key"]), flag, int(data["v"]), "notify")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("flag store: ignored a malformed notification (%s)", first_line(exc))

    # -- following -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the flags (or fall back to the default) and start following the store.

        On PostgreSQL this returns once the worker listens (or the first attempt failed),
        so a change committed after startup cannot be missed.
        """
        self._first_attempt, self._listening = asyncio.Event(), False  # an app may restart
        self._loop = asyncio.get_running_loop()
        if getattr(self.store, "pushes", False):
            self._stop, self._thread_done = threading.Event(), asyncio.Event()
            self._thread = threading.Thread(
                target=self._follow, name="gateway-flag-listener", daemon=True
            )
            self._thread.start()
            try:
                await wait_for(self._first_attempt.wait(), STARTUP_TIMEOUT)
            except TimeoutError as exc:
                self._failed("at startup", exc)
            self._spawn(self._every(self.resync_interval))
        else:
            try:
                await wait_for(self.resync("startup"), STARTUP_TIMEOUT)
            except Exception as exc:
                self._failed("at startup", exc)
            self._spawn(self._every(self.poll_interval))
        modes = self.modes
        if self.loaded_from_store:
            stored = sum(1 for k in modes if k in self.versions)
            log.info(
                "flags: %d of %d paired routes have a stored flag (%s)",
                stored,
                len(modes),
                self._describe_store(),
            )
        else:
            log.warning(
                "flags: serving the default mode %r for all %d paired routes until the flag "
                "store is reachable",
                modes.default.describe(),
                len(modes),
            )

    async def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            # Waited for on the loop, which the thread may need to finish a resync.
            with contextlib.suppress(TimeoutError):
                await wait_for(self._thread_done.wait(), STOP_TIMEOUT)
            self._thread = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.store.aclose()

    async def resync(self, source: str = "resync") -> None:
        """Prepare the store if not done yet, seed it, then apply a full load."""
        if not self._prepared:
            await self.store.prepare()
            for key, flag in self.seeds.items():
                await self.store.change(
                    key,
                    flag,
                    actor="flags-file",
                    reason=f"seeded from {self.seed_source}",
                    default=self.modes.default,
                    only_if_missing=True,
                )
            self._prepared = True
        self.apply_all(await self.store.load(), source)
        self.loaded_from_store = True
        self.last_sync = time.time()
        if self._listening or not getattr(self.store, "pushes", False):
            self._recovered()

    def _follow(self) -> None:
        """The listener thread: listen, and after a failure retry with backoff."""
        listen = getattr(self.store, "listen")  # noqa: B009 - only stores that push have it
        loop, stop = self._loop, self._stop
        try:
            while not stop.is_set():
                try:
                    listen(self._on_payload, self._ready, stop)
                except _Stopped:
                    break
                except Exception as exc:
                    if stop.is_set():
                        break  # the connection closed because the worker stops
                    call_on_loop(loop, functools.partial(self._lost, exc))
                if stop.wait(self._retry):
                    break
                self._retry = min(self._retry * 2, RETRY_MAX)
        finally:
            call_on_loop(loop, self._thread_done.set)

    def _ready(self) -> None:
        """In the listener thread, once it listens: the resync runs on the loop (where the
        store's pool lives) and the thread waits for it; its failure is the connection's."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the follower listens before start() recorded its loop")
        future = asyncio.run_coroutine_threadsafe(self._on_listening(), loop)
        while True:
            try:
                future.result(timeout=0.1)
                break
            except FutureTimeout:
                if self._stop.is_set():
                    future.cancel()
                    raise _Stopped() from None
        self._retry = RETRY_MIN

    def _lost(self, exc: Exception) -> None:
        self._listening = False
        self._failed("notification connection", exc)
        self._first_attempt.set()

    async def _on_listening(self) -> None:
        self._listening = True
        # Anything changed while we were not listening arrives with this resync.
        await wait_for(self.resync("reconnect"), STARTUP_TIMEOUT)
        self._first_attempt.set()

    async def _every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await wait_for(self.resync(), STARTUP_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("resync", exc)

    def _spawn(self, work: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(work))

    def _failed(self, during: str, exc: BaseException) -> None:
        self.metrics.failures.inc()
        self.metrics.up.set(0)
        if self.up is not False:
            log.warning(
                "flag store unreachable (%s: %s at %s); serving the last known flags until it "
                "returns",
                during,
                first_line(exc),
                self._describe_store(),
            )
        self.up = False

    def _recovered(self) -> None:
        self.metrics.up.set(1)
        if self.up is False:
            log.warning("flag store reachable again (%s); flags resynced", self._describe_store())
        self.up = True

    def _describe_store(self) -> str:
        backend = getattr(self.store, "backend", "memory")
        return f"{backend} {getattr(self.store, 'masked_url', '')}".strip()

    def status(self) -> dict[str, Any]:
        """What GET /routes reports about the store: reachable, and where flags come from."""
        return {
            "backend": getattr(self.store, "backend", "memory"),
            "up": bool(self.up),
            "flags_from": "store" if self.loaded_from_store else "default",
            "last_sync": (
                datetime.fromtimestamp(self.last_sync, UTC).isoformat().replace("+00:00", "Z")
                if self.last_sync
                else None
            ),
        }
