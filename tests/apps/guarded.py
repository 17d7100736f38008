"""An app shaped like a real one, for the pairing contract: guards on a prefixed router.

The legacy side: an `/api` APIRouter with `dependencies=[Depends(verify_api_key)]` (the key
in an `X-API-Key` header), an OAuth2 bearer dependency (`get_current_user`) on some routes,
a required query parameter, a body and a response model. `twin_router(...)` builds the
migrated side with one chosen flaw (or none):

    gateway = create_guarded_gateway(settings, twin_router(drop_api_key=True))
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer, SecurityScopes
from pydantic import BaseModel

from gateway import Gateway, Settings, differs_from_legacy

__all__ = [
    "API_KEY",
    "USER_TOKEN",
    "create_guarded_gateway",
    "legacy_router",
    "twin_router",
]

API_KEY = "key-0123456789"
USER_TOKEN = "token-of-ada"

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/token", scopes={"items:write": "change items"})


def verify_api_key(key: Annotated[str | None, Security(api_key_header)]) -> None:
    if key != API_KEY:
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required")


def get_current_user(scopes: SecurityScopes, token: Annotated[str, Depends(oauth2_scheme)]) -> str:
    if token != USER_TOKEN:
        raise HTTPException(status_code=401, detail="not signed in")
    return "ada"


class ItemIn(BaseModel):
    name: str
    price: float


class ItemOut(BaseModel):
    id: int
    name: str
    price: float


class ItemSummary(BaseModel):
    id: int
    name: str


def legacy_router() -> APIRouter:
    """The legacy side: plain `def` routes behind the router's API key."""
    router = APIRouter(prefix="/api", dependencies=[Depends(verify_api_key)])

    @router.get("/items", response_model=list[ItemOut])
    def list_items(limit: int = Query(10, ge=1, le=100)) -> Any:
        return [{"id": 1, "name": "lamp", "price": 9.5}][:limit]

    @router.get("/items/search", response_model=list[ItemOut])
    def search_items(q: str = Query(min_length=1)) -> Any:
        return [{"id": 1, "name": q, "price": 9.5}]

    @router.get("/items/{item_id}", response_model=ItemOut)
    def read_item(item_id: int) -> Any:
        return {"id": item_id, "name": "lamp", "price": 9.5}

    @router.post("/items", response_model=ItemOut, status_code=201)
    def create_item(
        body: ItemIn, user: str = Security(get_current_user, scopes=["items:write"])
    ) -> Any:
        return {"id": 2, **body.model_dump()}

    @router.get("/me")
    def me(user: str = Depends(get_current_user)) -> dict[str, str]:
        return {"user": user}

    return router


def twin_router(
    *,
    drop_api_key: bool = False,
    drop_query: bool = False,
    other_response: bool = False,
    drop_user: bool = False,
    accept: str | None = None,
    accept_one: str | None = None,
) -> APIRouter:
    """The migrated side: `async def` twins, each flaw on request.

    `drop_api_key`: the router forgets `dependencies=[Depends(verify_api_key)]`;
    `drop_query`: GET /api/items/search does not take its required `q`;
    `other_response`: GET /api/items/{item_id} answers an ItemSummary;
    `drop_user`: GET /api/me forgets the OAuth2 dependency;
    `accept`: every twin is marked @differs_from_legacy(accept); `accept_one`: only
    GET /api/items/{item_id}.
    """
    guards = [] if drop_api_key else [Depends(verify_api_key)]
    router = APIRouter(prefix="/api", dependencies=guards)
    mark = differs_from_legacy(accept) if accept else _unmarked
    mark_one = differs_from_legacy(accept_one or accept) if accept_one or accept else _unmarked

    @router.get("/items", response_model=list[ItemOut])
    @mark
    async def list_items(limit: int = Query(10, ge=1, le=100)) -> Any:
        return [{"id": 1, "name": "lamp", "price": 9.5}][:limit]

    if drop_query:

        @router.get("/items/search", response_model=list[ItemOut])
        @mark
        async def search_items() -> Any:
            return [{"id": 1, "name": "lamp", "price": 9.5}]

    else:

        @router.get("/items/search", response_model=list[ItemOut])
        @mark
        async def search_items(q: str = Query(min_length=1)) -> Any:  # type: ignore[misc]
            return [{"id": 1, "name": q, "price": 9.5}]

    @router.get("/items/{item_id}", response_model=ItemSummary if other_response else ItemOut)
    @mark_one
    async def read_item(item_id: int) -> Any:
        return {"id": item_id, "name": "lamp", "price": 9.5}

    @router.post("/items", response_model=ItemOut, status_code=201)
    @mark
    async def create_item(
        body: ItemIn, user: str = Security(get_current_user, scopes=["items:write"])
    ) -> Any:
        return {"id": 2, **body.model_dump()}

    if drop_user:

        @router.get("/me")
        @mark
        async def me() -> dict[str, str]:
            return {"user": "anonymous"}

    else:

        @router.get("/me")
        @mark
        async def me(user: str = Depends(get_current_user)) -> dict[str, str]:  # type: ignore[misc]
            return {"user": user}

    return router


def _unmarked(endpoint: Any) -> Any:
    return endpoint


def create_guarded_gateway(settings: Settings, twins: APIRouter, **parts: Any) -> Gateway:
    """The legacy router and `twins` behind one gateway, not yet built."""
    gateway = Gateway(settings, **parts)
    gateway.include_legacy(legacy_router())
    gateway.include_async(twins)
    return gateway


def create_accepted_app() -> Any:
    """A twin router without the API key, every twin marked accepted (for `gateway routes`)."""
    twins = twin_router(drop_api_key=True, accept="the v2 API is public: the ingress checks keys")
    return create_guarded_gateway(Settings.from_environ(), twins).build()


def create_warning_app() -> Any:
    """A twin with another response model: serves, with a warning (for `gateway routes`)."""
    return create_guarded_gateway(Settings.from_environ(), twin_router(other_response=True)).build()


def create_refused_app() -> Any:
    """A twin router that forgot the API key: its build is refused (for `gateway routes`)."""
    return create_guarded_gateway(Settings.from_environ(), twin_router(drop_api_key=True)).build()
