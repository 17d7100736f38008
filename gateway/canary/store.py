"""Where the canary judge's counts and plans are shared: the gateway's database, or memory.

Every worker writes its per-route, per-arm counts every judge_interval seconds as one row of
`gateway_judge_counts`; one worker, the judge, reads them all. On PostgreSQL the judge is the
worker that holds a session advisory lock (another takes over within an interval when it
dies or loses its connection); on SQLite, one host, every process judges and their
decisions are idempotent. `gateway_canaries` holds each canary's judge switch, its rollout
plan, its step and why it waits, which every worker reads for GET /routes.

    store = SqlJudgeStore("postgresql://app@db/app")      # tables in schema "gateway"
    await store.prepare()
    await store.write_counts([CountRow(0, "w1", "GET /users", 12, counts_async, counts_legacy)])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from gateway._compat import UTC
from gateway.canary.rollout import RolloutPlan
from gateway.canary.sequential import ArmCounts
from gateway.urls import derive_urls

__all__ = ["CanaryState", "CountRow", "JudgeStore", "MemoryJudgeStore", "SqlJudgeStore"]

metadata = MetaData()
counts_table = Table(
    "gateway_judge_counts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("worker", String(100), nullable=False),
    Column("route_key", String(400), nullable=False),
    Column("version", BigInteger, nullable=False),  # the flag version the counts were made on
    Column("async_counts", Text, nullable=False),
    Column("legacy_counts", Text, nullable=False),
)
canaries_table = Table(
    "gateway_canaries",
    metadata,
    Column("route_key", String(400), primary_key=True),
    Column("judge", Boolean, nullable=False),
    Column("steps", Text, nullable=False),  # "" without a rollout plan
    Column("hold", Float, nullable=False),
    Column("step", Integer, nullable=False),
    Column("step_since", DateTime(timezone=True), nullable=True),
    Column("status", String(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("version", BigInteger, nullable=False),  # the flip this state was written for
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class CountRow:
    """One worker's counts of one route over one interval (`id` is 0 until stored)."""

    id: int
    worker: str
    route: str
    version: int
    async_: ArmCounts
    legacy: ArmCounts


@dataclass(frozen=True, slots=True)
class CanaryState:
    """A route's judge switch, rollout plan and step, and the judge's latest word on it.

    status: "judged" (watched), "off" (judge disabled for this canary), "rolling out",
    "done", "rolled back" or "stopped".
    """

    route: str
    judge: bool = True
    plan: RolloutPlan | None = None
    step: int = 0
    step_since: datetime | None = None
    status: str = "judged"
    note: str = ""
    version: int = 0  # the flag version (history id) of the flip it was written for

    def with_(self, **changes: Any) -> CanaryState:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """What GET /routes shows per route under "canary"."""
        plan = self.plan
        return {
            "judge": self.judge,
            "status": self.status,
            "note": self.note,
            "rollout": None
            if plan is None
            else {
                "steps": list(plan.steps),
                "hold_seconds": plan.hold,
                "step": self.step + 1,
                "percent": plan.steps[self.step],
                "since": _iso(self.step_since),
            },
        }


class JudgeStore(Protocol):
    """Shared counts, plans and the judge's election: SqlJudgeStore or MemoryJudgeStore."""

    async def prepare(self) -> None: ...

    async def write_counts(self, rows: list[CountRow]) -> None: ...

    async def read_counts(self, after: int, limit: int = 5000) -> list[CountRow]:
        """Rows with an id above `after`, oldest first."""

    async def prune(self, before: datetime) -> None: ...

    async def canaries(self) -> dict[str, CanaryState]: ...

    async def save(self, state: CanaryState) -> None: ...

    async def elect(self) -> bool:
        """Whether this process is the judge now (may take over from one that left)."""

    async def aclose(self) -> None: ...


class MemoryJudgeStore:
    """A JudgeStore in this process only (with a MemoryFlagStore): this process judges."""

    def __init__(self) -> None:
        self._rows: list[CountRow] = []
        self._canaries: dict[str, CanaryState] = {}

    async def prepare(self) -> None:
        return None

    async def write_counts(self, rows: list[CountRow]) -> None:
        for row in rows:
            self._rows.append(replace(row, id=len(self._rows) + 1))

    async def read_counts(self, after: int, limit: int = 5000) -> list[CountRow]:
        return self._rows[after : after + limit]

    async def prune(self, before: datetime) -> None:
        return None  # ids are positions here; a test's rows are few

    async def canaries(self) -> dict[str, CanaryState]:
        return dict(self._canaries)

    async def save(self, state: CanaryState) -> None:
        self._canaries[state.route] = state

    async def elect(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class SqlJudgeStore:
    """The judge's tables beside the flag tables (same database, same schema)."""

    def __init__(self, url: str, *, schema: str | None = "gateway", timeout: float = 5.0) -> None:
        _, async_url = derive_urls(url)
        self.backend = async_url.get_backend_name()
        self.schema = schema if self.backend == "postgresql" else None
        args: dict[str, Any] = {"timeout": timeout if self.backend == "postgresql" else 30}
        if self.backend == "postgresql":
            args["command_timeout"] = timeout * 2
        engine = create_async_engine(
            async_url,
            connect_args=args,
            poolclass=AsyncAdaptedQueuePool,  # SQLAlchemy 1.4 gives SQLite files a NullPool
            pool_size=2,
            max_overflow=1,
            pool_pre_ping=True,
        )
        self._engine = engine
        self.engine: AsyncEngine = (
            engine.execution_options(schema_translate_map={None: self.schema})
            if self.schema
            else engine
        )
        self._lock: AsyncConnection | None = None

    async def prepare(self) -> None:
        async with self.engine.begin() as connection:
            if self.backend == "postgresql":
                await connection.execute(select(func.pg_advisory_xact_lock(_lock_id("tables"))))
            if self.schema:
                quoted = connection.dialect.identifier_preparer.quote_schema(self.schema)
                await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
            await connection.run_sync(metadata.create_all)

    async def write_counts(self, rows: list[CountRow]) -> None:
        if not rows:
            return
        now = datetime.now(UTC)
        values = [
            {
                "at": now,
                "worker": row.worker,
                "route_key": row.route,
                "version": row.version,
                "async_counts": json.dumps(row.async_.as_json()),
                "legacy_counts": json.dumps(row.legacy.as_json()),
            }
            for row in rows
        ]
        async with self.engine.begin() as connection:
            await connection.execute(counts_table.insert(), values)

    async def read_counts(self, after: int, limit: int = 5000) -> list[CountRow]:
        query = (
            select(counts_table)
            .where(counts_table.c.id > after)
            .order_by(counts_table.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            found = (await connection.execute(query)).all()
        return [
            CountRow(
                int(r.id),
                r.worker,
                r.route_key,
                int(r.version),
                ArmCounts.from_json(json.loads(r.async_counts)),
                ArmCounts.from_json(json.loads(r.legacy_counts)),
            )
            for r in found
        ]

    async def prune(self, before: datetime) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(counts_table).where(counts_table.c.at < before))

    async def canaries(self) -> dict[str, CanaryState]:
        async with self.engine.connect() as connection:
            found = (await connection.execute(select(canaries_table))).all()
        states = {}
        for r in found:
            plan = None
            if r.steps:
                plan = RolloutPlan.checked(tuple(json.loads(r.steps)), float(r.hold))
            since = r.step_since
            if since is not None and since.tzinfo is None:
                since = since.replace(tzinfo=UTC)  # SQLite keeps no zone
            states[r.route_key] = CanaryState(
                r.route_key, bool(r.judge), plan, int(r.step), since, r.status, r.note,
                int(r.version),
            )  # fmt: skip
        return states

    async def save(self, state: CanaryState) -> None:
        plan = state.plan
        values = {
            "judge": state.judge,
            "steps": json.dumps(list(plan.steps)) if plan else "",
            "hold": plan.hold if plan else 0.0,
            "step": state.step,
            "step_since": state.step_since,
            "status": state.status,
            "note": state.note[:2000],
            "version": state.version,
            "updated_at": datetime.now(UTC),
        }
        where = canaries_table.c.route_key == state.route
        async with self.engine.begin() as connection:
            updated = await connection.execute(canaries_table.update().where(where).values(values))
            if updated.rowcount == 0:
                insert = canaries_table.insert().values(route_key=state.route, **values)
                await connection.execute(insert)

    async def elect(self) -> bool:
        if self.backend != "postgresql":
            return True
        try:
            if self._lock is None:
                connection = await self._engine.connect()
                got = await connection.scalar(select(func.pg_try_advisory_lock(_lock_id("judge"))))
                await connection.commit()  # the session lock stays; no transaction left open
                if not got:
                    await connection.close()
                    return False
                self._lock = connection
            else:
                await self._lock.scalar(select(1))  # still connected, so still holding it
                await self._lock.commit()
            return True
        except Exception:
            await self._drop_lock()
            raise

    async def _drop_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            with contextlib.suppress(Exception):  # the connection is gone either way
                await lock.invalidate()  # never back to the pool with the lock held

    async def aclose(self) -> None:
        await self._drop_lock()
        await self._engine.dispose()


def _lock_id(name: str) -> int:
    digest = hashlib.blake2b(f"gateway_judge\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None
