"""The implementation header on the 500 answer to an unhandled exception.

Starlette's ServerErrorMiddleware sits outside every other middleware: it answers an
exception nothing handled with the app's 500 handler (or a plain "Internal Server Error"),
after the middleware that names the side on every other answer has let go. So the gateway
wraps that handler (the legacy app's own, or Starlette's default answer) to add the header,
the side read from the endpoint the dispatcher put in the scope. The body, the handler
called once, the exception re-raised to the server's log: all stay as Starlette has them.

    name_side_on_errors(app, gateway.entries, "x-gateway-implementation")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.routing.dispatch import RouteEntry

__all__ = ["name_side_on_errors"]


def name_side_on_errors(app: FastAPI, entries: Mapping[str, RouteEntry], header: str) -> None:
    """Make the app's 500 answers name the side whose endpoint raised, in `header`."""
    sides: dict[int, tuple[Any, str]] = {}
    for entry in entries.values():
        for endpoint in (entry.legacy, entry.async_):
            if endpoint is not None:
                sides[id(endpoint.func)] = (endpoint.func, endpoint.side.value)
    name = header.lower()

    def named(request: Request, response: Response) -> Response:
        endpoint = request.scope.get("endpoint")
        found = sides.get(id(endpoint))
        if found is not None and found[0] is endpoint and name not in response.headers:
            response.headers[name] = found[1]
        return response

    # Starlette gives ServerErrorMiddleware the last handler keyed 500 or Exception.
    keys = [key for key in app.exception_handlers if key in (500, Exception)]
    key: Any = keys[-1] if keys else 500
    handler: Callable[..., Any] | None = app.exception_handlers.get(key)
    if handler is None:

        async def plain(request: Request, exc: Exception) -> Response:
            return named(request, PlainTextResponse("Internal Server Error", status_code=500))

        app.exception_handlers[key] = plain
    elif inspect.iscoroutinefunction(handler):

        async def wrapped(request: Request, exc: Exception) -> Response:
            return named(request, await handler(request, exc))

        app.exception_handlers[key] = wrapped
    else:  # a plain def: ServerErrorMiddleware runs it in a thread, as the app wrote it

        def wrapped_sync(request: Request, exc: Exception) -> Response:
            return named(request, handler(request, exc))

        app.exception_handlers[key] = wrapped_sync
