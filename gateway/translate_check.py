"""`gateway translate --check URL`: run each legacy function and its translation on a real
database and say, per function, verified / fallback / differs.

    verdicts = anyio.run(check_modules, legacy_module, translated_module, url)
    [str(v) for v in verdicts]   # ["get_user: verified (4 runs)", "page: differs: ..."]

For every argument set (generated from the signature, and from values in the tables) both
functions run in a transaction that is rolled back (their own commits release a savepoint;
PostgreSQL sequences are put back), and three things must match:

- the statements each sent, as the dialect compiled them, with their parameters (so a
  dropped LIMIT 1 or a count of the table instead of the query shows); the ORM's own
  relationship loads are left out, since eager loads replace lazy ones by design, and the
  column labels a legacy Query adds are normalised away;
- the result, after the terminal semantics (the rows, or the exception's type; a route's
  result as its `response_model` serializes it, which reads its relationships);
- every table's rows afterwards.
"""

from __future__ import annotations

import inspect
import itertools
import re
import sys
import typing
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined
from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, LegacyAPIWarning, SADeprecationWarning
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeMeta, Mapper, Session
from sqlalchemy.pool import NullPool

from gateway.exceptions import CommandError
from gateway.urls import derive_urls, mask_url

__all__ = ["Verdict", "argument_sets", "check_modules", "normalise_sql", "response_model_of"]

MAX_RUNS = 8
MISSING = object()


@dataclass
class Verdict:
    """What --check found for one function."""

    function: str
    status: str  # verified | fallback | differs
    runs: int = 0
    detail: str = ""

    def __str__(self) -> str:
        tail = f": {self.detail}" if self.detail else ""
        return f"{self.function}: {self.status} ({self.runs} runs){tail}"


@dataclass
class Run:
    result: Any = None
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


_LABEL = re.compile(r"\b(\w+)\.(\w+) AS (\w+)\b")
_PYFORMAT = re.compile(r"%\((\w+)\)s")
_NUMBERED = re.compile(r"\$\d+")
_CAST = re.compile(r"%s::[A-Z_ ]+?(?:\[\])?(?:\(\d+(?:,\s*\d+)?\))?(?=[\s,)]|$)")


def normalise_sql(sql: str, parameters: Any) -> tuple[str, tuple[Any, ...]]:
    """One statement in a form both sides share: labels of the legacy Query's
    `table_column` style removed (and references to them renamed), whitespace folded,
    named parameters turned positional in the order they appear."""
    labels: dict[str, str] = {}

    def drop(match: re.Match[str]) -> str:
        table, column, label = match.groups()
        if label in (f"{table}_{column}", column) or re.fullmatch(rf"{column}_\d+", label):
            labels[label] = column
            return f"{table}.{column}"
        return match.group(0)

    sql = _LABEL.sub(drop, sql)
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


async def check_modules(
    legacy: ModuleType,
    translated: ModuleType,
    url: str,
    *,
    fallbacks: set[str] | None = None,
    only: set[str] | None = None,
) -> list[Verdict]:
    """Run each async function of `translated` against its namesake in `legacy` on `url`."""
    sync_url, async_url = derive_urls(url)
    backend = make_url(sync_url).get_backend_name()
    sync_engine = create_engine(sync_url, poolclass=NullPool)
    async_engine = create_async_engine(async_url, poolclass=NullPool)
    if backend == "sqlite":
        for engine in (sync_engine, async_engine.sync_engine):
            # pysqlite's own transaction handling ignores SAVEPOINT; SQLAlchemy's recipe.
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
    metadata = _metadata_of(legacy)
    _require_tables(sync_engine, metadata, url)
    verdicts = []
    try:
        for name, function in vars(translated).items():
            if not inspect.iscoroutinefunction(function) or (only and name not in only):
                continue
            original = getattr(legacy, name, None)
            if original is None or getattr(function, "__module__", None) != translated.__name__:
                continue
            verdicts.append(
                await _check_function(
                    name, original, function, legacy, sync_engine, async_engine, metadata,
                    backend, name in (fallbacks or set()),
                )
            )  # fmt: skip
    finally:
        await async_engine.dispose()
        sync_engine.dispose()
    return verdicts


async def _check_function(
    name: str,
    original: Callable[..., Any],
    function: Callable[..., Any],
    legacy: ModuleType,
    sync_engine: Any,
    async_engine: Any,
    metadata: MetaData | None,
    backend: str,
    fallback: bool,
) -> Verdict:
    model = response_model_of(original)
    with sync_engine.connect() as connection:
        samples = _samples(connection, metadata)
    runs = 0
    for arguments in argument_sets(original, samples):
        with sync_engine.connect() as connection:
            sequences = _sequences(connection, backend)
        before = _run_legacy(original, arguments, sync_engine, metadata, model)
        with sync_engine.connect() as connection:
            _restore(connection, sequences)
        after = await _run_async(function, arguments, async_engine, metadata, model)
        with sync_engine.connect() as connection:
            _restore(connection, sequences)
        runs += 1
        shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        if before.result != after.result:
            found = f"legacy {_short(before.result)}, translated {_short(after.result)}"
            return Verdict(name, "differs", runs, f"result with ({shown}): {found}")
        if before.tables != after.tables:
            return Verdict(name, "differs", runs, f"table contents afterwards with ({shown})")
        if before.statements != after.statements:
            found = f"legacy {_short(before.statements)}, translated {_short(after.statements)}"
            return Verdict(name, "differs", runs, f"SQL with ({shown}): {found}")
    return Verdict(name, "fallback" if fallback else "verified", runs)


def response_model_of(function: Callable[..., Any]) -> Any:
    """The response_model of the route whose endpoint is `function`, or None."""
    module = sys.modules.get(getattr(function, "__module__", ""))
    for value in vars(module).values() if module else ():
        routes = getattr(value, "routes", None)
        for route in routes if isinstance(routes, list) else ():
            if getattr(route, "endpoint", None) is function:
                return getattr(route, "response_model", None)
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 3000 else text[:2997] + "..."


def _run_legacy(
    function: Callable[..., Any],
    arguments: dict[str, Any],
    engine: Any,
    metadata: MetaData | None,
    model: Any,
) -> Run:
    run = Run()
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        capture = _Capture(run)
        capture.attach(connection, session)
        try:
            with warnings.catch_warnings():
                # Legacy code is legacy: Query.get() and friends warn, they do not fail.
                warnings.simplefilter("ignore", LegacyAPIWarning)
                warnings.simplefilter("ignore", SADeprecationWarning)
                call = _with_session(function, arguments, session)
                run.result = _outcome(lambda: function(**call))
            if run.result[0] == "raises":
                session.rollback()  # to the savepoint, so the tables can still be read
            capture.detach(connection, session)
            run.result = _serialised(run.result, model)
            run.tables = _tables(connection, metadata)
        finally:
            capture.detach(connection, session)
            session.close()
            outer.rollback()
    return run


async def _run_async(
    function: Callable[..., Any],
    arguments: dict[str, Any],
    engine: Any,
    metadata: MetaData | None,
    model: Any,
) -> Run:
    run = Run()
    async with engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        capture = _Capture(run)
        capture.attach(connection.sync_connection, session.sync_session)
        try:
            try:
                value = await function(**_with_session(function, arguments, session))
                run.result = ("returns", value)
            except Exception as exc:
                run.result = _raised(exc)
                await session.rollback()
            capture.detach(connection.sync_connection, session.sync_session)
            run.result = _serialised(run.result, model)
            run.tables = await connection.run_sync(lambda c: _tables(c, metadata))
        finally:
            capture.detach(connection.sync_connection, session.sync_session)
            await session.close()
            await outer.rollback()
    return run


class _Capture:
    """Statements sent on one connection, less the ORM's relationship loads."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.skip = 0
        self.attached = False

    def attach(self, connection: Connection | AsyncConnection, session: Session) -> None:
        event.listen(connection, "before_cursor_execute", self.statement)
        event.listen(session, "do_orm_execute", self.orm_execute)
        self.attached = True

    def detach(self, connection: Any, session: Session) -> None:
        if self.attached:
            event.remove(connection, "before_cursor_execute", self.statement)
            event.remove(session, "do_orm_execute", self.orm_execute)
            self.attached = False

    def orm_execute(self, state: Any) -> None:
        if state.is_relationship_load:
            self.skip += 1

    def statement(self, _conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if re.match(r"\s*(SAVEPOINT|RELEASE|ROLLBACK TO)", sql):
            return
        if self.skip:
            self.skip -= 1
            return
        self.run.statements.append(normalise_sql(sql, parameters))


def _with_session(
    function: Callable[..., Any], arguments: dict[str, Any], session: Any
) -> dict[str, Any]:
    name = _session_name(function)
    return {**arguments, name: session} if name else dict(arguments)


def _session_name(function: Callable[..., Any]) -> str | None:
    for name, param in inspect.signature(function).parameters.items():
        annotation = param.annotation
        if isinstance(annotation, str):
            if annotation.split("[")[0].split(".")[-1] in ("Session", "AsyncSession", "AsyncDB"):
                return name
            continue
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        if isinstance(annotation, type) and issubclass(annotation, Session | AsyncSession):
            return name
    return None


def _outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("returns", call())
    except Exception as exc:
        return _raised(exc)


def _raised(exc: Exception) -> tuple[Any, ...]:
    kind = type(exc).__name__
    if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
        # Each driver maps its errors to its own subclass; the statement failed either way.
        return ("raises", "DBAPIError", None, None)
    if isinstance(exc, IntegrityError):
        return ("raises", kind, None, None)
    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "detail", None)
    return ("raises", kind, status, detail)


def _serialised(outcome: tuple[Any, ...], model: Any) -> Any:
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


def _tables(connection: Connection, metadata: MetaData | None) -> dict[str, list[tuple[Any, ...]]]:
    if metadata is None:
        return {}
    found = {}
    for table in metadata.sorted_tables:
        rows = connection.execute(table.select()).all()
        found[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return found


def _require_tables(engine: Any, metadata: MetaData | None, url: str) -> None:
    if metadata is None:
        return
    with engine.connect() as connection:
        missing = [
            t.name for t in metadata.sorted_tables if not sa_inspect(connection).has_table(t.name)
        ]
    if missing:
        raise CommandError(
            f"The database at {mask_url(url)} has no table {', '.join(map(repr, missing))}; "
            "--check runs both versions on a database with the module's tables (and rows)."
        )


def _metadata_of(module: ModuleType) -> MetaData | None:
    for value in vars(module).values():
        mapper = (
            sa_inspect(value, raiseerr=False) if isinstance(value, type | DeclarativeMeta) else None
        )
        if isinstance(mapper, Mapper):
            return mapper.local_table.metadata
    return None


def _sequences(connection: Connection, backend: str) -> list[tuple[str, Any, Any]]:
    """PostgreSQL sequences survive a rollback: read them to put them back."""
    if backend != "postgresql":
        return []
    rows = connection.execute(
        text("SELECT schemaname, sequencename, last_value FROM pg_sequences")
    ).all()
    return [(f'"{s}"."{n}"', value, None) for s, n, value in rows]


def _restore(connection: Connection, sequences: list[tuple[str, Any, Any]]) -> None:
    for name, value, _ in sequences:
        if value is None:
            connection.execute(text(f"SELECT setval('{name}', 1, false)"))
        else:
            connection.execute(text(f"SELECT setval('{name}', {int(value)}, true)"))
    connection.commit()


def _samples(connection: Connection, metadata: MetaData | None) -> dict[str, list[Any]]:
    """Values from the tables by column name, so generated arguments find rows; values
    found in several rows first (where `one()` and `scalar()` raise)."""
    counts: dict[str, dict[Any, int]] = {}
    if metadata is None:
        return {}
    for table in metadata.sorted_tables:
        for row in connection.execute(table.select().limit(50)).mappings():
            for key, value in row.items():
                if value is not None:
                    seen = counts.setdefault(key, {})
                    seen[value] = seen.get(value, 0) + 1
    found = {}
    for key, seen in counts.items():
        repeated = [v for v, n in seen.items() if n > 1]
        found[key] = repeated[:1] + [v for v in seen if v not in repeated[:1]]
    return found


def argument_sets(
    function: Callable[..., Any], samples: dict[str, list[Any]]
) -> Iterator[dict[str, Any]]:
    """A small, deterministic set of arguments for `function`: per parameter a value that
    finds a row, one that finds none, and the default; at most MAX_RUNS combinations."""
    choices: dict[str, list[Any]] = {}
    hints = typing.get_type_hints(function, include_extras=True)
    for name, param in inspect.signature(function).parameters.items():
        if name == _session_name(function):
            continue
        annotation = hints.get(name, param.annotation)
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        choices[name] = _values(name, annotation, param.default, samples)
    names = list(choices)
    combos = itertools.product(*(choices[n] for n in names))
    for values in itertools.islice(combos, MAX_RUNS):
        yield dict(zip(names, values, strict=True))


def _values(name: str, annotation: Any, default: Any, samples: dict[str, list[Any]]) -> list[Any]:
    plain_default = default is not inspect.Parameter.empty and not _is_fastapi_param(default)
    found: list[Any] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [_model_value(annotation, samples, index) for index in range(2)]
    keys = [name, name.split("_")[-1], "id" if name.endswith("_id") else name]
    pool = next((samples[k] for k in keys if k in samples), [])
    if annotation is int or annotation == "int":
        found = [*[v for v in pool if isinstance(v, int)][:2], 0, 2]
        found = [v for v in found if v >= 0] or [1]
    elif annotation is str or annotation == "str":
        found = [*[v for v in pool if isinstance(v, str)][:2], "no-such-value"]
    elif annotation is bool:
        found = [True, False]
    if plain_default:
        found = [default, *[v for v in found if v != default]]
    elif _is_fastapi_param(default) and getattr(default, "default", MISSING) not in (
        MISSING,
        ...,
        PydanticUndefined,
    ):
        found = [default.default, *found]
    unique: list[Any] = []
    for value in found:
        if value not in unique:
            unique.append(value)
    return unique[:3] or ([default] if plain_default else [None])


def _is_fastapi_param(value: Any) -> bool:
    return type(value).__module__.startswith("fastapi")


def _model_value(model: type[BaseModel], samples: dict[str, list[Any]], index: int) -> BaseModel:
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if annotation is int:
            data[name] = [1, 2][index]
        elif annotation is bool:
            data[name] = index == 0
        elif annotation is float:
            data[name] = 1.5
        elif not info.is_required():
            continue
        else:
            existing = [v for v in samples.get(name, []) if isinstance(v, str)]
            # The second value repeats an existing one, so unique constraints are exercised.
            data[name] = existing[0] if index == 1 and existing else f"made-{name}-{index}"
    return model.model_construct(**data)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")
