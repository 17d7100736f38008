"""The legacy FastAPI app, as a team would already have it: `uvicorn legacy_routes.main:app`.

`create_legacy_app(database_url)` points a fresh app at another database (tests, the
example gateway); the default app uses the engine from `legacy_routes.database`.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import sessionmaker

from legacy_routes import database, users


def create_legacy_app(database_url=None, *, with_items=False):
    """The users service (and, with `with_items`, the pgvector search) on `database_url`.

    app = create_legacy_app("postgresql://app@db/app")
    """
    engine = database.engine if database_url is None else database.make_engine(database_url)

    @asynccontextmanager
    async def lifespan(app):
        yield
        engine.dispose()

    app = FastAPI(title="Users service", version="1.0.0", lifespan=lifespan)
    app.include_router(users.router)
    if with_items:
        from legacy_routes import items  # needs the pgvector package

        app.include_router(items.router)
    if database_url is not None:
        # FastAPI's documented way to swap a database: override get_db on this app only,
        # so two apps in one process never share an engine.
        SessionLocal = sessionmaker(autoflush=False, bind=engine)

        def get_db():
            db = SessionLocal()
            try:
                yield db
            finally:
                db.close()

        app.dependency_overrides[database.get_db] = get_db
    return app


app = create_legacy_app()
