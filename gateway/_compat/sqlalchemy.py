"""SQLAlchemy 1.4, 2.0 and 2.1: the few names that moved, and the sync driver each supports."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import sessionmaker

from gateway._compat.versions import SQLALCHEMY

__all__ = [
    "SYNC_POSTGRES_DRIVER",
    "Engine",
    "async_session_factory",
    "autobegins",
    "lazy_load_of",
    "pool_capacity",
    "time_pool_checkout",
]

# `from sqlalchemy import Engine` is 2.0+; `sqlalchemy.engine.Engine` is the same class on 1.4.
Engine = Engine

# psycopg 3 has a SQLAlchemy dialect from 2.0 on; 1.4 speaks to PostgreSQL through psycopg2.
SYNC_POSTGRES_DRIVER = "postgresql+psycopg" if SQLALCHEMY >= (2, 0, 0) else "postgresql+psycopg2"


def async_session_factory(engine: AsyncEngine, **options: Any) -> Any:
    """A factory of AsyncSessions: `async_sessionmaker` (2.0+), or sessionmaker on 1.4."""
    try:
        from sqlalchemy.ext.asyncio import async_sessionmaker
    except ImportError:  # pragma: no cover - SQLAlchemy 1.4
        return sessionmaker(engine, class_=AsyncSession, **options)  # type: ignore[call-overload]
    return async_sessionmaker(engine, **options)


if SQLALCHEMY >= (2, 0, 0):

    def autobegins(connection: Any) -> bool:
        """False for the dialect's first-connect queries (server version and the like), run
        on a connection made with `_allow_autobegin=False`."""
        return bool(connection._allow_autobegin)

else:  # pragma: no cover - SQLAlchemy 1.4

    def autobegins(connection: Any) -> bool:
        """False for the dialect's first-connect queries: on 1.4 the one connection made
        with `_allow_revalidate=False` (kept name-mangled as `__can_reconnect`)."""
        return bool(getattr(connection, "_Connection__can_reconnect", True))


def lazy_load_of(context: Any) -> str | None:
    """The relationship a statement loads lazily ("User.items"), from its execution context;
    None for any other statement.

    The ORM's lazy loader runs its SELECT with `_sa_orm_load_options` naming the object read
    (`_lazy_loaded_from`, 1.4 to 2.1) and a statement whose compile options carry the load
    path: what `ORMExecuteState.lazy_loaded_from` and `.loader_strategy_path` read, without a
    `do_orm_execute` listener (with any, every ORM execution of the process builds an
    ORMExecuteState and runs its pre-execution twice: ~30,000 instructions a request).
    """
    options = context.execution_options.get("_sa_orm_load_options")
    if options is None or getattr(options, "_lazy_loaded_from", None) is None:
        return None
    compiled = context.compiled
    compile_options = getattr(getattr(compiled, "statement", None), "_compile_options", None)
    path = getattr(compile_options, "_current_path", None)
    steps = getattr(path, "path", ())
    return str(steps[-1]) if steps else "(unknown)"


def time_pool_checkout(pool: Any, observe: Callable[[float], Any]) -> bool:
    """Report how long each checkout from `pool` waited; False if it cannot be timed.

    The pool has no "before checkout" event, so its `_do_get` (waiting for a free
    connection, or opening one; the same name on 1.4-2.1) is timed. Idempotent.
    """
    original = getattr(pool, "_do_get", None)
    if original is None or getattr(original, "_gateway_timed", False):
        return False

    def timed_get() -> Any:
        started = time.perf_counter()
        try:
            return original()
        finally:
            observe(time.perf_counter() - started)

    timed_get._gateway_timed = True  # type: ignore[attr-defined]
    pool._do_get = timed_get
    return True


def pool_capacity(engine: Engine) -> int | None:
    """How many connections `engine`'s pool lends at once: size + max_overflow of a
    QueuePool; None for a pool without that limit (NullPool, StaticPool, an unbounded
    overflow). `_max_overflow` has the same name on 1.4-2.1 and no public reader.
    """
    pool: Any = engine.pool
    size, overflow = getattr(pool, "size", None), getattr(pool, "_max_overflow", None)
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return None
    return int(size()) + overflow
