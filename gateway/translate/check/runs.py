"""Running one function of `gateway translate --check`, legacy or translated, inside a
transaction that is rolled back: its own commits release a savepoint, PostgreSQL sequences
are put back, and what it sent, returned and left in the tables is recorded.

    backend, sync_engine, async_engine = engines("postgresql://app@db/app")
    before = run_legacy(get_user, {"user_id": 1}, sync_engine, metadata, model=None)
    after = await run_async(translated.get_user, {"user_id": 1}, async_engine, metadata, None)
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import LegacyAPIWarning, SADeprecationWarning
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gateway.translate.check.arguments import RowOf, session_name
from gateway.translate.check.compare import (
    normalise_sql,
    outcome_of,
    raised,
    serialised,
    table_rows,
)
from gateway.urls import derive_urls

__all__ = ["Run", "engines", "read_sequences", "restore_sequences", "run_async", "run_legacy"]


@dataclass
class Run:
    """What one function did: its result, the statements it sent, the tables afterwards."""

    result: Any = None
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def parts(self) -> dict[str, Any]:
        """What is compared, by name (noise is named by these keys)."""
        return {"result": self.result, "tables": self.tables, "statements": self.statements}


def engines(url: str) -> tuple[str, Engine, AsyncEngine]:
    """The backend's name and unpooled sync and async engines for `url`."""
    sync_url, async_url = derive_urls(url)
    backend = make_url(sync_url).get_backend_name()
    sync_engine = create_engine(sync_url, poolclass=NullPool)
    async_engine = create_async_engine(async_url, poolclass=NullPool)
    if backend == "sqlite":
        for engine in (sync_engine, async_engine.sync_engine):
            # pysqlite's own transaction handling ignores SAVEPOINT; SQLAlchemy's recipe.
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
    return backend, sync_engine, async_engine


def run_legacy(
    function: Callable[..., Any],
    arguments: dict[str, Any],
    engine: Any,
    metadata: MetaData | None,
    model: Any,
    session_parameter: str | None = None,
) -> Run:
    """Call the legacy `function` on a Session in a transaction that is rolled back (an
    `async def` on the sync session is driven to its end: it awaits nothing real)."""
    run = Run()
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        capture = _Capture(run)
        capture.attach(connection, session)
        try:
            with warnings.catch_warnings():
                # Legacy code is legacy: Query.get() and friends warn, they do not fail.
                warnings.simplefilter("ignore", LegacyAPIWarning)
                warnings.simplefilter("ignore", SADeprecationWarning)
                call = _with_session(function, arguments, session, session_parameter)
                call = {k: _row(session.get, v) for k, v in call.items()}
                run.result = outcome_of(lambda: _driven(function(**call)))
            if run.result[0] == "raises":
                session.rollback()  # to the savepoint, so the tables can still be read
            capture.detach(connection, session)
            run.result = serialised(run.result, model)
            run.tables = table_rows(connection, metadata)
        finally:
            capture.detach(connection, session)
            session.close()
            outer.rollback()
    return run


async def run_async(
    function: Callable[..., Any],
    arguments: dict[str, Any],
    engine: Any,
    metadata: MetaData | None,
    model: Any,
    session_parameter: str | None = None,
) -> Run:
    """Await the translated `function` on an AsyncSession in a transaction rolled back."""
    run = Run()
    async with engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        capture = _Capture(run)
        capture.attach(connection.sync_connection, session.sync_session)
        try:
            try:
                call = _with_session(function, arguments, session, session_parameter)
                for key, value in call.items():
                    if isinstance(value, RowOf):
                        call[key] = await session.get(value.model, value.key)
                value = await function(**call)
                run.result = ("returns", value)
            except Exception as exc:
                run.result = raised(exc)
                await session.rollback()
            capture.detach(connection.sync_connection, session.sync_session)
            run.result = serialised(run.result, model)
            run.tables = await connection.run_sync(lambda c: table_rows(c, metadata))
        finally:
            capture.detach(connection.sync_connection, session.sync_session)
            await session.close()
            await outer.rollback()
    return run


class _Capture:
    """Statements sent on one connection, less the ORM's relationship loads."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.skip = 0
        self.attached = False

    def attach(self, connection: Connection | AsyncConnection, session: Session) -> None:
        event.listen(connection, "before_cursor_execute", self.statement)
        event.listen(session, "do_orm_execute", self.orm_execute)
        self.attached = True

    def detach(self, connection: Any, session: Session) -> None:
        if self.attached:
            event.remove(connection, "before_cursor_execute", self.statement)
            event.remove(session, "do_orm_execute", self.orm_execute)
            self.attached = False

    def orm_execute(self, state: Any) -> None:
        if state.is_relationship_load:
            self.skip += 1

    def statement(self, _conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if re.match(r"\s*(SAVEPOINT|RELEASE|ROLLBACK TO)", sql):
            return
        if self.skip:
            self.skip -= 1
            return
        self.run.statements.append(normalise_sql(sql, parameters))


def _row(get: Callable[..., Any], value: Any) -> Any:
    return get(value.model, value.key) if isinstance(value, RowOf) else value


def _with_session(
    function: Callable[..., Any], arguments: dict[str, Any], session: Any, name: str | None
) -> dict[str, Any]:
    name = name or session_name(function)
    return {**arguments, name: session} if name else dict(arguments)


def _driven(value: Any) -> Any:
    """The value of a legacy `async def`'s coroutine that awaits nothing (it calls the sync
    session): run to its end in one step; one that awaits real I/O cannot run here."""
    if not inspect.iscoroutine(value):
        return value
    try:
        value.send(None)
    except StopIteration as done:
        return done.value
    value.close()
    raise RuntimeError("the legacy async def awaits real I/O; the check drives sync code only")


def read_sequences(connection: Connection, backend: str) -> list[tuple[str, Any, Any]]:
    """PostgreSQL sequences survive a rollback: read them to put them back."""
    if backend != "postgresql":
        return []
    rows = connection.execute(
        text("SELECT schemaname, sequencename, last_value FROM pg_sequences")
    ).all()
    return [(f'"{s}"."{n}"', value, None) for s, n, value in rows]


def restore_sequences(connection: Connection, sequences: list[tuple[str, Any, Any]]) -> None:
    """Put the sequences back as `read_sequences` found them."""
    for name, value, _ in sequences:
        if value is None:
            connection.execute(text(f"SELECT setval('{name}', 1, false)"))
        else:
            connection.execute(text(f"SELECT setval('{name}', {int(value)}, true)"))
    connection.commit()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")
