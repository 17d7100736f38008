"""The arguments `gateway translate --check` calls both functions with: per parameter a
value that finds a row (taken from the tables), one that finds none, and the default.

    samples = table_samples(connection, metadata)        # {"email": ["ada@x.org", ...], ...}
    list(argument_sets(get_user_by_email, samples))     # [{"email": "ada@x.org"}, ...]
"""

from __future__ import annotations

import inspect
import itertools
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from sqlalchemy import MetaData
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, Session

__all__ = ["MAX_RUNS", "RowOf", "argument_sets", "session_name", "table_samples"]

MAX_RUNS = 8
MISSING = object()


def table_samples(connection: Connection, metadata: MetaData | None) -> dict[str, list[Any]]:
    """Values from the tables by column name, so generated arguments find rows; values
    found in several rows first (where `one()` and `scalar()` raise)."""
    counts: dict[str, dict[Any, int]] = {}
    if metadata is None:
        return {}
    for table in metadata.sorted_tables:
        for row in connection.execute(table.select().limit(50)).mappings():
            for key, value in row.items():
                if value is not None:
                    for name in (key, f"{table.name}.{key}"):  # by column, and by table
                        seen = counts.setdefault(name, {})
                        seen[value] = seen.get(value, 0) + 1
    found = {}
    for key, seen in counts.items():
        repeated = [v for v, n in seen.items() if n > 1]
        found[key] = repeated[:1] + [v for v in seen if v not in repeated[:1]]
    return found


@dataclass(frozen=True)
class RowOf:
    """A row the function is given, loaded by its own session when it runs
    (`update(db, db_obj=<User 1>)`): `session.get(model, key)`."""

    model: type
    key: Any

    def __repr__(self) -> str:
        return f"<{self.model.__name__} {self.key!r}>"


def argument_sets(
    function: Callable[..., Any],
    samples: dict[str, list[Any]],
    session: str | None = None,
    type_arguments: dict[Any, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """A small, deterministic set of arguments for `function`: per parameter a value that
    finds a row, one that finds none, and the default; at most MAX_RUNS combinations.
    `session` names the session parameter (an unannotated one is known by the twin's);
    `type_arguments` say what the TypeVars of a generic class's method stand for."""
    choices: dict[str, list[Any]] = {}
    hints = typing.get_type_hints(function, include_extras=True)
    for name, param in inspect.signature(function).parameters.items():
        if name in (session, session_name(function)):
            continue
        annotation = hints.get(name, param.annotation)
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        annotation = _plain(annotation, type_arguments or {})
        choices[name] = _values(name, annotation, param.default, samples)
    names = list(choices)
    combos = itertools.product(*(choices[n] for n in names))
    for values in itertools.islice(combos, MAX_RUNS):
        yield dict(zip(names, values, strict=True))


def _plain(annotation: Any, type_arguments: dict[Any, Any]) -> Any:
    """A TypeVar as the class binds it; `X | None` as X (None is tried as a default)."""
    annotation = type_arguments.get(annotation, annotation)
    if isinstance(annotation, typing.TypeVar):
        annotation = annotation.__bound__ or Any
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return _plain(options[0], type_arguments)
    return annotation


def _values(name: str, annotation: Any, default: Any, samples: dict[str, list[Any]]) -> list[Any]:
    plain_default = default is not inspect.Parameter.empty and not _is_fastapi_param(default)
    found: list[Any] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [_model_value(annotation, samples, index) for index in range(2)]
    mapper = sa_inspect(annotation, raiseerr=False) if isinstance(annotation, type) else None
    if isinstance(mapper, Mapper) and len(mapper.primary_key) == 1:
        keys_found = samples.get(f"{mapper.local_table.name}.{mapper.primary_key[0].name}", [])
        return [RowOf(annotation, key) for key in keys_found[:2]] or [None]
    keys = [name, name.split("_")[-1], "id" if name.endswith("_id") else name]
    pool = next((samples[k] for k in keys if k in samples), [])
    if annotation in (Any, inspect.Parameter.empty) and pool:
        annotation = type(pool[0])  # `id: Any`: values like the column's
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
        annotation = _plain(info.annotation, {})
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


def session_name(function: Callable[..., Any]) -> str | None:
    """The parameter that takes the session (`Session`, `AsyncSession` or `AsyncDB`)."""
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
