"""The legacy FastAPI app object, as a team would already have it."""

from __future__ import annotations

from fastapi import FastAPI

from legacy_routes import users


def create_legacy_app() -> FastAPI:
    app = FastAPI(title="Users service", version="1.0.0")
    app.include_router(users.router)
    return app
