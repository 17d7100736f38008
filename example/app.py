"""The example's composition: the legacy users service and its migrated twin behind one gateway.

gateway serve example:create_app               # what `gateway serve` runs by default
uvicorn --factory example:create_app

The legacy app keeps its own engine; it is pointed at the gateway's database URL so the two
implementations of each route read and write the same rows.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from async_routes import users as async_users
from example.seed import prepare_database, prepare_items
from gateway import Gateway, Settings
from gateway.urls import derive_urls, mask_url
from legacy_routes.main import create_legacy_app

__all__ = ["create_app", "create_gateway", "vector_unavailable"]


def create_gateway(settings: Settings | None = None) -> Gateway:
    """The example gateway, not yet built (add routes or hooks before `build()`).

    gw = create_gateway(Settings.from_environ({}, database_url="sqlite:///demo.db"))
    app = gw.build()
    """
    gateway = Gateway(settings)
    absent = vector_unavailable(gateway)
    legacy = create_legacy_app(gateway.settings.effective_database_url, with_items=absent is None)
    gateway.include_async(async_users.router)
    if absent is None:
        from async_routes import items as async_items  # needs the pgvector package

        gateway.include_async(async_items.router)
        gateway.on_startup(prepare_items)
    else:
        gateway.notes.append(f"GET /items/{{item_id}}/neighbours is absent: {absent}")
    gateway.include_legacy(legacy)
    gateway.on_startup(prepare_database)
    return gateway


def create_app(settings: Settings | None = None) -> FastAPI:
    """The built example app (an app factory, as uvicorn's --factory takes it)."""
    return create_gateway(settings).build()


def vector_unavailable(gateway: Gateway) -> str | None:
    """Why the pgvector route cannot be served on this database, or None when it can."""
    if gateway.database.backend != "postgresql":
        return f"the database is {gateway.database.backend}; it needs PostgreSQL with pgvector"
    try:
        import pgvector.sqlalchemy  # noqa: F401
    except ImportError:
        return "the pgvector package is not installed (pip install 'gateway[example]')"
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
