"""Which PostgreSQL schema holds the flag tables: their own, or where an earlier version left them.

    schema = await choose_schema(engine, "gateway", masked_url="postgresql://app@db/app")

The tables go into a schema of their own (default `gateway`), out of sight of the app's
migrations. Tables an earlier version made in the search_path's schema are used where they
are, with one warning giving the statements that move them: moving them here, while workers
of that version still run, would break those workers.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["FLAGS_TABLE", "HISTORY_TABLE", "check_schema_name", "choose_schema"]

log = logging.getLogger("gateway.flags")

FLAGS_TABLE = "gateway_flags"
HISTORY_TABLE = "gateway_flag_history"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


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
