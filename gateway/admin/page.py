"""The operator's page at {admin_prefix}/: routes and modes, legacy and async side by side
with a chart of each over the window, the migration ranking, the history, and flips
(including a one-click, confirmed "back to legacy"), with a search over all of them.

A static page (gateway/admin/static/) on the admin JSON API: GET {prefix}/routes,
GET {prefix}/report?window=5m and GET {prefix}/history to show (each route's last change is
the newest history entry for it), GET {prefix}/shadow (with the token), PUT
{prefix}/routes/{key} to flip. The charts are inline
SVG drawn by page.js from the report's per-step series. It holds no secret: the
operator types the admin token, the page keeps it in sessionStorage (this tab only) and
sends it as `Authorization: Bearer <token>`. A strict Content-Security-Policy allows only
the page's own script and style, so a route name can never run as code.
"""

from __future__ import annotations

import html
import json
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from gateway.modes import modes_as_data

__all__ = ["SECURITY_HEADERS", "page_router"]

ASSETS = {"page.js": "text/javascript", "page.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _read(name: str) -> str:
    static = resources.files("gateway.admin").joinpath("static")  # one part a call on 3.10
    return static.joinpath(name).read_text(encoding="utf-8")


def page_router(prefix: str) -> APIRouter:
    """Routes mounted under `prefix`, the admin prefix (GET /, GET /static/{name})."""
    router = APIRouter()
    modes = json.dumps(modes_as_data()).replace("<", "\\u003c")  # data, never markup
    page = (
        _read("page.html")
        .replace("{{prefix}}", html.escape(prefix, quote=True))
        .replace("{{modes}}", modes)
    )
    assets = {name: (_read(name), kind) for name, kind in ASSETS.items()}

    @router.get("/", include_in_schema=False, name="gateway_page")
    async def operator_page() -> HTMLResponse:
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    @router.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"No asset {name!r}")
        return Response(found[0], media_type=found[1], headers=SECURITY_HEADERS)

    return router
