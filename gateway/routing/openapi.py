"""The composed app's OpenAPI document: the legacy app's, plus routes only async has.

    install_openapi(app, routes, source=legacy_app)   # the document, built on first request
    served_routes(host)                               # a host's routes without its docs pages

Paired routes appear once, as the legacy app describes them, so clients generated from the
document do not change when a route is flipped.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

__all__ = ["install_openapi", "served_routes"]


def install_openapi(app: FastAPI, routes: list[Any], source: FastAPI | None) -> None:
    """Make `app.openapi()` describe `routes` with `source`'s title, version and description."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=source.description if source else None,
                routes=routes,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def served_routes(host: FastAPI) -> list[BaseRoute]:
    """A host's routes without its own docs pages (the gateway serves one set of docs)."""
    skip = {host.openapi_url, host.docs_url, host.redoc_url, host.swagger_ui_oauth2_redirect_url}
    if host.docs_url:
        skip.add(host.docs_url + "/oauth2-redirect")
    return [r for r in host.routes if getattr(r, "path", None) not in skip - {None}]
