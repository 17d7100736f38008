"""A corpus of the layouts real FastAPI + SQLAlchemy services use, written for the tests of
`gateway translate`: a generic CRUD base with subclasses and module-level instances, routes
with `current_user` chains on `get_db`, tuple rows with a nested response model, created and
refreshed objects returned, step-built queries, relationships read in generator
expressions, a background task with its own `SessionLocal`, an `async def` route on the sync
session, unannotated sessions, relative imports and two modules named `utils`.

    app = create_app()   # the legacy app, its routers under /users and /posts
"""

from fastapi import FastAPI

from .api import posts, users


def create_app() -> FastAPI:
    """The legacy app as its team runs it."""
    app = FastAPI()
    app.include_router(users.router, prefix="/users")
    app.include_router(posts.router, prefix="/posts")
    return app
