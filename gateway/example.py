"""The example app: the seed's users service, legacy and migrated, behind one gateway.

uvicorn --factory gateway.example:create_app
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from gateway.app import Gateway
from gateway.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "SEED_ITEMS",
    "SEED_USERS",
    "create_app",
    "create_gateway",
    "prepare_database",
    "vector_unavailable",
]

SEED_USERS = [
    ("ada", "ada@example.com"),
    ("grace", "grace@example.com"),
    ("alan", "alan@example.com"),
    ("edsger", "edsger@example.com"),
    ("barbara", "barbara@example.com"),
]

SEED_ITEMS = [
    ("apple", [1.0, 0.0, 0.0]),
    ("pear", [0.9, 0.1, 0.0]),
    ("plum", [0.7, 0.3, 0.1]),
    ("carrot", [0.0, 1.0, 0.0]),
    ("leek", [0.1, 0.9, 0.2]),
    ("salt", [0.0, 0.0, 1.0]),
]


def prepare_database(gateway: Gateway, seed_count: int = 0) -> None:
    """Create the example tables if missing; seed them when empty and the database is embedded."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from legacy_routes.models import Base, User

    with _schema_transaction(gateway) as connection:
        Base.metadata.create_all(connection)
        if not (gateway.settings.embedded or seed_count):
            return
        with Session(bind=connection) as session:  # joins the locked transaction
            if session.scalar(select(func.count()).select_from(User)):
                return
            rows = list(SEED_USERS)
            more = range(len(rows) + 1, seed_count + 1)
            rows += [(f"user{i}", f"user{i}@example.com") for i in more]
            session.add_all(User(name=name, email=email) for name, email in rows)
            session.flush()


SCHEMA_LOCK = 7_406_179  # advisory lock key: one worker process at a time prepares the schema


@contextmanager
def _schema_transaction(gateway: Gateway) -> Iterator[Connection]:
    """One transaction that, on PostgreSQL, holds an advisory lock until it commits.

    Several workers start at once on a fresh database; without the lock two of them race
    through CREATE TABLE and one fails its startup, which stops `gateway serve --workers N`.
    SQLite serializes writers itself, and a seed that lost the race is rolled back.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError, OperationalError

    try:
        with gateway.database.sync_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            yield connection
    except (IntegrityError, OperationalError) as exc:
        if gateway.database.backend != "sqlite" or not _lost_race(exc):
            raise


def _lost_race(exc: Exception) -> bool:
    text_ = str(exc)
    return "already exists" in text_ or "UNIQUE constraint failed" in text_


def create_gateway(settings: Settings | None = None) -> Gateway:
    """The example gateway, not yet built (add routes or hooks before `build()`)."""
    from async_routes import users as async_users
    from legacy_routes.main import create_legacy_app

    gateway = Gateway(settings)
    legacy = create_legacy_app()
    gateway.include_async(async_users.router)
    absent = vector_unavailable(gateway)
    if absent is None:
        from async_routes import items as async_items
        from legacy_routes import items as legacy_items

        legacy.include_router(legacy_items.router)
        gateway.include_async(async_items.router)
        gateway.on_startup(prepare_items)
    else:
        gateway.notes.append(f"GET /items/{{item_id}}/neighbours is absent: {absent}")
    gateway.include_legacy(legacy)
    gateway.on_startup(prepare_database)
    return gateway


def vector_unavailable(gateway: Gateway) -> str | None:
    """Why the pgvector route cannot be served on this database, or None when it can."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from gateway.urls import derive_urls, mask_url

    if gateway.database.backend != "postgresql":
        return f"the database is {gateway.database.backend}; it needs PostgreSQL with pgvector"
    try:
        import pgvector.sqlalchemy  # noqa: F401
    except ImportError:
        return "the pgvector package is not installed (pip install 'gateway[vector]')"
    sync_url, _ = derive_urls(gateway.database.url)
    engine = create_engine(sync_url, poolclass=NullPool)  # one probe, no pool left behind
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            ).first()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"could not ask {mask_url(sync_url)} for the vector extension: {reason}"
    finally:
        engine.dispose()
    if found is None:
        return (
            f"PostgreSQL at {mask_url(sync_url)} has no 'vector' extension available "
            "(install pgvector on the server)"
        )
    return None


def prepare_items(gateway: Gateway) -> None:
    """Create the vector extension and the items table if missing; seed them when empty."""
    from sqlalchemy import func, select, text
    from sqlalchemy.orm import Session

    from legacy_routes.vector_models import Item, VectorBase

    with _schema_transaction(gateway) as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        VectorBase.metadata.create_all(connection)
        with Session(bind=connection) as session:  # joins the locked transaction
            if session.scalar(select(func.count()).select_from(Item)):
                return
            session.add_all(Item(name=name, embedding=vector) for name, vector in SEED_ITEMS)
            session.flush()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The built example app (an app factory, as uvicorn's --factory takes it)."""
    return create_gateway(settings).build()
