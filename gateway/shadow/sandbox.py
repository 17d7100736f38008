"""The rolled-back connections shadowed twins run on, from an engine of their own.

    sandbox = Sandbox(url, concurrency=4)
    connection = await sandbox.open(snapshot=True, pin=True)   # in a transaction, snapshot taken
    ...                                                         # the twin runs on it, sealed
    await sandbox.discard(connection, within=0.5)               # rolled back, whatever happened

The engine is guarded (gateway.db.isolation.guard_engine): its connections never commit.
`discard` never raises and never waits longer than `within`: a rollback that fails or hangs
(a dead connection, a restarted server, a killed backend) invalidates the connection instead,
which closes it, and a server rolls back what a closed connection left open.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway._compat import timeout
from gateway.db.isolation import OWN, guard_engine
from gateway.exceptions import first_line

__all__ = ["PoolBusy", "Sandbox"]

log = logging.getLogger("gateway.shadow")

# A statement that makes the transaction take its snapshot now (SQLite: a read of a table).
_PIN = {"postgresql": "SELECT 1", "sqlite": "SELECT 1 FROM sqlite_master LIMIT 1"}


class PoolBusy(Exception):
    """Every connection of the sandbox's pool is in use."""


class Sandbox:
    """A small engine apart from the application's, lent out one rolled-back connection at
    a time."""

    def __init__(self, url: URL, *, concurrency: int) -> None:
        self.url = url
        self.concurrency = concurrency
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            args: dict[str, Any] = {"pool_timeout": 0.5, "pool_size": self.concurrency}
            if self.url.get_backend_name() == "sqlite":
                args = {}
            self._engine = create_async_engine(self.url, max_overflow=0, **args)
            guard_engine(self._engine.sync_engine)
            if self.url.get_backend_name() == "sqlite":
                # pysqlite's own transaction handling ignores SAVEPOINT; SQLAlchemy's recipe.
                event.listen(self._engine.sync_engine, "connect", _sqlite_connect)
                event.listen(self._engine.sync_engine, "begin", _sqlite_begin)
        return self._engine

    async def open(self, *, snapshot: bool, pin: bool = False) -> AsyncConnection:
        """A connection in a transaction that will be rolled back; `snapshot`: one snapshot
        for the whole transaction (REPEATABLE READ on PostgreSQL; SQLite's always are),
        `pin`: taken now rather than at the twin's first statement."""
        try:
            connection = await self.engine.connect()
        except SQLAlchemyTimeout as exc:
            raise PoolBusy() from exc
        try:
            name = connection.dialect.name
            if (snapshot or pin) and name == "postgresql":
                await connection.execution_options(isolation_level="REPEATABLE READ")
            await connection.begin()
            if pin and name in _PIN:
                await connection.exec_driver_sql(_PIN[name], execution_options={OWN: True})
        except BaseException:
            await self.discard(connection, within=1.0)
            raise
        return connection

    async def discard(self, connection: AsyncConnection, *, within: float) -> None:
        """Roll back and return `connection`; invalidate it if that fails or takes longer
        than `within` seconds. Never raises."""
        try:
            async with timeout(max(within, 0.001)):
                await connection.rollback()
                await connection.close()
            return
        except Exception as exc:
            log.info("shadow: discarding a twin's connection (%s)", first_line(exc) or "slow")
        try:
            async with timeout(max(within, 1.0)):
                await connection.invalidate()
                await connection.close()
        except Exception as exc:
            log.warning("shadow: could not close a twin's connection: %s", first_line(exc))

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN", execution_options={OWN: True})
