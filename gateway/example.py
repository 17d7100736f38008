"""The example app: the seed's users service, legacy and migrated, behind one gateway.

uvicorn --factory gateway.example:create_app
"""

from __future__ import annotations

from fastapi import FastAPI

from gateway.app import Gateway
from gateway.settings import Settings

__all__ = ["SEED_USERS", "create_app", "create_gateway", "prepare_database"]

SEED_USERS = [
    ("ada", "ada@example.com"),
    ("grace", "grace@example.com"),
    ("alan", "alan@example.com"),
    ("edsger", "edsger@example.com"),
    ("barbara", "barbara@example.com"),
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
    gateway.include_legacy(create_legacy_app())
    gateway.include_async(async_users.router)
    gateway.on_startup(prepare_database)
    return gateway


def create_app(settings: Settings | None = None) -> FastAPI:
    """The built example app (an app factory, as uvicorn's --factory takes it)."""
    return create_gateway(settings).build()
