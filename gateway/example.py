"""The example app: the seed's users service, legacy and migrated, behind one gateway.

uvicorn --factory gateway.example:create_app
"""

from __future__ import annotations

from fastapi import FastAPI

from gateway.app import Gateway
from gateway.settings import Settings

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

    from legacy_routes.models import Base, User

    engine = gateway.database.sync_engine
    Base.metadata.create_all(engine)
    if not (gateway.settings.embedded or seed_count):
        return
    with gateway.database.sync_sessions() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return
        rows = list(SEED_USERS)
        rows += [(f"user{i}", f"user{i}@example.com") for i in range(len(rows) + 1, seed_count + 1)]
        session.add_all(User(name=name, email=email) for name, email in rows)
        session.commit()


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

    from legacy_routes.vector_models import Item, VectorBase

    with gateway.database.sync_engine.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        VectorBase.metadata.create_all(connection)
    with gateway.database.sync_sessions() as session:
        if session.scalar(select(func.count()).select_from(Item)):
            return
        session.add_all(Item(name=name, embedding=vector) for name, vector in SEED_ITEMS)
        session.commit()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The built example app (an app factory, as uvicorn's --factory takes it)."""
    return create_gateway(settings).build()
