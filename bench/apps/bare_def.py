"""Case bare_def: the textbook legacy route. `def` endpoint, sync generator get_db, sync
SQLAlchemy, a response_model. FastAPI hands each request to the threadpool four times.

Case bare_def_freeze is `create_frozen_app`: the same app, its heap frozen after startup.
The gateway cases mount `create_app()`'s object itself as their legacy side.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy.orm import Session

from bench.apps.common import AppSettings, User, UserOut, db_dependency, lifespan, sync_engine


def create_app(*, gc_freeze: bool = False) -> FastAPI:
    settings = AppSettings.from_environ()
    engine = sync_engine(settings)
    get_db = db_dependency(engine)

    app = FastAPI(lifespan=lifespan(settings, engine.dispose, gc_freeze=gc_freeze))

    @app.get("/users/{user_id}", response_model=UserOut)
    def read_user(user_id: int, db: Session = Depends(get_db)) -> Any:
        user = db.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"User {user_id} not found")
        return user

    return app


def create_frozen_app() -> FastAPI:
    """The same app with `gc.freeze()` after startup, as the gateway does by default."""
    return create_app(gc_freeze=True)
