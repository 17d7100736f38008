"""The migrated routes: `async def` twins with the same method and path as the legacy ones."""

from fastapi import APIRouter

router = APIRouter()


@router.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    """The async twin of mypkg.main.hello."""
    return {"hello": name, "served_by": "async def"}
