"""Where flags and their audit history are stored: the database, or memory for tests.

The database is the source of truth. A change is one transaction: lock the route's key, read
the old flag, append a history row, write the flag (its version is the history row's id) and,
on PostgreSQL, NOTIFY the `gateway_flags` channel. How every worker follows the store is
`gateway.flags.follower`; the two blocking PostgreSQL paths (the listener thread's LISTEN,
the admin port's one-round-trip change) are `gateway.flags.store_pg`.

On PostgreSQL the tables live in a schema of their own (`gateway`, GATEWAY_FLAGS_SCHEMA),
created if missing, so the app's migrations (Alembic autogenerate reflects the default
schema) never see them; tables an earlier version left elsewhere are used where they are
(`gateway.flags.schema`). GATEWAY_FLAGS_DATABASE_URL puts the store in another database.

    store = SqlFlagStore("postgresql://app@db/app")          # tables in schema "gateway"
    await store.prepare()
    change = await store.change("GET /users", Flag(Mode.ASYNC, 100), actor="ops", reason="",
                                default=Flag(Mode.LEGACY, 0))
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from threading import Event
from typing import Any, Protocol

from sqlalchemy import (
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from gateway._compat import UTC
from gateway.flags.schema import (
    check_schema_name,
    choose_schema,
    flags_table,
    history_table,
    metadata,
    sqlite_begin,
    sqlite_connect,
)
from gateway.flags.store_pg import OneTripWriter, listen_blocking
from gateway.flags.table import Flag
from gateway.modes import Mode
from gateway.settings import Settings
from gateway.urls import derive_urls, mask_url

__all__ = [
    "CHANNEL",
    "DEFAULT_SCHEMA",
    "FlagChange",
    "FlagStore",
    "MemoryFlagStore",
    "SqlFlagStore",
    "StoredFlag",
]

log = logging.getLogger("gateway.flags")

CHANNEL = "gateway_flags"
DEFAULT_SCHEMA = "gateway"


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
    `schema` is the PostgreSQL schema of the tables (None: the search_path's); SQLite has
    none.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        schema: str | None = DEFAULT_SCHEMA,
        one_trip_changes: bool = False,
    ) -> None:
        _, async_url = derive_urls(url)
        self.backend = async_url.get_backend_name()
        self.masked_url = mask_url(url)
        self.timeout = timeout
        self.wanted_schema = schema if self.backend == "postgresql" else None
        self.schema: str | None = None  # where the tables are, once _tables() has looked
        self._bound: AsyncEngine | None = None
        self.one_trip_changes = one_trip_changes and self.backend == "postgresql"
        self._writing: OneTripWriter | None = None  # one-trip changes' blocking connection
        if schema is not None:
            check_schema_name(schema)
        connect_args: dict[str, Any] = {"timeout": timeout}
        if self.backend == "postgresql":
            connect_args["command_timeout"] = timeout * 2
            listen_url = make_url(url).set(drivername="postgresql")
            self._listen_url = listen_url.render_as_string(hide_password=False)
            if self.one_trip_changes:
                self._writing = OneTripWriter(self._listen_url, timeout)
        else:
            connect_args["timeout"] = 30  # SQLite: seconds to wait for a write lock
        self.engine: AsyncEngine = create_async_engine(
            async_url,
            connect_args=connect_args,
            poolclass=AsyncAdaptedQueuePool,  # SQLAlchemy 1.4 defaults SQLite files to NullPool
            pool_size=1,
            max_overflow=4,
            pool_timeout=timeout,
            pool_pre_ping=True,
        )
        self._writer: AsyncEngine = self.engine  # set again with _bound
        if self.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", sqlite_begin)

    @classmethod
    def from_settings(cls, settings: Settings, *, one_trip_changes: bool = False) -> SqlFlagStore:
        """The store GATEWAY_FLAGS_DATABASE_URL (else GATEWAY_DATABASE_URL) and
        GATEWAY_FLAGS_SCHEMA name."""
        return cls(
            settings.effective_flags_database_url,
            schema=settings.flags_schema or None,
            one_trip_changes=one_trip_changes,
        )

    @property
    def where(self) -> str:
        """The masked URL, and the schema on PostgreSQL: what a log line names."""
        schema = self.schema if self._bound is not None else self.wanted_schema
        return f"{self.masked_url} (schema {schema})" if schema else self.masked_url

    async def _tables(self) -> AsyncEngine:
        """The engine, its tables' schema chosen on first use (one query, PostgreSQL only)."""
        if self._bound is None:
            wanted, url = self.wanted_schema, self.masked_url
            schema = await choose_schema(self.engine, wanted, masked_url=url) if wanted else None
            self.schema = schema
            self._bound = (
                self.engine.execution_options(schema_translate_map={None: schema})
                if schema
                else self.engine
            )
            # Its transactions take SQLite's write lock at BEGIN (see sqlite_begin).
            self._writer = self._bound.execution_options(gateway_write=True)
        return self._bound

    async def exists(self) -> bool:
        """Whether the flag tables exist (nothing is created to find out)."""
        engine = await self._tables()
        schema = self.schema
        async with engine.connect() as connection:
            return bool(
                await connection.run_sync(
                    lambda sync: inspect(sync).has_table(flags_table.name, schema=schema)
                )
            )

    @property
    def pushes(self) -> bool:
        """True when the store notifies changes (PostgreSQL); otherwise it is polled."""
        return self.backend == "postgresql"

    async def prepare(self) -> None:
        await self._tables()
        async with self._writer.begin() as connection:
            await self._lock(connection, "gateway_flags tables")
            if self.schema:
                quoted = connection.dialect.identifier_preparer.quote_schema(self.schema)
                await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            await connection.run_sync(metadata.create_all)

    async def load(self) -> dict[str, StoredFlag]:
        columns = (flags_table.c.route_key, flags_table.c.mode, flags_table.c.percent)
        query = select(*columns, flags_table.c.version)
        async with (await self._tables()).connect() as connection:
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
        await self._tables()
        if self.one_trip_changes and not only_if_missing:
            return self._change_in_one_trip(key, flag, at, actor, reason, default)
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
        async with (await self._tables()).connect() as connection:
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

    def listen(
        self, on_payload: Callable[[str], None], on_ready: Callable[[], None], stop: Event
    ) -> None:
        """LISTEN on a dedicated blocking connection, from a thread of its own: call
        on_ready once listening, then forward each payload as it arrives, until `stop` is
        set; raises when the connection breaks (gateway.flags.store_pg.listen_blocking)."""
        listen_blocking(self._listen_url, CHANNEL, on_payload, on_ready, stop, self.timeout)

    async def warm(self) -> None:
        """Open now what the first change would: the tables' schema, a pooled connection
        and, with one_trip_changes, the blocking connection (a connection is many round
        trips, each slow on a saturated worker)."""
        await self.exists()
        if self._writing is not None:
            self._writing.connect()

    def _change_in_one_trip(
        self, key: str, flag: Flag, at: datetime, actor: str, reason: str, default: Flag
    ) -> FlagChange:
        """change() as one round trip on a blocking connection, for the admin listener's
        loop (see gateway.flags.store_pg.OneTripWriter)."""
        if self._writing is None:
            raise RuntimeError("one-trip changes need PostgreSQL and one_trip_changes=True")
        version, old_mode, old_percent = self._writing.change(
            self.schema,
            {
                "lock": _lock_id(key),
                "at": at,
                "key": key,
                "actor": actor,
                "reason": reason,
                "mode": flag.mode.value,
                "percent": flag.percent,
                "default_mode": default.mode.value,
                "default_percent": default.percent,
                "channel": CHANNEL,
            },
        )
        old = _flag_or_legacy(old_mode, old_percent)
        return FlagChange(version, at, key, actor, old, flag, reason)

    async def aclose(self) -> None:
        if self._writing is not None:
            self._writing.close()
        await self.engine.dispose()

    async def _lock(self, connection: AsyncConnection, name: str) -> None:
        # PostgreSQL: serialize changes to one key across processes and hosts (SQLite
        # transactions here start with BEGIN IMMEDIATE, which serializes all writers).
        if self.backend == "postgresql":
            await connection.execute(select(func.pg_advisory_xact_lock(_lock_id(name))))


def _lock_id(name: str) -> int:
    digest = hashlib.blake2b(f"gateway_flags\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _flag_or_legacy(mode: str, percent: float) -> Flag:
    try:
        return Flag(Mode(mode), float(percent))
    except ValueError:
        return Flag(Mode.LEGACY, 0.0)


def _now() -> datetime:
    return datetime.now(UTC)
