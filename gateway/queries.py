"""Short helpers for migrated code, with `first` limited the way `Query.first()` is.

`Query.first()` adds LIMIT 1; `Result.first()` does not, so a naive translation fetches
every matching row and keeps one. These helpers get that right:

    user = await first(db, select(User).where(User.name == name))   # SELECT ... LIMIT 1
    users = await fetch_all(db, select(User))
    count = await update(db, User, User.id == user_id, name="Ada")
    return await as_response(db, post, PostOut)   # relationships load as legacy's did
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar, cast

from sqlalchemy import delete as sa_delete
from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from gateway._compat.pydantic import response_validator

__all__ = ["as_response", "delete", "fetch_all", "first", "get", "one", "one_or_none", "update"]

T = TypeVar("T")


async def get(db: AsyncSession, model: type[T], ident: Any) -> T | None:
    """`db.query(Model).get(id)` -> `await get(db, Model, id)` (identity map first)."""
    return await db.get(model, ident)


async def first(db: AsyncSession, statement: Select[T] | type[T]) -> T | None:
    """The first row's entity or None, with LIMIT 1 like `Query.first()`."""
    stmt = select(statement) if isinstance(statement, type) else statement
    return (await db.execute(stmt.limit(1))).scalars().first()


async def fetch_all(db: AsyncSession, statement: Select[T] | type[T]) -> Sequence[T]:
    """Every row's entity, like `Query.all()`."""
    stmt = select(statement) if isinstance(statement, type) else statement
    return (await db.execute(stmt)).scalars().all()


async def one(db: AsyncSession, statement: Select[T]) -> T:
    """Exactly one entity; raises NoResultFound / MultipleResultsFound like `Query.one()`."""
    return (await db.execute(statement)).scalars().one()


async def one_or_none(db: AsyncSession, statement: Select[T]) -> T | None:
    """One entity or None; raises MultipleResultsFound like `Query.one_or_none()`."""
    return (await db.execute(statement)).scalars().one_or_none()


async def update(
    db: AsyncSession, model: type[Any], *where: ColumnElement[bool], **values: Any
) -> int:
    """`db.query(M).filter(...).update({...})` -> `await update(db, M, ..., name=...)`.

    Returns the matched row count, like `Query.update()`.
    """
    result = await db.execute(sa_update(model).where(*where).values(**values))
    return cast("CursorResult[Any]", result).rowcount


async def delete(db: AsyncSession, model: type[Any], *where: ColumnElement[bool]) -> int:
    """`db.query(M).filter(...).delete()` -> `await delete(db, M, ...)`; returns the row count."""
    result = await db.execute(sa_delete(model).where(*where))
    return cast("CursorResult[Any]", result).rowcount


async def as_response(db: AsyncSession, value: Any, response_model: Any) -> Any:
    """A route's answer validated into its `response_model` inside the session's greenlet,
    as FastAPI validates it (`from_attributes`): the relationships it reads load the way
    they did in the legacy route, where an AsyncSession would raise MissingGreenlet.

        return await as_response(db, await crud.post.get(db, id=1), PostOut)
    """
    validate = _validator(response_model)
    return await db.run_sync(lambda _: validate(value))


@lru_cache(maxsize=256)
def _validator(response_model: Any) -> Callable[[Any], Any]:
    return response_validator(response_model)  # pydantic 1 or 2 (gateway._compat)
