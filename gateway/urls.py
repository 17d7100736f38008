"""Database URL handling: one URL gives a sync and an async driver, and is masked for logs.

The async driver is always asyncpg / aiosqlite. The sync driver is the one the URL names
(`postgresql+psycopg2://...` stays psycopg2), else the one the installed SQLAlchemy speaks
best: psycopg 3 on SQLAlchemy 2.x, psycopg2 on 1.4 (see `gateway._compat`).
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from gateway._compat import SYNC_POSTGRES_DRIVER

__all__ = ["derive_urls", "mask_url"]

_DEFAULT_DRIVERS = {
    "postgresql": (SYNC_POSTGRES_DRIVER, "postgresql+asyncpg"),
    "sqlite": ("sqlite+pysqlite", "sqlite+aiosqlite"),
}
_ASYNC_DRIVERS = {"asyncpg", "aiosqlite", "psycopg_async"}
_ACCEPTED = "postgresql://user:password@host:port/dbname or sqlite:///path/to/file.db"


def derive_urls(url: str) -> tuple[URL, URL]:
    """Return (sync URL, async URL) for one database URL.

    >>> [u.drivername for u in derive_urls("postgresql+psycopg2://app@db/app")]
    ['postgresql+psycopg2', 'postgresql+asyncpg']
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL; expected {_ACCEPTED}") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":  # the libpq spelling; SQLAlchemy knows it as postgresql
        backend = "postgresql"
    if backend not in _DEFAULT_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}; expected {_ACCEPTED}")
    sync_driver, async_driver = _DEFAULT_DRIVERS[backend]
    named = parsed.drivername.partition("+")[2]
    if named and named not in _ASYNC_DRIVERS:
        sync_driver = f"{backend}+{named}"  # the app's own choice of sync driver is kept
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError(
            "an in-memory SQLite database cannot be shared by the sync and async engines; "
            "expected sqlite:///path/to/file.db"
        )
    return parsed.set(drivername=sync_driver), parsed.set(drivername=async_driver)


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ***; non-URLs come back unchanged."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return str(url)
    return parsed.render_as_string(hide_password=True)
