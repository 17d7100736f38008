"""Which relationships a route's `response_model` reads from the ORM objects it returns.

    relationship_paths(UserWithItems, User)   # {("items",), ("items", "owner")}

FastAPI validates a returned ORM object into the response model `from_attributes`, reading
every field by name: a field named like a relationship of the mapped class reads it (a
lazy load, unless it is loaded), and a nested model reads the target's relationships too.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, RelationshipProperty

__all__ = ["model_in", "relationship_paths", "relationship_target"]


def relationship_paths(
    model: type[BaseModel], mapped: type, seen: frozenset[type] = frozenset()
) -> set[tuple[str, ...]]:
    """Every relationship path `model` reads from an instance of `mapped`."""
    found: set[tuple[str, ...]] = set()
    if model in seen:
        return found  # a model that nests itself: its first level is enough
    for name, info in model.model_fields.items():
        for attribute in {name, info.alias or name, _alias(info.validation_alias) or name}:
            target = relationship_target(mapped, attribute)
            if target is None:
                continue
            found.add((attribute,))
            inner = model_in(info.annotation)
            if inner is not None:
                for path in relationship_paths(inner, target, seen | {model}):
                    found.add((attribute, *path))
    return found


def _alias(alias: Any) -> str | None:
    return alias if isinstance(alias, str) else None


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model in an annotation, unwrapping `list[...]` and `Optional[...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def relationship_target(mapped: type, name: str) -> type | None:
    """The class a relationship `name` of `mapped` loads, or None if it is not one."""
    mapper: Any = sa_inspect(mapped, raiseerr=False)
    if not isinstance(mapper, Mapper):
        return None
    prop = mapper.relationships.get(name) if name in mapper.relationships else None
    if not isinstance(prop, RelationshipProperty):
        return None
    return prop.mapper.class_
