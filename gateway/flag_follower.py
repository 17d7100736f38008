"""How every worker follows the flag store, and makes changes through it.

Every worker applies what it hears to its in-memory ModeTable, which is all a request ever
reads:

    PostgreSQL  LISTEN on a dedicated connection + a full resync every flags_resync_interval
    SQLite      a full reload every flags_poll_interval

When the store is unreachable the workers keep the last flags they knew (fail static), log
one line, set gateway_flag_store_up to 0 and catch up when it returns.

    follower = FlagFollower(store, modes, routes, registry=registry)   # Gateway.build() does this
    await follower.start()
    await follower.change("GET /users", "canary", 10, actor="ops")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from gateway.exceptions import first_line
from gateway.flag_store import FlagChange, FlagStore, StoredFlag
from gateway.flags import Flag, Implementation, Mode, ModeTable, check_change

__all__ = ["FlagFollower", "FollowerMetrics"]

log = logging.getLogger("gateway.flags")

RETRY_MIN, RETRY_MAX = 0.2, 2.0  # seconds between reconnection attempts
STARTUP_TIMEOUT = 10.0  # a store that does not answer by then is treated as unreachable


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
    ) -> None:
        self.store = store
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

    # -- changing ------------------------------------------------------------------------

    async def change(
        self, key: str, mode: str, percent: float | None, *, actor: str, reason: str = ""
    ) -> FlagChange:
        """Validate, store, and apply here at once; other workers hear it from the store.

        Raises UnknownRouteError or FlagError before touching the store; store errors
        propagate and nothing is applied.
        """
        flag = check_change(key, mode, percent, self.routes)
        change = await self.store.change(
            key, flag, actor=actor, reason=reason, default=self.modes.default
        )
        if change is None:  # not reachable: only_if_missing is False
            raise RuntimeError("the flag store returned no change")
        self.apply(key, change.new, change.id, "local")
        return change

    # -- applying ------------------------------------------------------------------------

    def apply(self, key: str, flag: Flag, version: int, source: str) -> bool:
        """Set one flag if its version is newer than the one applied; True if it was.

        A resync that read the table before a newer change committed is thus harmless, and
        one that finds nothing new leaves the table alone.
        """
        modes = self.modes
        if key not in modes or version <= self.versions.get(key, 0):
            return False
        self.versions[key] = version
        if modes.get(key) != flag:
            modes.set(key, flag)
            self.metrics.applied.labels(source).inc()
        return True

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
        if getattr(self.store, "pushes", False):
            self._spawn(self._follow())
            try:
                await asyncio.wait_for(self._first_attempt.wait(), STARTUP_TIMEOUT)
            except TimeoutError as exc:
                self._failed("at startup", exc)
            self._spawn(self._every(self.resync_interval))
        else:
            try:
                await asyncio.wait_for(self.resync("startup"), STARTUP_TIMEOUT)
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

    async def _follow(self) -> None:
        listen = getattr(self.store, "listen")  # noqa: B009 - only stores that push have it
        while True:
            try:
                await listen(self._on_payload, self._on_listening)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listening = False
                self._failed("notification connection", exc)
            self._first_attempt.set()
            await asyncio.sleep(self._retry)
            self._retry = min(self._retry * 2, RETRY_MAX)

    async def _on_listening(self) -> None:
        self._listening = True
        # Anything changed while we were not listening arrives with this resync.
        await asyncio.wait_for(self.resync("reconnect"), STARTUP_TIMEOUT)
        self._retry = RETRY_MIN
        self._first_attempt.set()

    async def _every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.wait_for(self.resync(), STARTUP_TIMEOUT)
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
