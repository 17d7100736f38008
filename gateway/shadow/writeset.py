"""What one implementation wrote for one request, as the database saw it, and what it committed.

    capture = WriteCapture()
    info.writes = capture        # the side's RequestInfo: gateway.db.events records into it
    ...                          # the route runs; its session flushes and commits
    capture.committed            # [Write("users", "update", (("name", "Ada"),), (5,), 1)]

Statements are recorded by the dialect-level execute events (gateway.db.events calls
`record`), so legacy Query code, select() code, bulk `query.update()` and ORM flushes are all
seen the same way; SQL text that may write (`text()`, `exec_driver_sql`) is kept as its
statement and parameters. They count as written when the Session commits (`after_commit`) and are
dropped when it rolls back; SQLAlchemy's Session events are installed once per process and
do nothing outside a captured request. The keys INSERTs generated are read from the flushed
objects, so gateway.shadow.compare can match them between the two sides.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from gateway.db.isolation import OWN, is_control
from gateway.request_info import current_request
from gateway.shadow.compare import SQL, Outcome, Write

__all__ = ["WriteCapture", "install_session_events"]

_installed = False
_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.S)
_WORDS = re.compile(r"[A-Z_]+")
_READS = frozenset({"SELECT", "SHOW", "EXPLAIN", "VALUES", "TABLE", "PRAGMA"})
_DML = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})


def _capture() -> WriteCapture | None:
    info = current_request.get()
    return info.writes if info is not None else None


class WriteCapture:
    """DML statements of one side of one request, split into committed and pending."""

    __slots__ = (
        "committed",
        "discarded",
        "generated",
        "pending",
        "rows_fetched",
        "statements",
        "unlimited_selects",
    )

    def __init__(self) -> None:
        self.committed: list[Write] = []
        self.pending: list[Write] = []
        self.discarded = 0  # written, then rolled back
        self.generated: list[Any] = []
        self.statements = 0  # SQL statements, without the savepoints of shadow mode
        self.rows_fetched: int | None = 0
        self.unlimited_selects = 0

    def record(self, context: Any, cursor: Any) -> None:
        """One executed statement (from the dialect's execute event)."""
        compiled = getattr(context, "compiled", None)
        if compiled is None and _is_savepoint(getattr(context, "statement", "")):
            return
        if context.execution_options.get(OWN):  # the shadow sandbox's own
            return
        self.statements += 1
        if context.isinsert or context.isupdate or context.isdelete:
            self.pending.extend(_writes(context, compiled, cursor))
            return
        statement = getattr(compiled, "statement", None)
        if compiled is None or isinstance(statement, TextClause):
            sql = statement.text if isinstance(statement, TextClause) else context.statement
            if _writes_as_text(sql):
                self.pending.extend(_sql_writes(context, sql, cursor))
                return
        if statement is None or getattr(statement, "is_select", False) is False:
            return
        if getattr(statement, "_limit_clause", None) is None:
            self.unlimited_selects += 1
        rowcount = getattr(cursor, "rowcount", -1)
        if rowcount is None or rowcount < 0:
            self.rows_fetched = None  # this driver does not say (SQLite)
        elif self.rows_fetched is not None:
            self.rows_fetched += rowcount

    def fill(self, outcome: Outcome) -> None:
        """Copy what was captured into `outcome`."""
        outcome.writes = list(self.committed)
        outcome.uncommitted = self.discarded + len(self.pending)
        outcome.generated = list(self.generated)
        outcome.statements = self.statements
        outcome.rows_fetched = self.rows_fetched
        outcome.unlimited_selects = self.unlimited_selects

    def commit(self) -> None:
        self.committed.extend(self.pending)
        self.pending.clear()

    def rollback(self) -> None:
        self.discarded += len(self.pending)
        self.pending.clear()


def _is_savepoint(statement: str) -> bool:
    head = statement.lstrip()[:20].upper()
    return head.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))


def _writes_as_text(sql: str) -> bool:
    """Whether SQL text may change rows: anything but a read or transaction control."""
    words = _WORDS.findall(_NOISE.sub(" ", sql).upper())
    if not words or words[0] in _READS or is_control(sql) is not None:
        return False
    return words[0] != "WITH" or any(w in _DML for w in words)


def _sql_writes(context: Any, sql: str, cursor: Any) -> list[Write]:
    """SQL text: compared by its statement and parameters (names dropped: the drivers'
    paramstyles differ)."""
    statement = " ".join(sql.split())  # kept as the "table": it holds no user data
    rows = getattr(cursor, "rowcount", -1)
    if context.compiled is not None:
        sets: Any = context.compiled_parameters or [{}]
    else:
        sets = context.parameters or [()]
    found = []
    for params in sets:
        values = (
            tuple(v for _, v in sorted(params.items()))
            if isinstance(params, dict)
            else tuple(params)
        )
        found.append(Write(statement, SQL, (), values, rows))
    return found


def _writes(context: Any, compiled: Any, cursor: Any) -> list[Write]:
    statement = getattr(compiled, "statement", None)
    table = getattr(getattr(statement, "table", None), "name", "?")
    columns = set(getattr(getattr(statement, "table", None), "c", {}).keys())
    op = "insert" if context.isinsert else "update" if context.isupdate else "delete"
    rowcount = getattr(cursor, "rowcount", -1)
    found = []
    for params in context.compiled_parameters or [{}]:
        values = tuple(sorted((k, v) for k, v in params.items() if k in columns))
        where = tuple(v for k, v in sorted(params.items()) if k not in columns)
        if op == "delete":
            values = ()
        if op == "insert":
            found.append(Write(table, op, values))
        else:
            found.append(Write(table, op, values, where, rowcount))
    return found


def _after_flush(session: Session, _context: Any) -> None:
    capture = _capture()
    if capture is None:
        return
    # After the flush the new objects carry their generated keys (still in session.new).
    for obj in session.new:
        identity = session.identity_key(instance=obj)
        if identity is not None:
            capture.generated.extend(identity[1])


def _after_commit(_session: Session) -> None:
    capture = _capture()
    if capture is not None:
        capture.commit()


def _after_rollback(_session: Session, _previous: Any) -> None:
    capture = _capture()
    if capture is not None:
        capture.rollback()


def install_session_events() -> None:
    """Listen on every Session of the process (sync, and the one under AsyncSession)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", _after_rollback)
    _installed = True
