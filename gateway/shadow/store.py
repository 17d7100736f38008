"""Where shadow results are shared by every worker and host: the gateway's database.

    store = ShadowStore("postgresql://app@db/app")
    await store.prepare()
    await store.save(worker, rows, examples)   # each worker, every few seconds -> resets
    await store.load({"GET /users": "3f2a9c41d0e7"})   # {route: {"version", "counts", "examples"}}
    await store.reset("GET /users")            # every worker's comparisons of a route: gone

Each worker writes its own running totals (one row per route, twin version and outcome,
replaced), so a reader sums them; examples are appended and trimmed to the newest few per
route. Rows carry the twin's version (gateway.shadow.versions) and the route's reset
generation: a reader counts only the version it asks for (else the newest written) and the
current generation, so a redeployed twin or a reset route starts at 0 even while workers
that have not heard of it yet still write their old totals. The tables sit beside the flag
tables and hold no written values or bodies unless the operator turned that on, and never
headers, cookies or query strings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
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
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from gateway.flags.schema import check_schema_name
from gateway.urls import derive_urls, mask_url

__all__ = ["ShadowStore", "Totals"]

# Tables of earlier gateways, without versions; their examples may hold written values.
RETIRED = ("gateway_shadow_counts", "gateway_shadow_examples")
metadata = MetaData()
counts_table = Table(
    "gateway_shadow_totals",
    metadata,
    Column("worker", String(200), primary_key=True),
    Column("route", String(500), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("outcome", String(40), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("saved", Float, nullable=False),  # time.time() of the write: the newest version
)
examples_table = Table(
    "gateway_shadow_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("worker", String(200), nullable=False),
    Column("route", String(500), nullable=False, index=True),
    Column("version", String(64), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("body", Text, nullable=False),  # the example as JSON
)
resets_table = Table(
    "gateway_shadow_resets",
    metadata,
    Column("route", String(500), primary_key=True),
    Column("generation", Integer, nullable=False),
)


@dataclass(frozen=True)
class Totals:
    """One worker's counts of one route, for one twin version and reset generation."""

    route: str
    version: str
    generation: int
    counts: Mapping[str, int]


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
            for retired in RETIRED:
                name = f'"{self.schema}"."{retired}"' if self.schema else f'"{retired}"'
                await connection.execute(text(f"DROP TABLE IF EXISTS {name}"))

    async def save(
        self, worker: str, totals: Iterable[Totals], examples: Iterable[Mapping[str, Any]]
    ) -> dict[str, int]:
        """Replace this worker's totals and append its new examples (each with its "route",
        "version" and "generation"), in one transaction; return every reset route's
        generation, so the worker can start those routes again from 0."""
        examples = list(examples)
        saved = time.time()
        async with self.engine.begin() as connection:
            await connection.execute(delete(counts_table).where(counts_table.c.worker == worker))
            rows = [
                {
                    "worker": worker,
                    "route": t.route,
                    "version": t.version,
                    "generation": t.generation,
                    "outcome": outcome,
                    "n": n,
                    "saved": saved,
                }
                for t in totals
                for outcome, n in t.counts.items()
                if n
            ]
            if rows:
                await connection.execute(counts_table.insert(), rows)
            if examples:
                await connection.execute(
                    examples_table.insert(),
                    [
                        {
                            "worker": worker,
                            "route": e["route"],
                            "version": e["version"],
                            "generation": e["generation"],
                            "body": json.dumps(e["example"]),
                        }
                        for e in examples
                    ],
                )
                for route in {e["route"] for e in examples}:
                    await self._trim(connection, route)
            return await _generations(connection)

    async def _trim(self, connection: AsyncConnection, route: str) -> None:
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

    async def load(self, versions: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        """Every route's totals over all workers and its newest examples first, for the twin
        version in `versions` (a route missing there: the version written last) and the
        route's current reset generation: {route: {"version", "counts", "examples"}}."""
        versions = versions or {}
        async with self.engine.connect() as connection:
            generations = await _generations(connection)
            totals = await connection.execute(
                select(
                    counts_table.c.route,
                    counts_table.c.version,
                    counts_table.c.generation,
                    counts_table.c.outcome,
                    func.sum(counts_table.c.n),
                    func.max(counts_table.c.saved),
                ).group_by(
                    counts_table.c.route,
                    counts_table.c.version,
                    counts_table.c.generation,
                    counts_table.c.outcome,
                )
            )
            by_version: dict[str, dict[str, dict[str, Any]]] = {}
            for route, version, generation, outcome, n, saved in totals:
                if generation != generations.get(route, 0):
                    continue
                found = by_version.setdefault(route, {}).setdefault(
                    version, {"version": version, "counts": {}, "examples": [], "saved": 0.0}
                )
                found["counts"][outcome] = int(n)
                found["saved"] = max(found["saved"], float(saved))
            wanted = {
                route: max(found.values(), key=lambda v: v["saved"])["version"]
                for route, found in by_version.items()
            }
            wanted.update({route: version for route, version in versions.items() if version})
            examples = await connection.execute(
                select(
                    examples_table.c.route,
                    examples_table.c.version,
                    examples_table.c.generation,
                    examples_table.c.body,
                ).order_by(examples_table.c.id.desc())
            )
            shown: dict[str, list[Any]] = {}
            for route, version, generation, body in examples:
                current = generation == generations.get(route, 0)
                if current and wanted.setdefault(route, version) == version:
                    shown.setdefault(route, []).append(json.loads(body))
        chosen: dict[str, Any] = {}
        for route, version in wanted.items():
            found = by_version.get(route, {}).get(version, {})
            chosen[route] = {
                "version": version,
                "counts": found.get("counts", {}),
                "examples": shown.get(route, []),
            }
        return chosen

    async def generations(self) -> dict[str, int]:
        """How many times each route was reset (routes never reset are not listed)."""
        async with self.engine.connect() as connection:
            return await _generations(connection)

    async def reset(self, route: str) -> int:
        """Forget every worker's comparisons of `route`; its new reset generation."""
        async with self.engine.begin() as connection:
            generation = (await _generations(connection)).get(route, 0) + 1
            changed = await connection.execute(
                update(resets_table)
                .where(resets_table.c.route == route)
                .values(generation=generation)
            )
            if not changed.rowcount:
                await connection.execute(
                    resets_table.insert(), [{"route": route, "generation": generation}]
                )
            await connection.execute(delete(counts_table).where(counts_table.c.route == route))
            await connection.execute(delete(examples_table).where(examples_table.c.route == route))
        return generation

    async def aclose(self) -> None:
        await self._pool.dispose()


async def _generations(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(select(resets_table.c.route, resets_table.c.generation))
    return {route: int(generation) for route, generation in rows}
