"""The example's schema and seed rows, prepared at startup by one worker at a time.

prepare_database(gateway)           # users table; the five seed users on an embedded file
prepare_database(gateway, 10_000)   # ... and user6..user10000 wherever it runs
prepare_items(gateway)              # the vector extension, the items table, six items
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from gateway import Gateway
from legacy_routes.models import Base, User

__all__ = ["SCHEMA_LOCK", "SEED_ITEMS", "SEED_USERS", "prepare_database", "prepare_items"]

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

SCHEMA_LOCK = 7_406_179  # advisory lock key: one worker process at a time prepares the schema


def prepare_database(gateway: Gateway, seed_count: int = 0) -> None:
    """Create the users table if missing; seed it when empty and the database is embedded.

    gateway.on_startup(lambda g: prepare_database(g, seed_count=1000))
    """
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


def prepare_items(gateway: Gateway) -> None:
    """Create the vector extension and the items table if missing; seed them when empty."""
    from legacy_routes.vector_models import Item, VectorBase  # needs the pgvector package

    with _schema_transaction(gateway) as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        VectorBase.metadata.create_all(connection)
        with Session(bind=connection) as session:  # joins the locked transaction
            if session.scalar(select(func.count()).select_from(Item)):
                return
            session.add_all(Item(name=name, embedding=vector) for name, vector in SEED_ITEMS)
            session.flush()


@contextmanager
def _schema_transaction(gateway: Gateway) -> Iterator[Connection]:
    """One transaction that, on PostgreSQL, holds an advisory lock until it commits.

    Several workers start at once on a fresh database; without the lock two of them race
    through CREATE TABLE and one fails its startup, which stops `gateway serve --workers N`.
    SQLite serializes writers itself, and a seed that lost the race is rolled back.
    """
    try:
        with gateway.database.sync_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            yield connection
    except (IntegrityError, OperationalError) as exc:
        if gateway.database.backend != "sqlite" or not _lost_race(exc):
            raise


def _lost_race(exc: Exception) -> bool:
    message = str(exc)
    return "already exists" in message or "UNIQUE constraint failed" in message
