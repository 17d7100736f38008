"""Finding routes on both sides, pairing them, and dispatching each request to one side.

A route's key is its method and full path template: "GET /users/{user_id}". Routes with the
same key on the legacy and the async side form a paired route; the ModeTable decides per
request which one serves it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette._utils import get_route_path
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.exceptions import RouteError, RouteKindError
from gateway.flags import Implementation, ModeTable, choose
from gateway.request_info import RequestInfo

__all__ = ["Endpoint", "PathGroup", "PrefixGuard", "RouteEntry", "collect", "pair", "route_key"]


def route_key(method: str, path: str) -> str:
    """`route_key("GET", "/users/{user_id}")` -> "GET /users/{user_id}"."""
    return f"{method.upper()} {path}"


@dataclass(eq=False)
class Endpoint:
    """One implementation of one route: what to call and how to describe it."""

    side: Implementation
    method: str
    path: str
    context: RouteContext
    app: ASGIApp

    @property
    def key(self) -> str:
        return route_key(self.method, self.path)

    @property
    def func(self) -> Callable[..., Any]:
        return self.context.endpoint  # type: ignore[return-value]

    @property
    def where(self) -> str:
        func = self.func
        module = getattr(func, "__module__", "?")
        name = getattr(func, "__qualname__", type(func).__name__)
        return f"{module}.{name}"


@dataclass(eq=False)
class RouteEntry:
    """A route key with its implementations; paired when it has both."""

    key: str
    legacy: Endpoint | None = None
    async_: Endpoint | None = None

    @property
    def paired(self) -> bool:
        return self.legacy is not None and self.async_ is not None

    @property
    def implementations(self) -> list[Implementation]:
        return [e.side for e in (self.legacy, self.async_) if e is not None]

    def endpoint(self, implementation: Implementation) -> Endpoint:
        found = self.legacy if implementation is Implementation.LEGACY else self.async_
        if found is None:
            raise LookupError(f"{self.key} has no {implementation.value} implementation")
        return found


def _is_async(func: Callable[..., Any]) -> bool:
    while hasattr(func, "func"):  # functools.partial
        func = func.func
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - callable class instances
    return not inspect.isfunction(func) and inspect.iscoroutinefunction(call)


def collect(
    routes: Sequence[BaseRoute],
    side: Implementation,
    app_for: Callable[[RouteContext], ASGIApp] | None = None,
) -> list[Endpoint | BaseRoute]:
    """Flatten (nested) routes into Endpoints, in matching order; other routes pass through.

    `app_for` builds the ASGI app that serves an API route (default: FastAPI's own).
    """
    found: list[Endpoint | BaseRoute] = []
    for context in iter_route_contexts(routes):
        original = context.original_route
        if not isinstance(original, APIRoute):
            found.append(_plain_route(context))
            continue
        _check_kind(context, side)
        app = app_for(context) if app_for else context.app
        for method in sorted(context.methods or ()):
            found.append(Endpoint(side, method, context.path or "", context, app))
    return found


def _plain_route(context: RouteContext) -> BaseRoute:
    # Mounts, websockets and plain Starlette routes keep FastAPI's own effective route.
    effective = context._effective_route
    return effective if isinstance(effective, BaseRoute) else context.original_route


def _check_kind(context: RouteContext, side: Implementation) -> None:
    func = context.endpoint
    assert func is not None
    is_async = _is_async(func)
    methods = ",".join(sorted(context.methods or ()))
    where = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"
    key = f"{methods} {context.path}"
    if side is Implementation.LEGACY and is_async:
        raise RouteKindError(
            f"Legacy route '{key}' ({where}) is 'async def'; legacy routes must be plain "
            "'def' so they run in the threadpool. Mount migrated routes with include_async."
        )
    if side is Implementation.ASYNC and not is_async:
        raise RouteKindError(
            f"Async route '{key}' ({where}) is a plain 'def'; migrated routes must be "
            "'async def'. Mount sync routes with include_legacy."
        )


def pair(
    legacy: Iterable[Endpoint | BaseRoute], async_: Iterable[Endpoint | BaseRoute]
) -> tuple[dict[str, RouteEntry], list[PathGroup | BaseRoute]]:
    """Pair endpoints by key; return the entries and the routes in matching order.

    Legacy order is kept; an async-only path is placed just before the first path that
    follows it on the async side, so `/users/me` still wins over `/users/{user_id}`.
    """
    entries: dict[str, RouteEntry] = {}
    groups: dict[str, PathGroup] = {}
    ordered: list[PathGroup | BaseRoute] = []

    def add(item: Endpoint | BaseRoute, position: int | None) -> int | None:
        if not isinstance(item, Endpoint):
            if position is None:
                ordered.append(item)
            else:
                ordered.insert(position, item)
                position += 1
            return position
        entry = entries.setdefault(item.key, RouteEntry(item.key))
        slot = "legacy" if item.side is Implementation.LEGACY else "async_"
        if getattr(entry, slot) is not None:
            raise RouteError(
                f"Route '{item.key}' is defined twice on the {item.side.value} side "
                f"({getattr(entry, slot).where} and {item.where}); keep one."
            )
        setattr(entry, slot, item)
        group = groups.get(item.path)
        if group is None:
            group = groups[item.path] = PathGroup(item.path, item.context)
            if position is None:
                ordered.append(group)
            else:
                ordered.insert(position, group)
                position += 1
        group.entries.setdefault(item.method, entry)
        return position

    for item in legacy:
        add(item, None)
    pending: list[Endpoint | BaseRoute] = []
    for item in async_:
        if isinstance(item, Endpoint) and item.path in groups:
            anchor = ordered.index(groups[item.path])
            for waiting in pending:
                anchor = add(waiting, anchor) or anchor
            pending.clear()
            add(item, None)
        else:
            pending.append(item)
    for waiting in pending:
        add(waiting, None)
    return entries, ordered


@dataclass(eq=False)
class PathGroup(BaseRoute):
    """All routes on one full path template; dispatches each request to one implementation."""

    path: str
    context: RouteContext
    entries: dict[str, RouteEntry] = field(default_factory=dict)
    table: ModeTable | None = None
    request_key: Callable[[Scope], str | None] = lambda scope: None

    def __post_init__(self) -> None:
        self.path_regex = self.context.path_regex
        self.param_convertors = self.context.param_convertors
        self.path_format = self.context.path_format
        self.name = self.context.name or ""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        match = self.path_regex.match(get_route_path(scope))
        if match is None:
            return Match.NONE, {}
        params = {k: self.param_convertors[k].convert(v) for k, v in match.groupdict().items()}
        path_params = dict(scope.get("path_params", {}))
        path_params.update(params)
        child: Scope = {"path_params": path_params}
        method = scope["method"]
        if method in self.entries or (method == "HEAD" and "GET" in self.entries):
            return Match.FULL, child
        return Match.PARTIAL, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        entry = self.entries.get(method) or (self.entries.get("GET") if method == "HEAD" else None)
        if entry is None:
            allow = ", ".join(sorted(self.entries))
            response = PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": allow}
            )
            await response(scope, receive, send)
            return
        implementation = self.decide(entry, scope)
        endpoint = entry.endpoint(implementation)
        info = scope.get("gateway")
        if isinstance(info, RequestInfo):
            info.route = entry.key
            info.path = self.path
            info.implementation = implementation
        scope["endpoint"] = endpoint.func
        scope["route"] = endpoint.context.original_route
        await endpoint.app(scope, receive, send)

    def decide(self, entry: RouteEntry, scope: Scope) -> Implementation:
        if not entry.paired:
            return entry.implementations[0]
        assert self.table is not None
        flag = self.table.get(entry.key)
        key = self.request_key(scope) if flag.mode.value == "canary" else None
        return choose(flag, salt=entry.key, request_key=key)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        return self.context.url_path_for(name, **path_params)


def request_key_reader(spec: str) -> Callable[[Scope], str | None]:
    """Build the canary request-key reader from `header:NAME` or `cookie:NAME`."""
    kind, _, name = spec.partition(":")
    if kind == "header":
        wanted = name.lower().encode("latin-1")

        def from_header(scope: Scope) -> str | None:
            for header, value in scope["headers"]:
                if header == wanted:
                    return value.decode("latin-1")  # type: ignore[no-any-return]
            return None

        return from_header

    def from_cookie(scope: Scope) -> str | None:
        for header, value in scope["headers"]:
            if header == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                cookie.load(value.decode("latin-1"))
                if name in cookie:
                    return cookie[name].value
        return None

    return from_cookie


class PrefixGuard(BaseRoute):
    """A route that only looks at requests under `prefix`; everything else is a cheap miss."""

    def __init__(self, prefix: str, route: BaseRoute) -> None:
        self.prefix = prefix
        self.route = route

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not get_route_path(scope).startswith(self.prefix):
            return Match.NONE, {}
        return self.route.matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        return self.route.url_path_for(name, **path_params)
