"""Persistent flags, their audit history, and how every worker follows them.

The database is the source of truth. A change is one transaction: lock the route's key, read
the old flag, append a history row, write the flag (its version is the history row's id) and,
on PostgreSQL, NOTIFY the `gateway_flags` channel. Every worker applies what it hears to its
in-memory ModeTable, which is all a request ever reads:

    PostgreSQL  LISTEN on a dedicated connection + a full resync every flags_resync_interval
    SQLite      a full reload every flags_poll_interval

When the store is unreachable the workers keep the last flags they knew (fail static), log
one line, set gateway_flag_store_up to 0 and catch up when it returns.

    store = SqlFlagStore("postgresql://app@db/app")
    await store.prepare()
    change = await store.change("GET /users", Flag(Mode.ASYNC, 100), actor="ops", reason="")
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.flags import Flag, Mode, check_change
from gateway.urls import derive_urls, mask_url

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "CHANNEL",
    "FlagChange",
    "FlagStore",
    "FlagSync",
    "MemoryFlagStore",
    "SqlFlagStore",
    "StoredFlag",
    "attach_store",
    "flag_sync",
]

log = logging.getLogger("gateway.flags")

CHANNEL = "gateway_flags"
RETRY_MIN, RETRY_MAX = 0.2, 2.0  # seconds between reconnection attempts
STARTUP_TIMEOUT = 10.0  # a store that does not answer by then is treated as unreachable

metadata = MetaData()
flags_table = Table(
    "gateway_flags",
    metadata,
    Column("route_key", String(400), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("percent", Float, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(100), nullable=False),
)
history_table = Table(
    "gateway_flag_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("route_key", String(400), nullable=False, index=True),
    Column("actor", String(100), nullable=False),
    Column("old_mode", String(16), nullable=False),
    Column("old_percent", Float, nullable=False),
    Column("new_mode", String(16), nullable=False),
    Column("new_percent", Float, nullable=False),
    Column("reason", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredFlag:
    """A route's flag as stored, with the version (history id) that set it."""

    flag: Flag
    version: int


@dataclass(frozen=True, slots=True)
class FlagChange:
    """One row of the audit history: who changed which route from what to what, and why."""

    id: int
    at: datetime
    route: str
    actor: str
    old: Flag
    new: Flag
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "route": self.route,
            "by": self.actor,
            "old": {"mode": self.old.mode.value, "percent": self.old.percent},
            "new": {"mode": self.new.mode.value, "percent": self.new.percent},
            "reason": self.reason,
        }


class FlagStore(Protocol):
    """Where flags and their history live: `SqlFlagStore` (the database) or `MemoryFlagStore`."""

    async def prepare(self) -> None:
        """Create what is missing (tables); safe to call from many workers at once."""

    async def load(self) -> dict[str, StoredFlag]:
        """Every stored flag by route key."""

    async def change(
        self,
        key: str,
        flag: Flag,
        *,
        actor: str,
        reason: str,
        default: Flag,
        only_if_missing: bool = False,
    ) -> FlagChange | None:
        """Store `flag` and its history row atomically; None if only_if_missing and stored."""

    async def history(self, *, limit: int = 100, route: str | None = None) -> list[FlagChange]:
        """The newest `limit` changes first, optionally for one route."""

    async def aclose(self) -> None: ...


class MemoryFlagStore:
    """A FlagStore in this process only: for tests and embedders that persist nothing."""

    def __init__(self) -> None:
        self._flags: dict[str, StoredFlag] = {}
        self._history: list[FlagChange] = []

    async def prepare(self) -> None:
        return None

    async def load(self) -> dict[str, StoredFlag]:
        return dict(self._flags)

    async def change(
        self,
        key: str,
        flag: Flag,
        *,
        actor: str,
        reason: str,
        default: Flag,
        only_if_missing: bool = False,
    ) -> FlagChange | None:
        current = self._flags.get(key)
        if only_if_missing and current is not None:
            return None
        old = current.flag if current else default
        change = FlagChange(len(self._history) + 1, _now(), key, actor, old, flag, reason)
        self._history.append(change)
        self._flags[key] = StoredFlag(flag, change.id)
        return change

    async def history(self, *, limit: int = 100, route: str | None = None) -> list[FlagChange]:
        rows = [c for c in reversed(self._history) if route is None or c.route == route]
        return rows[:limit]

    async def aclose(self) -> None:
        return None


class SqlFlagStore:
    """Flags in the gateway's database (PostgreSQL or SQLite), on a small pool of its own.

    The pool is separate from the application's so a flip never queues behind traffic.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        _, async_url = derive_urls(url)
        self.backend = async_url.get_backend_name()
        self.masked_url = mask_url(url)
        self.timeout = timeout
        connect_args: dict[str, Any] = {"timeout": timeout}
        if self.backend == "postgresql":
            connect_args["command_timeout"] = timeout * 2
            listen_url = make_url(url).set(drivername="postgresql")
            self._listen_url = listen_url.render_as_string(hide_password=False)
        else:
            connect_args["timeout"] = 30  # SQLite: seconds to wait for a write lock
        self.engine: AsyncEngine = create_async_engine(
            async_url,
            connect_args=connect_args,
            pool_size=1,
            max_overflow=4,
            pool_timeout=timeout,
            pool_pre_ping=True,
        )
        self._writer = self.engine.execution_options(gateway_write=True)
        if self.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)

    @property
    def pushes(self) -> bool:
        """True when the store notifies changes (PostgreSQL); otherwise it is polled."""
        return self.backend == "postgresql"

    async def prepare(self) -> None:
        async with self._writer.begin() as connection:
            await self._lock(connection, "gateway_flags tables")
            await connection.run_sync(metadata.create_all)

    async def load(self) -> dict[str, StoredFlag]:
        columns = (flags_table.c.route_key, flags_table.c.mode, flags_table.c.percent)
        query = select(*columns, flags_table.c.version)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        loaded = {}
        for key, mode, percent, version in rows:
            try:
                loaded[key] = StoredFlag(Flag(Mode(mode), float(percent)), int(version))
            except ValueError:
                log.warning("flag store: route %r has unknown mode %r; ignored", key, mode)
        return loaded

    async def change(
        self,
        key: str,
        flag: Flag,
        *,
        actor: str,
        reason: str,
        default: Flag,
        only_if_missing: bool = False,
    ) -> FlagChange | None:
        at = _now()
        async with self._writer.begin() as connection:
            await self._lock(connection, key)
            query = select(flags_table.c.mode, flags_table.c.percent)
            row = (await connection.execute(query.where(flags_table.c.route_key == key))).first()
            if row is not None and only_if_missing:
                return None
            old = Flag(Mode(row.mode), float(row.percent)) if row is not None else default
            values = {
                "at": at,
                "route_key": key,
                "actor": actor,
                "old_mode": old.mode.value,
                "old_percent": old.percent,
                "new_mode": flag.mode.value,
                "new_percent": flag.percent,
                "reason": reason,
            }
            insert = history_table.insert().values(values).returning(history_table.c.id)
            version = int((await connection.execute(insert)).scalar_one())
            current = {
                "mode": flag.mode.value,
                "percent": flag.percent,
                "version": version,
                "updated_at": at,
                "updated_by": actor,
            }
            if row is None:
                await connection.execute(flags_table.insert().values(route_key=key, **current))
            else:
                where = flags_table.c.route_key == key
                await connection.execute(flags_table.update().where(where).values(current))
            if self.pushes:
                payload = json.dumps(
                    {"key": key, "mode": flag.mode.value, "percent": flag.percent, "v": version}
                )
                await connection.execute(select(func.pg_notify(CHANNEL, payload)))
        return FlagChange(version, at, key, actor, old, flag, reason)

    async def history(self, *, limit: int = 100, route: str | None = None) -> list[FlagChange]:
        query = select(history_table).order_by(history_table.c.id.desc()).limit(limit)
        if route is not None:
            query = query.where(history_table.c.route_key == route)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            FlagChange(
                id=row.id,
                at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),
                route=row.route_key,
                actor=row.actor,
                old=_flag_or_legacy(row.old_mode, row.old_percent),
                new=_flag_or_legacy(row.new_mode, row.new_percent),
                reason=row.reason,
            )
            for row in rows
        ]

    async def listen(
        self, on_payload: Callable[[str], None], on_ready: Callable[[], Awaitable[None]]
    ) -> None:
        """LISTEN on a dedicated connection; call on_ready once listening, then forward
        each payload until the connection breaks (it raises then)."""
        import psycopg

        connection = await psycopg.AsyncConnection.connect(
            self._listen_url,
            autocommit=True,
            connect_timeout=max(int(self.timeout), 1),
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        async with connection:
            await connection.execute(f"LISTEN {CHANNEL}")
            await on_ready()
            async for notify in connection.notifies():
                on_payload(notify.payload)
        raise ConnectionError("the notification connection closed")

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def _lock(self, connection: AsyncConnection, name: str) -> None:
        # PostgreSQL: serialize changes to one key across processes and hosts (SQLite
        # transactions here start with BEGIN IMMEDIATE, which serializes all writers).
        if self.backend == "postgresql":
            await connection.execute(select(func.pg_advisory_xact_lock(_lock_id(name))))


def _lock_id(name: str) -> int:
    digest = hashlib.blake2b(f"gateway_flags\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take over transaction control so writes can BEGIN IMMEDIATE (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Switching to WAL needs an exclusive lock and SQLite does not wait for it with the
        # busy timeout, so workers racing on a fresh file retry briefly. Once WAL, it stays.
        for attempt in range(50):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except Exception as exc:  # the aiosqlite adapter re-raises sqlite3's errors
                if "locked" not in str(exc):
                    raise
                if attempt == 49:
                    raise
                time.sleep(0.02)
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("gateway_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _flag_or_legacy(mode: str, percent: float) -> Flag:
    try:
        return Flag(Mode(mode), float(percent))
    except ValueError:
        return Flag(Mode.LEGACY, 0.0)


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class _Metrics:
    up: Gauge
    failures: Counter
    applied: Counter


_metrics: WeakKeyDictionary[CollectorRegistry, _Metrics] = WeakKeyDictionary()


def store_metrics(registry: CollectorRegistry = REGISTRY) -> _Metrics:
    """The flag store's metrics on `registry`, registered once per registry."""
    found = _metrics.get(registry)
    if found is None:
        found = _metrics[registry] = _Metrics(
            up=Gauge(
                "gateway_flag_store_up",
                "1 when this worker follows the flag store, 0 while it serves the last known "
                "flags because the store is unreachable",
                registry=registry,
                multiprocess_mode="livemin",
            ),
            failures=Counter(
                "gateway_flag_store_failures",
                "Failed reads, writes or notification connections to the flag store",
                registry=registry,
            ),
            applied=Counter(
                "gateway_flag_changes_applied",
                "Flag changes this worker applied to its in-memory table, by how it heard",
                ["source"],
                registry=registry,
            ),
        )
    return found


class FlagSync:
    """Keeps one worker's ModeTable in step with a FlagStore, and makes changes through it."""

    def __init__(
        self,
        gateway: Gateway,
        store: FlagStore,
        *,
        seeds: Mapping[str, Flag] | None = None,
        seed_source: str = "",
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.seeds = dict(seeds or {})
        self.seed_source = seed_source
        self.metrics = store_metrics(registry)
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
        flag = check_change(key, mode, percent, self.routes())
        change = await self.store.change(
            key, flag, actor=actor, reason=reason, default=self.gateway.modes.default
        )
        if change is None:  # not reachable: only_if_missing is False
            raise RuntimeError("the flag store returned no change")
        self.apply(key, change.new, change.id, "local")
        return change

    def routes(self) -> dict[str, list[Any]]:
        return {key: entry.implementations for key, entry in self.gateway.entries.items()}

    # -- applying ------------------------------------------------------------------------

    def apply(self, key: str, flag: Flag, version: int, source: str) -> bool:
        """Set one flag if its version is newer than the one applied; True if it was.

        A resync that read the table before a newer change committed is thus harmless, and
        one that finds nothing new leaves the table alone.
        """
        modes = self.gateway.modes
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
            log.warning("flag store: ignored a malformed notification (%s)", _reason(exc))

    # -- following -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the flags (or fall back to the default) and start following the store.

        On PostgreSQL this returns once the worker listens (or the first attempt failed),
        so a change committed after startup cannot be missed.
        """
        settings = self.gateway.settings
        self._first_attempt, self._listening = asyncio.Event(), False  # an app may restart
        if getattr(self.store, "pushes", False):
            self._spawn(self._follow())
            try:
                await asyncio.wait_for(self._first_attempt.wait(), STARTUP_TIMEOUT)
            except TimeoutError as exc:
                self._failed("at startup", exc)
            self._spawn(self._every(settings.flags_resync_interval))
        else:
            try:
                await asyncio.wait_for(self.resync("startup"), STARTUP_TIMEOUT)
            except Exception as exc:
                self._failed("at startup", exc)
            self._spawn(self._every(settings.flags_poll_interval))
        modes = self.gateway.modes
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
                    default=self.gateway.modes.default,
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
                _reason(exc),
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


_syncs: WeakKeyDictionary[Gateway, FlagSync] = WeakKeyDictionary()


def flag_sync(gateway: Gateway) -> FlagSync:
    """The FlagSync of a built gateway (made by attach_store)."""
    sync = _syncs.get(gateway)
    if sync is None:
        raise LookupError("This gateway has no flag store; build() attaches one.")
    return sync


def attach_store(
    gateway: Gateway,
    *,
    store: FlagStore | None = None,
    registry: CollectorRegistry | None = None,
) -> FlagSync:
    """Give a built gateway a flag store: load at startup, follow it, close at shutdown.

    The flags file (settings.flags_file) is read and checked here, so a bad file stops
    `gateway serve` before any worker starts.
    """
    from gateway.flagfile import read_flags_file

    settings = gateway.settings
    seeds: dict[str, Flag] = {}
    if settings.flags_file:
        routes = {key: entry.implementations for key, entry in gateway.entries.items()}
        seeds = read_flags_file(settings.flags_file, routes)
    if store is None:
        store = SqlFlagStore(settings.effective_database_url)
    if registry is None:  # the metrics work's convention: gw.metrics_registry, else global
        registry = getattr(gateway, "metrics_registry", None) or REGISTRY
    sync = _syncs[gateway] = FlagSync(
        gateway, store, seeds=seeds, seed_source=settings.flags_file, registry=registry
    )

    async def start(_: Gateway) -> None:
        await sync.start()

    async def stop(_: Gateway) -> None:
        await sync.stop()

    gateway.on_startup(start)
    gateway.on_shutdown(stop)
    return sync
