"""gateway._compat: one view of a route on every FastAPI, and the private-name fence."""

import ast
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Security
from fastapi.security import OAuth2PasswordBearer
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway import _compat as compat
from gateway._compat import RouteView, route_views

GATEWAY = Path(compat.__file__).resolve().parent.parent
PRIVATE_ROOTS = ("fastapi", "starlette", "sqlalchemy", "pydantic", "asyncio")


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"] if node.value.id in PRIVATE_ROOTS else []
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] in PRIVATE_ROOTS and any(p.startswith("_") for p in parts[1:]):
                found.append(f"{path.relative_to(GATEWAY)}:{node.lineno}: {name}")
    return found


def test_private_names_live_only_in_compat() -> None:
    outside = [p for p in GATEWAY.rglob("*.py") if "_compat" not in p.relative_to(GATEWAY).parts]
    found = [hit for path in sorted(outside) for hit in _private_imports(path)]
    assert found == [], "private names outside gateway/_compat: " + "; ".join(found)


def test_the_fence_sees_a_private_import(tmp_path: Path) -> None:
    probe = GATEWAY / "_probe_never_committed.py"
    probe.write_text("from fastapi._compat import ModelField\nimport asyncio\nasyncio._x()\n")
    try:
        hits = _private_imports(probe)
    finally:
        probe.unlink()
    assert [h.split(": ")[1] for h in hits] == [
        "fastapi._compat",
        "fastapi._compat.ModelField",
        "asyncio._x",
    ]


def test_parse_version() -> None:
    assert compat.versions.parse_version("0.115.14") == (0, 115, 14)
    assert compat.versions.parse_version("2.1") == (2, 1, 0)
    assert compat.versions.parse_version("1.4.54rc1") == (1, 4, 54)


oauth = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


def _scoped(token: Annotated[str | None, Security(oauth, scopes=["items:read"])]) -> str:
    return token or ""


def _app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/v1", dependencies=[Depends(_scoped)])

    @router.get("/items/{item_id}", name="item")
    def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.post("/direct", status_code=201)
    def direct() -> dict[str, bool]:
        return {"ok": True}

    router.mount("/static", StaticFiles(directory=str(GATEWAY / "admin" / "static")), name="static")
    app.include_router(router, prefix="/api")
    return app


def test_route_views_give_full_paths_and_pass_other_routes_through() -> None:
    items = list(route_views(_app().routes))
    views = [v for v in items if isinstance(v, RouteView)]
    by_path = {v.path: v for v in views}
    assert {"/direct", "/api/v1/items/{item_id}"} <= set(by_path)
    item = by_path["/api/v1/items/{item_id}"]
    assert item.methods == {"GET"}
    assert item.endpoint.__name__ == "read_item"
    assert item.original_route.endpoint is item.endpoint  # the route the author declared
    assert item.url_path_for("item", item_id=3) == "/api/v1/items/3"
    assert item.path_regex.match("/api/v1/items/3")
    assert by_path["/direct"].status_code == 201
    mounts = [r for r in items if isinstance(r, Mount)]
    # Router.mount takes no router prefix; before 0.137 include_router dropped mounts.
    assert [m.path for m in mounts] == (["/api/static"] if compat.FASTAPI >= (0, 137) else [])
    assert all(isinstance(r, BaseRoute) for r in items if not isinstance(r, RouteView))


def test_dependency_helpers_read_fastapi_the_same_way_on_every_version() -> None:
    item = next(
        v for v in route_views(_app().routes) if isinstance(v, RouteView) and "items" in v.path
    )
    scoped = item.dependant.dependencies[0]
    assert scoped.call is _scoped
    assert compat.oauth_scopes(scoped.dependencies[0]) == ["items:read"]
    assert compat.cache_key(scoped) == compat.cache_key(scoped)
    assert not compat.is_gen(scoped) and not compat.is_coroutine(scoped)
    assert compat.is_coroutine(scoped.dependencies[0])  # OAuth2PasswordBearer.__call__
    assert compat.override_dependant(scoped, lambda: "x").call() == "x"


@pytest.mark.anyio
async def test_a_views_app_is_fastapis_own_handler_for_the_route() -> None:
    view = next(
        v for v in route_views(_app().routes) if isinstance(v, RouteView) and "items" in v.path
    )

    class AsASGIApp:  # Starlette calls a plain function endpoint with a Request instead
        async def __call__(self, scope, receive, send):
            await view.app(scope, receive, send)

    host = FastAPI()  # its middleware gives the handler what FastAPI's router would
    host.router.routes.append(Route(view.path, AsASGIApp()))
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/api/v1/items/5")
    assert (response.status_code, response.json()) == (200, {"item_id": 5})
