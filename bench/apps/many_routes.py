"""Cases for routing cost against route count: the bare_def lookup as the route registered
last in an app of BENCH_ROUTES routes (10 or 1000), served bare or through the gateway.

Every route sits under /api/v1, as in most real APIs, so a first-segment index alone would
not help. Per resource the routes mix static and templated paths the way CRUD routers do:

    GET/POST   /api/v1/{res}                     GET /api/v1/{res}/search
    GET/PUT/DELETE /api/v1/{res}/{item_id}       GET /api/v1/{res}/{item_id}/history
    GET        /api/v1/{res}/{item_id}/items/{n} GET /api/v1/{res}/export.csv

The measured request is `GET /api/v1/users/{user_id}` (route `PATH`), registered last.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from sqlalchemy.orm import Session

from bench.apps.common import AppSettings, User, UserOut, db_dependency, lifespan, sync_engine

__all__ = ["PATH", "create_bare_app", "create_gateway_app", "filler"]

PATH = "/api/v1/users/{user_id}"
SHAPES: tuple[tuple[str, str], ...] = (
    ("GET", ""),
    ("POST", ""),
    ("GET", "/search"),
    ("GET", "/export.csv"),
    ("GET", "/{item_id}"),
    ("PUT", "/{item_id}"),
    ("DELETE", "/{item_id}"),
    ("GET", "/{item_id}/history"),
    ("GET", "/{item_id}/items/{n}"),
)


def filler(count: int) -> list[tuple[str, str]]:
    """`count` (method, path) pairs in registration order, resource after resource."""
    found: list[tuple[str, str]] = []
    number = 0
    while len(found) < count:
        for method, tail in SHAPES:
            if len(found) < count:
                found.append((method, f"/api/v1/resource{number}{tail}"))
        number += 1
    return found


def _routes() -> int:
    return int(os.environ.get("BENCH_ROUTES", "1000"))


def _app(settings: AppSettings) -> tuple[FastAPI, APIRouter]:
    engine = sync_engine(settings)
    get_db = db_dependency(engine)

    app = FastAPI(lifespan=lifespan(settings, engine.dispose))
    router = APIRouter()

    def placeholder() -> dict[str, str]:
        return {}

    for method, path in filler(_routes() - 1):
        router.add_api_route(path, placeholder, methods=[method])

    @router.get(PATH, response_model=UserOut)
    def read_user(user_id: int, db: Session = Depends(get_db)) -> Any:
        user = db.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"User {user_id} not found")
        return user

    return app, router


def create_bare_app() -> FastAPI:
    app, router = _app(AppSettings.from_environ())
    app.include_router(router)
    return app


def create_gateway_app() -> FastAPI:
    from gateway import Gateway, Settings

    legacy = create_bare_app()
    gateway = Gateway(Settings.from_environ())
    gateway.include_legacy(legacy)
    return gateway.build()
