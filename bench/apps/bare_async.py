"""Case bare_async: `async def` endpoint, async generator get_db, AsyncSession (asyncpg).

Case bare_async_freeze is `create_frozen_app`: the same app, its heap frozen after startup
(like the gateway's default GATEWAY_GC_FREEZE). Also the ceiling case: `/ceiling/{user_id}`
on the same app answers a constant with the same response_model and never touches the
database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.apps.common import AppSettings, User, UserOut, async_engine, lifespan


def create_app(*, gc_freeze: bool = False) -> FastAPI:
    settings = AppSettings.from_environ()
    engine = async_engine(settings)
    session_local = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with session_local() as db:
            yield db

    app = FastAPI(lifespan=lifespan(settings, engine.dispose, gc_freeze=gc_freeze))

    @app.get("/users/{user_id}", response_model=UserOut)
    async def read_user(user_id: int, db: AsyncSession = Depends(get_db)) -> Any:
        user = await db.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"User {user_id} not found")
        return user

    @app.get("/ceiling/{user_id}", response_model=UserOut)
    async def ceiling(user_id: int) -> Any:
        return {"id": user_id, "name": f"user{user_id}", "email": f"user{user_id}@example.com"}

    return app


def create_frozen_app() -> FastAPI:
    """The same app with `gc.freeze()` after startup, as the gateway does by default."""
    return create_app(gc_freeze=True)
