"""What `gateway translate --check` compares, in a form both sides share: each statement
as the dialect compiled it (labels, paramstyles and casts of the two drivers folded), the
result after the terminal semantics (the rows, or the exception's type), and the tables.

    normalise_sql("SELECT users.id AS users_id FROM users WHERE users.id = $1", (7,))
    # ("SELECT users.id FROM users WHERE users.id = %s", (7,))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import MetaData
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapper

__all__ = ["normalise_sql", "outcome_of", "raised", "serialised", "table_rows"]

# table.column AS label, each part maybe quoted ("user".id AS user_id on PostgreSQL).
_LABEL = re.compile(r'(?<![\w"])("?)(\w+)\1\.("?)(\w+)\3 AS ("?)(\w+)\5(?![\w"])')
_PYFORMAT = re.compile(r"%\((\w+)\)s")
_NUMBERED = re.compile(r"\$\d+")
_CAST = re.compile(r"%s::[A-Z_ ]+?(?:\[\])?(?:\(\d+(?:,\s*\d+)?\))?(?=[\s,)]|$)")


def normalise_sql(sql: str, parameters: Any) -> tuple[str, tuple[Any, ...]]:
    """One statement in a form both sides share: labels of the legacy Query's
    `table_column` style removed (and references to them renamed), whitespace folded,
    named parameters turned positional in the order they appear."""
    labels: dict[str, str] = {}

    def drop(match: re.Match[str]) -> str:
        q1, table, q2, column, _q3, label = match.groups()
        if label in (f"{table}_{column}", column) or re.fullmatch(rf"{column}_\d+", label):
            labels[label] = column
            return f"{q1}{table}{q1}.{q2}{column}{q2}"
        return match.group(0)

    sql = _LABEL.sub(drop, sql).replace("%%", "%")  # pyformat drivers escape a literal %
    for label, column in labels.items():
        sql = re.sub(rf"\.{label}\b", f".{column}", sql)
    values: tuple[Any, ...]
    if (
        isinstance(parameters, list | tuple)
        and parameters
        and isinstance(parameters[0], dict | list | tuple)
    ):
        # executemany: one parameter set per row.
        rows = [normalise_sql(sql, row) for row in parameters]
        return rows[0][0], tuple(row[1] for row in rows)
    if isinstance(parameters, dict):
        names = _PYFORMAT.findall(sql)
        values = tuple(parameters.get(n) for n in names)
        sql = _PYFORMAT.sub("%s", sql)
    elif isinstance(parameters, list | tuple):
        values = tuple(parameters)
    else:
        values = ()
    # The sync and async drivers of one database differ in paramstyle only (?, %s, $1).
    sql = _NUMBERED.sub("%s", sql).replace("?", "%s")
    # ...and in the casts they add to parameters (asyncpg casts every one, psycopg some).
    sql = _CAST.sub("%s", sql)
    return " ".join(sql.split()), tuple(_plain(v) for v in values)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return type(value).__name__  # clocks differ between the two runs
    return value


def outcome_of(call: Callable[[], Any]) -> tuple[Any, ...]:
    """`("returns", value)` of `call()`, or what it raised, as `raised` gives it."""
    try:
        return ("returns", call())
    except Exception as exc:
        return raised(exc)


def raised(exc: Exception) -> tuple[Any, ...]:
    """An exception as both sides can share it: its type, and an HTTP error's status and detail."""
    kind = type(exc).__name__
    if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
        # Each driver maps its errors to its own subclass; the statement failed either way.
        return ("raises", "DBAPIError", None, None)
    if isinstance(exc, IntegrityError):
        return ("raises", kind, None, None)
    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "detail", None)
    return ("raises", kind, status, detail)


def serialised(outcome: tuple[Any, ...], model: Any) -> Any:
    """A result as data: through the route's `response_model` when it has one."""
    if outcome[0] != "returns":
        return outcome
    value = outcome[1]
    if model is not None and not _is_response(value):
        try:
            adapter = TypeAdapter(model)
            validated = adapter.validate_python(value, from_attributes=True)
            return ("returns", adapter.dump_python(validated, mode="json"))
        except Exception as exc:
            return ("serialising raises", type(exc).__name__)
    try:
        return ("returns", _plain_value(value))
    except Exception as exc:
        return ("reading the result raises", type(exc).__name__)


def _is_response(value: Any) -> bool:
    return type(value).__module__.startswith(("starlette", "fastapi"))


def _plain_value(value: Any) -> Any:
    """Results as data: ORM objects by class and loaded column values, rows as tuples."""
    if _is_response(value):
        return (
            type(value).__name__,
            getattr(value, "status_code", None),
            bytes(getattr(value, "body", b"")),
        )
    mapper = sa_inspect(type(value), raiseerr=False) if not isinstance(value, type) else None
    if isinstance(mapper, Mapper):
        state = sa_inspect(value)
        columns = {
            attr.key: _plain_value(getattr(value, attr.key))
            for attr in mapper.column_attrs
            if attr.key not in state.unloaded or not state.expired
        }
        return (type(value).__name__, columns)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "Row":
        return [_plain_value(v) for v in value]
    if isinstance(value, Decimal | float):
        return float(value)
    return value


def table_rows(
    connection: Connection, metadata: MetaData | None
) -> dict[str, list[dict[str, str]]]:
    """Every table's rows, sorted, each as {column: repr of its value}."""
    if metadata is None:
        return {}
    found = {}
    for table in metadata.sorted_tables:
        rows = sorted(tuple(map(repr, row)) for row in connection.execute(table.select()))
        keys = list(table.columns.keys())
        found[table.name] = [dict(zip(keys, row, strict=True)) for row in rows]
    return found
