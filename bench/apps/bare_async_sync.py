"""Case bare_async_sync: the same route as bare_def with `async def` on the endpoint only.

The query (sync SQLAlchemy) then runs on the event loop and blocks it for the whole
database round trip; get_db stays the sync generator, as it does when a team only
renames `def` to `async def`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy.orm import Session, sessionmaker

from bench.apps.common import AppSettings, User, UserOut, lifespan, sync_engine


def create_app() -> FastAPI:
    settings = AppSettings.from_environ()
    engine = sync_engine(settings)
    session_local = sessionmaker(engine)

    def get_db() -> Iterator[Session]:
        db = session_local()
        try:
            yield db
        finally:
            db.close()

    app = FastAPI(lifespan=lifespan(settings, engine.dispose))

    @app.get("/users/{user_id}", response_model=UserOut)
    async def read_user(user_id: int, db: Session = Depends(get_db)) -> Any:
        user = db.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"User {user_id} not found")
        return user

    return app
