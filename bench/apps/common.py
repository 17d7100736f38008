"""What the bare reference apps share: settings from the environment, engines, the lifespan.

They read the gateway's own GATEWAY_* variables (not gateway.Settings: a bare app knows
nothing of the gateway), so every case runs with the same pool and threadpool.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from legacy_routes.models import User
from legacy_routes.schemas import UserOut

__all__ = [
    "AppSettings",
    "User",
    "UserOut",
    "async_engine",
    "db_dependency",
    "lifespan",
    "sync_engine",
]


@dataclass(frozen=True)
class AppSettings:
    """The knobs every case shares, read from GATEWAY_* like the gateway reads them."""

    database_url: str
    pool_size: int = 20
    max_overflow: int = 10
    pool_timeout: float = 30.0
    threadpool_size: int = 40

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        env = os.environ if environ is None else environ
        url = env.get("GATEWAY_DATABASE_URL", "")
        if not url.startswith(("postgresql://", "postgres://")):
            raise RuntimeError(
                f"GATEWAY_DATABASE_URL={url!r}: the bench apps expect a postgresql:// URL "
                "(scripts/bench sets it to its throwaway database)."
            )
        return cls(
            database_url=url,
            pool_size=int(env.get("GATEWAY_POOL_SIZE", cls.pool_size)),
            max_overflow=int(env.get("GATEWAY_MAX_OVERFLOW", cls.max_overflow)),
            pool_timeout=float(env.get("GATEWAY_POOL_TIMEOUT", cls.pool_timeout)),
            threadpool_size=int(env.get("GATEWAY_THREADPOOL_SIZE", cls.threadpool_size)),
        )

    def pool(self) -> dict[str, Any]:
        return {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.pool_timeout,
        }


def sync_engine(settings: AppSettings) -> Engine:
    """psycopg 3, the driver the gateway's sync engine uses."""
    url = make_url(settings.database_url).set(drivername="postgresql+psycopg")
    return create_engine(url, **settings.pool())


def db_dependency(engine: Engine) -> Callable[[], Iterator[Session]]:
    """A legacy app's `get_db`: a sync Session per request from `engine`, closed after."""
    session_local = sessionmaker(engine)

    def get_db() -> Iterator[Session]:
        db = session_local()
        try:
            yield db
        finally:
            db.close()

    return get_db


def async_engine(settings: AppSettings) -> AsyncEngine:
    """asyncpg, the driver the gateway's async engine uses."""
    url = make_url(settings.database_url).set(drivername="postgresql+asyncpg")
    return create_async_engine(url, **settings.pool())


def lifespan(
    settings: AppSettings, dispose: Callable[[], Any], *, gc_freeze: bool = False
) -> Callable[[FastAPI], Any]:
    """Size anyio's default thread limiter (what `def` routes run under) as the gateway does.

    With `gc_freeze`, `gc.freeze()` once startup is done and `gc.unfreeze()` at shutdown:
    what the gateway's GATEWAY_GC_FREEZE (its default) does, written out here because a
    bare app knows nothing of the gateway.
    """

    @asynccontextmanager
    async def span(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
        if gc_freeze:
            gc.freeze()
        try:
            yield
        finally:
            if gc_freeze:
                gc.unfreeze()
            result = dispose()
            if result is not None:
                await result

    return span
