"""Where shadow results are shared by every worker and host: the gateway's database.

    store = ShadowStore("postgresql://app@db/app")
    await store.prepare()
    await store.save(worker, counts, examples)    # each worker, every few seconds
    await store.load(examples_per_route=20)       # {route: {"counts": {...}, "examples": [...]}}

Each worker writes its own running totals (one row per route and outcome, replaced), so a
reader sums them; examples are appended and trimmed to the newest few per route. The tables
sit beside the flag tables and hold no request or response bodies unless the operator turned
that on, and never headers, cookies or query strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
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
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from gateway.flags.schema import check_schema_name
from gateway.urls import derive_urls, mask_url

__all__ = ["ShadowStore"]

metadata = MetaData()
counts_table = Table(
    "gateway_shadow_counts",
    metadata,
    Column("worker", String(200), primary_key=True),
    Column("route", String(500), primary_key=True),
    Column("outcome", String(40), primary_key=True),
    Column("n", BigInteger, nullable=False),
)
examples_table = Table(
    "gateway_shadow_examples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("worker", String(200), nullable=False),
    Column("route", String(500), nullable=False, index=True),
    Column("body", Text, nullable=False),  # the example as JSON
)


class ShadowStore:
    """Shadow counts and examples in the database, on a one-connection pool of its own."""

    def __init__(self, url: str, *, keep: int = 20, schema: str = "gateway") -> None:
        """On PostgreSQL the tables go into `schema`, beside the flag tables (out of sight
        of the app's migrations); SQLite has no schemas."""
        _, async_url = derive_urls(url)
        self.masked_url = mask_url(url)
        self.keep = keep
        self._pool = create_async_engine(
            async_url,
            poolclass=AsyncAdaptedQueuePool,  # SQLAlchemy 1.4 gives SQLite files a NullPool
            pool_size=1,
            max_overflow=1,
            pool_timeout=5.0,
            pool_pre_ping=True,
        )
        self.schema = check_schema_name(schema) if self._pool.dialect.name == "postgresql" else None
        self.engine: AsyncEngine = (
            self._pool.execution_options(schema_translate_map={None: self.schema})
            if self.schema
            else self._pool
        )

    async def prepare(self) -> None:
        async with self.engine.begin() as connection:
            if self.schema:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            await connection.run_sync(metadata.create_all)

    async def save(
        self,
        worker: str,
        counts: Mapping[str, Mapping[str, int]],
        examples: Iterable[Mapping[str, Any]],
    ) -> None:
        """Replace this worker's totals and append its new examples, in one transaction."""
        examples = list(examples)
        async with self.engine.begin() as connection:
            await connection.execute(delete(counts_table).where(counts_table.c.worker == worker))
            rows = [
                {"worker": worker, "route": route, "outcome": outcome, "n": n}
                for route, by_outcome in counts.items()
                for outcome, n in by_outcome.items()
                if n
            ]
            if rows:
                await connection.execute(counts_table.insert(), rows)
            if examples:
                await connection.execute(
                    examples_table.insert(),
                    [
                        {"worker": worker, "route": e["route"], "body": json.dumps(e)}
                        for e in examples
                    ],
                )
                for route in {e["route"] for e in examples}:
                    await self._trim(connection, route)

    async def _trim(self, connection: Any, route: str) -> None:
        newest = (
            select(examples_table.c.id)
            .where(examples_table.c.route == route)
            .order_by(examples_table.c.id.desc())
            .limit(self.keep)
            .subquery()
        )
        await connection.execute(
            delete(examples_table).where(
                examples_table.c.route == route,
                examples_table.c.id.not_in(select(newest.c.id)),
            )
        )

    async def load(self) -> dict[str, dict[str, Any]]:
        """Every route's totals over all workers, and its newest examples first."""
        found: dict[str, dict[str, Any]] = {}
        async with self.engine.connect() as connection:
            totals = await connection.execute(
                select(
                    counts_table.c.route, counts_table.c.outcome, func.sum(counts_table.c.n)
                ).group_by(counts_table.c.route, counts_table.c.outcome)
            )
            for route, outcome, n in totals:
                found.setdefault(route, {"counts": {}, "examples": []})["counts"][outcome] = int(n)
            examples = await connection.execute(
                select(examples_table.c.route, examples_table.c.body).order_by(
                    examples_table.c.id.desc()
                )
            )
            for route, body in examples:
                found.setdefault(route, {"counts": {}, "examples": []})["examples"].append(
                    json.loads(body)
                )
        return found

    async def aclose(self) -> None:
        await self._pool.dispose()
