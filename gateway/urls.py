"""Database URL handling: one URL gives a sync and an async driver, and is masked for logs."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["derive_urls", "mask_url"]

_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "postgresql+asyncpg"),
    "postgres": ("postgresql+psycopg", "postgresql+asyncpg"),
    "sqlite": ("sqlite+pysqlite", "sqlite+aiosqlite"),
}
_ACCEPTED = "postgresql://user:password@host:port/dbname or sqlite:///path/to/file.db"


def derive_urls(url: str) -> tuple[URL, URL]:
    """Return (sync URL, async URL) for one database URL.

    >>> [u.drivername for u in derive_urls("postgresql://app@db/app")]
    ['postgresql+psycopg', 'postgresql+asyncpg']
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL; expected {_ACCEPTED}") from None
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database {backend!r}; expected {_ACCEPTED}")
    sync_driver, async_driver = _DRIVERS[backend]
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
