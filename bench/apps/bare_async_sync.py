"""Case bare_async_sync: an `async def` endpoint doing the same lookup with sync SQLAlchemy.

The session is opened, used and closed inside the endpoint, so checkout, query and close
all run on the event loop and block it for the whole database round trip: the seed's
"async FastAPI calling sync SQLAlchemy".

`create_dependency_app` is the variant that keeps the sync generator get_db (what a team
gets by renaming `def` to `async def`). At 1000 connections it does not merely block the
loop, it freezes it: a pool checkout blocks the loop while every pooled connection belongs
to a request that needs the loop to finish. The harness keeps it as a deadlock reference.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy.orm import Session, sessionmaker

from bench.apps.common import AppSettings, User, UserOut, db_dependency, lifespan, sync_engine


def create_app() -> FastAPI:
    settings = AppSettings.from_environ()
    engine = sync_engine(settings)
    session_local = sessionmaker(engine)
    app = FastAPI(lifespan=lifespan(settings, engine.dispose))

    @app.get("/users/{user_id}", response_model=UserOut)
    async def read_user(user_id: int) -> Any:
        with session_local() as db:
            user = db.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"User {user_id} not found")
        return user

    return app


def create_dependency_app() -> FastAPI:
    settings = AppSettings.from_environ()
    engine = sync_engine(settings)
    get_db = db_dependency(engine)

    app = FastAPI(lifespan=lifespan(settings, engine.dispose))

    @app.get("/users/{user_id}", response_model=UserOut)
    async def read_user(user_id: int, db: Session = Depends(get_db)) -> Any:
        user = db.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"User {user_id} not found")
        return user

    return app
