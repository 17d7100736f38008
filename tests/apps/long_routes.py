"""Route keys of 60+ characters that differ only at their end, as on a 250-route app, and
routes that keep FastAPI's own handler for two reasons (three for one, two for the other).

Used by the CLI's output tests:
    gateway routes tests.apps.long_routes:create_app
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, FastAPI

from gateway import Gateway, Settings
from gateway.legacy import keep_fastapi_handler

__all__ = ["KEPT", "KEYS", "MARKED", "PAIRED", "YIELDS", "create_app"]

PREFIX = "/api/v1/projects/{project_id}/members/{member_id}/permissions"
PAIRED = f"GET {PREFIX}/grants"
YIELDS = [f"GET {PREFIX}/audit", f"GET {PREFIX}/history", f"GET {PREFIX}/revocations"]
MARKED = [f"POST {PREFIX}/approvals", f"DELETE {PREFIX}/approvals"]
KEYS = [PAIRED, *YIELDS, *MARKED]
KEPT = {  # why each route keeps FastAPI's own handler
    **dict.fromkeys(YIELDS, f"{__name__}.current_user is an async dependency with yield"),
    **dict.fromkeys(MARKED, "the endpoint is marked with gateway.legacy.keep_fastapi_handler"),
}


async def current_user() -> AsyncIterator[str]:
    yield "ada"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway app, built; its store is a SQLite file nothing here creates."""
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get(f"{PREFIX}/grants")
    def grants(project_id: int, member_id: int) -> list[int]:
        return [project_id, member_id]

    @migrated.get(f"{PREFIX}/grants")
    async def grants_async(project_id: int, member_id: int) -> list[int]:
        return [project_id, member_id]

    for key in YIELDS:

        @legacy.get(key.partition(" ")[2])
        def read(project_id: int, user: str = Depends(current_user)) -> str:
            return user

    @legacy.post(f"{PREFIX}/approvals")
    @keep_fastapi_handler
    def approve(project_id: int) -> int:
        return project_id

    @legacy.delete(f"{PREFIX}/approvals")
    @keep_fastapi_handler
    def withdraw(project_id: int) -> int:
        return project_id

    gateway = Gateway(
        settings or Settings.from_environ({}, database_url="sqlite:///never-created.db")
    )
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    return gateway.build()
