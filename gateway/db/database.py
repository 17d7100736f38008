"""Both engines from one URL, and the per-request session dependencies.

@router.get("/users/{user_id}")
def read_user(user_id: int, db: SyncDB): ...          # legacy: sync Session

@router.get("/users/{user_id}")
async def read_user(user_id: int, db: AsyncDB): ...   # migrated: AsyncSession
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from gateway._compat import Engine, async_session_factory
from gateway.db.errors import database_unavailable
from gateway.exceptions import DatabaseUnreachable, first_line
from gateway.settings import Settings
from gateway.urls import derive_urls, mask_url

__all__ = ["AsyncDB", "Database", "SyncDB", "get_async_session", "get_session"]

STATE_KEY = "gateway_database"

candidate_sessions: ContextVar[Callable[[], AsyncSession] | None] = ContextVar(
    "gateway_candidate_sessions", default=None
)
"""While gateway.shadow runs a candidate: where its AsyncDB sessions come from (a connection
whose outer transaction is rolled back)."""


class Database:
    """A sync engine (psycopg / pysqlite) and an async one (asyncpg / aiosqlite) on one database.

    db = Database("postgresql://app@localhost/app", pool_size=20)
    with db.sync_sessions() as session: ...
    async with db.async_sessions() as session: ...
    await db.aclose()
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        max_overflow: int = 10,
        pool_timeout: float = 30.0,
        statement_timeout_ms: int = 0,
        pool_pre_ping: bool = False,
    ) -> None:
        self.url = url
        sync_url, async_url = derive_urls(url)
        self.backend = sync_url.get_backend_name()
        sync_args: dict[str, Any] = {}
        async_args: dict[str, Any] = {}
        if self.backend == "postgresql" and statement_timeout_ms:
            sync_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
            async_args["server_settings"] = {"statement_timeout": str(statement_timeout_ms)}
        if self.backend == "sqlite":
            sync_args["timeout"] = async_args["timeout"] = 30
            # Pooled connections move between worker threads (2.x sets this itself; 1.4 not).
            sync_args["check_same_thread"] = False
        pool: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
            # A connection broken by a database restart is replaced, not handed to a request.
            "pool_pre_ping": pool_pre_ping,
        }
        sync_pool, async_pool = dict(pool), dict(pool)
        if self.backend == "sqlite":
            # Named, because SQLAlchemy 1.4 gives file databases a NullPool (2.x: QueuePool).
            sync_pool["poolclass"] = QueuePool
            async_pool["poolclass"] = AsyncAdaptedQueuePool
        self.sync_engine: Engine = create_engine(sync_url, connect_args=sync_args, **sync_pool)
        self.async_engine: AsyncEngine = create_async_engine(
            async_url, connect_args=async_args, **async_pool
        )
        if self.backend == "sqlite":
            # WAL lets the sync and the async engine read while the other writes.
            event.listen(self.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.async_engine.sync_engine, "connect", _sqlite_pragmas)
        self.sync_sessions = sessionmaker(self.sync_engine)
        self._async_sessions = async_session_factory(self.async_engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.effective_database_url,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            statement_timeout_ms=settings.statement_timeout_ms,
            pool_pre_ping=settings.pool_pre_ping,
        )

    def async_sessions(self) -> AsyncSession:
        """A new AsyncSession; inside a shadowed twin's run, one in its rolled-back
        transaction (so a twin's background task may write through it)."""
        shadow = candidate_sessions.get()
        return shadow() if shadow is not None else self._async_sessions()

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def check(self) -> None:
        """Connect once with the sync engine; raise DatabaseUnreachable with one clear line."""
        try:
            with self.sync_engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise DatabaseUnreachable(
                f"Cannot connect to the database at {self.masked_url}: {first_line(exc)}"
            ) from None

    async def aclose(self) -> None:
        """Close both pools."""
        await self.async_engine.dispose()
        self.sync_engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _database(request: Request) -> Database:
    database = getattr(request.app.state, STATE_KEY, None)
    if database is None:
        raise RuntimeError(
            "No gateway database on this app: SyncDB/AsyncDB work in apps built by "
            "gateway.Gateway; in a bare FastAPI app use your own get_db."
        )
    return database  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One sync Session per request, closed on every path (a sync generator dependency)."""
    session = _database(request).sync_sessions()
    try:
        yield session
    finally:
        try:
            session.close()  # once: a second close would start another identity map
        except Exception as exc:  # see get_async_session
            if database_unavailable(exc) is None:
                raise


async def get_async_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One AsyncSession per request (expire_on_commit=False), closed on every path."""
    shadow = candidate_sessions.get()
    if shadow is not None:
        async with shadow() as session:
            yield session
        return
    session = _database(request)._async_sessions()
    try:
        yield session
    finally:
        # Closed once (each close of an AsyncSession is a greenlet of its own). The answer
        # may be sent already: a connection lost while rolling back loses nothing (the
        # transaction went with it) and must not break that response.
        try:
            await session.close()
        except Exception as exc:
            if database_unavailable(exc) is None:
                raise


SyncDB = Annotated[Session, Depends(get_session)]
AsyncDB = Annotated[AsyncSession, Depends(get_async_session)]
