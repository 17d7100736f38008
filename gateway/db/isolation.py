"""Shadow isolation: while a twin runs sealed, nothing it does through SQLAlchemy can commit.

    install_isolation()                   # once per process, before serving
    guard_engine(shadow_engine)           # the shadow's own engine never commits
    with sealed(Seal(read_only=True)) as seal:
        ...                               # the twin runs on a connection it was handed
    seal.attempts                         # ["COMMIT sent as SQL at app.py:12", ...]

Three doors, each watched by a SQLAlchemy event:

- every pool of the process (the gateway's one `checkout` listener, gateway.db.checkout, which
  the outage watch shares): inside a seal no connection can be checked out, so an engine,
  sessionmaker or connection of the twin's own, the gateway's `Database`, a `begin()` on
  another engine and `engine.raw_connection()` fail before they reach the database;
- the shadow engine's `commit`, `prepare_twophase` and `commit_twophase`: its connections never
  commit, sealed or not;
- the shadow engine's `before_cursor_execute`: transaction control sent as SQL (`COMMIT`,
  `ROLLBACK`, `END`, `BEGIN`, `SAVEPOINT`, `RELEASE`, `SET TRANSACTION`, ...), and on a sealed
  read of SQLite any write (it would hold the database's one write lock), are refused.

Each refusal raises ShadowEscape in the twin and is recorded in its Seal, even when the twin
catches the exception. The seal is a ContextVar, so tasks the twin spawns and threads started
with `asyncio.to_thread` or anyio carry it (for good: an attempt after the comparison is
reported late). Outside a seal the whole cost is one ContextVar read per pool checkout, in a
listener the gateway has anyway (the outage watch's).

Outside the guarantee: raw driver connections (`asyncpg.connect`, `psycopg.connect`,
`sqlite3.connect`), the driver connection under the shadow's own (`driver_connection`),
threads started without the context (`threading.Thread`, `loop.run_in_executor`) and other
processes: SQLAlchemy never sees what they do.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import event
from sqlalchemy.sql.elements import TextClause

from gateway._compat import Engine
from gateway.db.checkout import install_checkout, refuser
from gateway.exceptions import ShadowEscape

__all__ = ["OWN", "Seal", "guard_engine", "install_isolation", "is_control", "sealed"]

OWN = "gateway_shadow_own"
"""Execution option marking the sandbox's own statements (SQLite's BEGIN): never refused."""

_seal: ContextVar[Seal | None] = refuser  # the checkout listener's: one read per checkout
# Comments, quoted strings and identifiers, dollar-quoted bodies: never statement heads.
_NOISE = re.compile(
    r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$", re.S
)
_CONTROL = (
    ("COMMIT",),
    ("ROLLBACK",),
    ("END",),
    ("ABORT",),
    ("BEGIN",),
    ("START", "TRANSACTION"),
    ("SAVEPOINT",),
    ("RELEASE",),
    ("PREPARE", "TRANSACTION"),
    ("SET", "TRANSACTION"),
    ("SET", "SESSION", "CHARACTERISTICS"),
)
_SQLITE_WRITES = frozenset(
    {"INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "CREATE", "DROP", "ALTER", "VACUUM"}
)
_OURS = (
    str(Path(__file__).resolve().parents[1]),
    *("sqlalchemy", "asyncio", "anyio", "greenlet", "starlette", "fastapi", "contextlib"),
    *("concurrent", "threading"),
)


class Seal:
    """What one sealed run of a twin attempted; `read_only` refuses writes on SQLite."""

    __slots__ = ("attempts", "closed", "on_late", "read_only")

    _OWN_CONNECTION = (
        "a connection of its own (an engine or sessionmaker of its own, the gateway's "
        "Database, or begin() on another engine)"
    )

    def __init__(
        self, *, read_only: bool = False, on_late: Callable[[str], None] | None = None
    ) -> None:
        self.attempts: list[str] = []
        self.read_only = read_only
        self.closed = False  # the run was compared: later attempts go to on_late
        self.on_late = on_late

    def refuse_checkout(self) -> NoReturn:
        """A pool checkout inside the seal (gateway.db.checkout's listener calls this)."""
        self.refuse(self._OWN_CONNECTION)

    def refuse(self, what: str) -> NoReturn:
        where = _caller()
        attempt = f"{what} at {where}" if where else what
        if self.closed and self.on_late is not None:
            self.on_late(attempt)
        else:
            self.attempts.append(attempt)
        raise ShadowEscape(
            f"Refused in shadow mode: {attempt}. A twin runs in a transaction that is "
            "rolled back; it may not commit, end that transaction or open connections "
            "of its own."
        )


@contextmanager
def sealed(seal: Seal) -> Iterator[Seal]:
    """Run the block (and whatever it spawns) under `seal`."""
    token = _seal.set(seal)
    try:
        yield seal
    finally:
        _seal.reset(token)


def is_control(statement: str) -> str | None:
    """The transaction-control statement in `statement` (any of several), else None.

    >>> is_control("select 1; /* x */ commit")
    'COMMIT'
    """
    for part in _NOISE.sub(" ", statement).split(";"):
        words = tuple(part.upper().split()[:3])
        for control in _CONTROL:
            if words[: len(control)] == control:
                return " ".join(control)
    return None


def install_isolation() -> None:
    """Refuse pool checkouts inside a seal, process-wide (idempotent; before serving)."""
    install_checkout()


def guard_engine(engine: Engine) -> None:
    """Make `engine` (the shadow's own) never commit, and refuse control SQL in a seal."""
    event.listen(engine, "commit", _commit)
    event.listen(engine, "prepare_twophase", _two_phase)
    event.listen(engine, "commit_twophase", _two_phase)
    event.listen(engine, "before_cursor_execute", _before_cursor_execute)


def _refuse(what: str) -> NoReturn:
    seal = _seal.get()
    if seal is None:  # unsealed, yet on the shadow engine: refused all the same
        raise ShadowEscape(f"Refused in shadow mode: {what}.")
    seal.refuse(what)


def _commit(_connection: Any) -> None:
    _refuse("a commit of the shadow's connection")


def _two_phase(_connection: Any, *_args: Any) -> None:
    _refuse("a two-phase commit of the shadow's connection")


def _before_cursor_execute(
    _connection: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
) -> None:
    seal = _seal.get()
    if seal is None or context.execution_options.get(OWN):
        return
    compiled = context.compiled
    textual = compiled is None or isinstance(compiled.statement, TextClause)
    control = is_control(statement) if textual else None
    if control is not None:
        seal.refuse(f"{control} sent as SQL")
    if seal.read_only and context.dialect.name == "sqlite":
        head = statement.lstrip().split(None, 1)[:1]
        if (
            context.isinsert
            or context.isupdate
            or context.isdelete
            or (textual and head and head[0].upper() in _SQLITE_WRITES)
        ):
            seal.refuse(
                f"a write ({head[0].upper() if head else '?'}) during a shadowed read on "
                "SQLite (it would hold the database's write lock)"
            )


def _caller() -> str:
    """file:line of the innermost frame in the application's code, if any."""
    for frame in reversed(traceback.extract_stack()[:-3]):
        if not any(part in frame.filename for part in _OURS):
            return f"{Path(frame.filename).name}:{frame.lineno}"
    return ""
