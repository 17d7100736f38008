"""The flag tables, which PostgreSQL schema holds them (their own, or where an earlier
version left them), and how the store's SQLite connections behave.

    schema = await choose_schema(engine, "gateway", masked_url="postgresql://app@db/app")

The tables go into a schema of their own (default `gateway`), out of sight of the app's
migrations. Tables an earlier version made in the search_path's schema are used where they
are, with one warning giving the statements that move them: moving them here, while workers
of that version still run, would break those workers.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "FLAGS_TABLE",
    "HISTORY_TABLE",
    "check_schema_name",
    "choose_schema",
    "flags_table",
    "history_table",
    "metadata",
    "sqlite_begin",
    "sqlite_connect",
]

log = logging.getLogger("gateway.flags")

FLAGS_TABLE = "gateway_flags"
HISTORY_TABLE = "gateway_flag_history"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

metadata = MetaData()
flags_table = Table(
    FLAGS_TABLE,
    metadata,
    Column("route_key", String(400), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("percent", Float, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(100), nullable=False),
)
history_table = Table(
    HISTORY_TABLE,
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("route_key", String(400), nullable=False, index=True),
    Column("actor", String(100), nullable=False),
    Column("old_mode", String(16), nullable=False),
    Column("old_percent", Float, nullable=False),
    Column("new_mode", String(16), nullable=False),
    Column("new_percent", Float, nullable=False),
    Column("reason", Text, nullable=False),
)


def check_schema_name(schema: str) -> str:
    """`schema`, or ValueError when it is not a plain PostgreSQL name (it is put in SQL)."""
    if not _IDENTIFIER.fullmatch(schema):
        raise ValueError(
            f"schema {schema!r} is not a plain PostgreSQL name; expected a letter or _, "
            "then letters, digits or _ (at most 63), e.g. gateway"
        )
    return schema


async def choose_schema(engine: AsyncEngine, wanted: str, *, masked_url: str) -> str:
    """`wanted`, unless only the search_path's schema has the flag tables: that one then."""
    current_schema = func.current_schema()
    query = select(
        current_schema,
        func.to_regclass(f'"{check_schema_name(wanted)}".{FLAGS_TABLE}').is_not(None),
        func.to_regclass(func.quote_ident(current_schema) + f".{FLAGS_TABLE}").is_not(None),
    )
    async with engine.connect() as connection:
        current, in_wanted, in_current = (await connection.execute(query)).one()
    if in_wanted or not in_current or current == wanted:
        return wanted
    moves = "; ".join(
        [f"CREATE SCHEMA IF NOT EXISTS {wanted}"]
        + [
            f"ALTER TABLE {current}.{table} SET SCHEMA {wanted}"
            for table in (FLAGS_TABLE, HISTORY_TABLE)
        ]
    )
    log.warning(
        "flag store: the flag tables are in schema %r of %s, where earlier versions made "
        "them, and are used there; to keep them out of the app's migrations, move them "
        "when no older gateway runs: %s",
        current,
        masked_url,
        moves,
    )
    return str(current)


def sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """SQLite's `connect` event for the store's engine: WAL, and transactions begun by us."""
    # Take over transaction control so writes can BEGIN IMMEDIATE (see sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Switching to WAL needs an exclusive lock and SQLite does not wait for it with the
        # busy timeout, so workers racing on a fresh file retry briefly. Once WAL, it stays.
        for attempt in range(50):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except Exception as exc:  # the aiosqlite adapter re-raises sqlite3's errors
                if "locked" not in str(exc):
                    raise
                if attempt == 49:
                    raise
                time.sleep(0.02)
    finally:
        cursor.close()


def sqlite_begin(connection: Connection) -> None:
    """SQLite's `begin` event: a write (execution option gateway_write) takes the lock at once."""
    write = connection.get_execution_options().get("gateway_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
