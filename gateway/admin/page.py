"""The operator's page at {admin_prefix}/: routes and modes, legacy and async side by side
with a chart of each over the window, the migration ranking, the history, and flips
(including a one-click, confirmed "back to legacy"), with a search over all of them.

The first response holds the route table (server-rendered from the same rows as
GET {prefix}/routes) when reads need no token, so the page shows its data before any script
runs; page.js then keeps it fresh. With GATEWAY_ADMIN_READ_REQUIRES_TOKEN the first HTML
holds no route (the request for the page carries no token) and the table fills once the
operator has entered one. Times are UTC ISO as the CLI prints them (local time on hover).

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
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from gateway.modes import MODES, Mode, modes_as_data

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


Rows = Sequence[Mapping[str, Any]]


def page_router(prefix: str, routes: Callable[[], Rows] | None = None) -> APIRouter:
    """Routes mounted under `prefix`, the admin prefix (GET /, GET /static/{name}).

    `routes` gives the rows of GET {prefix}/routes for the first HTML; None (reads need a
    token) serves the page without them.
    """
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
        if routes is None:
            filled = page.replace("{{routes}}", "").replace(
                "{{refreshed}}", "enter an admin token to see the routes (reads need one)"
            )
        else:
            filled = page.replace("{{routes}}", route_rows_html(routes())).replace(
                "{{refreshed}}", f"as of {utc_now()}"
            )
        return HTMLResponse(filled, headers=SECURITY_HEADERS)

    @router.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"No asset {name!r}")
        return Response(found[0], media_type=found[1], headers=SECURITY_HEADERS)

    return router


def utc_now() -> str:
    """Now as the CLI and the history print times: UTC ISO, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def route_rows_html(rows: Rows) -> str:
    """The route table's rows as page.js draws them (it replaces them on its first refresh);
    every value escaped, so a route name is only ever text."""
    return "".join(_row_html(row) for row in rows)


def _row_html(row: Mapping[str, Any]) -> str:
    key = html.escape(str(row["key"]), quote=True)
    where = html.escape("\n".join(w for w in (row.get("legacy"), row.get("async")) if w), True)
    implementations = html.escape(" + ".join(row["implementations"]))
    mode = html.escape(str(row["mode"]), quote=True)
    blocking = "".join(
        f'<div class="blocks-loop">blocks the event loop ({html.escape(side)}): '
        f"{html.escape(', '.join(names))} is async def with a sync Session</div>"
        for side, names in (row.get("blocks_loop") or {}).items()
    )
    flip = "" if row.get("paired") else f'<span class="sub">only {implementations}</span>'
    return (
        f'<tr data-route="{key}"><td class="key">{key}</td>'
        f'<td title="{where}">{implementations}</td>'
        f'<td class="mode mode-{mode}"><span class="mode-name">{html.escape(_label(row))}'
        f'</span>{blocking}</td><td class="change"></td><td class="flip">{flip}</td></tr>'
    )


def _label(row: Mapping[str, Any]) -> str:
    # As page.js's describe(): the mode's label from gateway.modes, its percent filled in.
    try:
        spec = MODES[Mode(row["mode"])]
    except ValueError:  # a single-side route's implementation, not a mode
        return str(row["mode"])
    percent = row.get("percent")
    shown = f"{percent:g}" if isinstance(percent, int | float) else str(percent)
    return spec.label.replace("{mode}", str(row["mode"])).replace("{percent}", shown)
