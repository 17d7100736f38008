"""Which errors mean "the database cannot serve now", decided once for every driver.

    database_unavailable(error)   # Cause.UNREACHABLE, POOL_TIMEOUT or BUSY; None otherwise

Connection failures of psycopg 3 and 2, asyncpg and sqlite, seen wrapped by SQLAlchemy or
raw: refused or lost connections, `connection_invalidated`, SQLSTATE class 08 and 57P01-03,
OSError from a driver, pool timeouts, a locked SQLite file. A plain SQL error (a constraint,
a syntax error, a statement timeout) is None: it keeps its normal behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from sqlalchemy import exc

from gateway._compat import StrEnum

__all__ = ["Cause", "database_unavailable"]

# PostgreSQL SQLSTATEs that mean "no usable connection": class 08 (connection exception),
# admin/crash shutdown and "starting up" (57P01-57P03), too many connections (53300).
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")
# Raw driver errors can reach a route unwrapped (asyncpg raises ConnectionRefusedError from
# connect); an OSError counts only when it was raised inside one of these packages.
_DATABASE_PACKAGES = ("asyncpg", "psycopg", "psycopg2", "sqlalchemy", "aiosqlite", "sqlite3")
_SQLITE_UNAVAILABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR")
_SQLITE_BUSY = ("SQLITE_BUSY",)
_CHAIN_LIMIT = 8  # links followed through .orig, __cause__ and __context__


class Cause(StrEnum):
    """Why a request could not get a working database connection (the metric's label)."""

    UNREACHABLE = "database_unreachable"
    POOL_TIMEOUT = "pool_timeout"
    BUSY = "database_busy"

    def sentence(self, retry_after: int) -> str:
        """The one sentence a 503 body gives, without URL, host or driver text."""
        what = {
            Cause.UNREACHABLE: "The database cannot be reached",
            Cause.POOL_TIMEOUT: "No database connection became free in time",
            Cause.BUSY: "The database is locked by another writer",
        }[self]
        return f"{what}, so this request was not served; retry in {retry_after} s."


def database_unavailable(error: BaseException) -> Cause | None:
    """Why `error` means the database cannot serve now, or None for any other error.

    database_unavailable(OperationalError(... Connection refused))  -> Cause.UNREACHABLE
    database_unavailable(IntegrityError(... duplicate key))         -> None
    """
    wrapped = isinstance(error, exc.SQLAlchemyError)
    for link in _chain(error):
        if isinstance(link, exc.TimeoutError):  # QueuePool's "QueuePool limit ... reached"
            return Cause.POOL_TIMEOUT
        if isinstance(link, exc.DisconnectionError):
            return Cause.UNREACHABLE
        if isinstance(link, exc.DBAPIError) and link.connection_invalidated:
            return Cause.UNREACHABLE
        cause = _driver_cause(link)
        if cause is not None:
            return cause
        if isinstance(link, OSError) and (wrapped or _raised_in_database_code(link)):
            return Cause.UNREACHABLE
    return None


def _driver_cause(error: BaseException) -> Cause | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(state, str) and (state.startswith("08") or state in _UNAVAILABLE_STATES):
        return Cause.UNREACHABLE
    kind, module = type(error).__name__, type(error).__module__.partition(".")[0]
    if module in ("psycopg", "psycopg2") and kind == "OperationalError" and state is None:
        return Cause.UNREACHABLE  # no SQLSTATE: the server never answered (refused, closed)
    if module == "asyncpg" and kind == "ConnectionDoesNotExistError":
        return Cause.UNREACHABLE
    name = getattr(error, "sqlite_errorname", None)
    if isinstance(name, str) and name.startswith(_SQLITE_UNAVAILABLE):
        return Cause.UNREACHABLE
    if isinstance(name, str) and name.startswith(_SQLITE_BUSY):
        return Cause.BUSY
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < _CHAIN_LIMIT:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        orig = getattr(link, "orig", None)
        pending += [e for e in (orig, link.__cause__, link.__context__) if e is not None]


def _raised_in_database_code(error: BaseException) -> bool:
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.partition(".")[0] in _DATABASE_PACKAGES:
            return True
        tb = tb.tb_next
    return False
