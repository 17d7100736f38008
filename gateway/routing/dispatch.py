"""Finding routes on both sides, pairing them, and dispatching each request to one side.

A route's key is its method and full path template: "GET /users/{user_id}". Routes with the
same key on the legacy and the async side form a paired route; the ModeTable decides per
request which one serves it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway._compat import RouteView, get_route_path, route_views
from gateway.exceptions import RouteError, RouteKindError
from gateway.flags.table import Flag, ModeTable, choose, shadowed
from gateway.modes import Implementation, Mode
from gateway.naming import by_reason, qualified_name
from gateway.request_info import current_request
from gateway.routing.index import PrefixGuard, RouteTable
from gateway.routing.otel import tag_span

__all__ = [
    "Endpoint",
    "PathGroup",
    "PrefixGuard",
    "RouteEntry",
    "RouteSlot",
    "Shadow",
    "collect",
    "dispatch_routes",
    "pair",
    "route_key",
]

log = logging.getLogger("gateway.routing")


def route_key(method: str, path: str) -> str:
    """`route_key("GET", "/users/{user_id}")` -> "GET /users/{user_id}"."""
    return f"{method.upper()} {path}"


@dataclass(eq=False)
class Endpoint:
    """One implementation of one route: what to call and how to describe it."""

    side: Implementation
    method: str
    path: str
    context: RouteView
    app: ASGIApp
    fallback: str | None = None  # why a legacy route keeps FastAPI's handler, if it does

    @property
    def key(self) -> str:
        return route_key(self.method, self.path)

    @property
    def func(self) -> Callable[..., Any]:
        return self.context.endpoint

    @property
    def where(self) -> str:
        return qualified_name(self.func)

    @property
    def kind(self) -> str:
        """How FastAPI runs it: "async def" on the event loop, "def" in a worker thread."""
        return "async def" if _is_async(self.func) else "def"


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
    app_for: Callable[[RouteView], tuple[ASGIApp, str | None]] | None = None,
) -> list[Endpoint | BaseRoute]:
    """Flatten (nested) routes into Endpoints, in matching order; other routes pass through.

    `app_for` builds the ASGI app that serves an API route and says why, if it is FastAPI's
    own handler rather than the fast path (default: FastAPI's own, no reason).
    """
    found: list[Endpoint | BaseRoute] = []
    for view in route_views(routes):
        if not isinstance(view, RouteView):
            found.append(view)  # mounts, websockets, plain routes: as FastAPI serves them
            continue
        _check_kind(view, side)
        app, fallback = app_for(view) if app_for else (view.app, None)
        for method in sorted(view.methods):
            found.append(Endpoint(side, method, view.path, view, app, fallback))
    kept = [(e.key, e.fallback) for e in found if isinstance(e, Endpoint) and e.fallback]
    if kept:  # a line per build, however many routes: the list is on DEBUG
        counts = "; ".join(f"{len(keys)} because {why}" for why, keys in by_reason(kept))
        log.info("%d legacy route(s) keep FastAPI's own handler: %s", len(kept), counts)
        log.debug("on FastAPI's own handler: %s", "; ".join(f"{k} ({why})" for k, why in kept))
    return found


def _check_kind(context: RouteView, side: Implementation) -> None:
    # Legacy routes are served as they are; a migrated `def` is ambiguous (it takes a thread).
    if side is Implementation.LEGACY:
        return
    func = context.endpoint
    if func is None or _is_async(func):
        return
    methods = ",".join(sorted(context.methods or ()))
    where = qualified_name(func)
    raise RouteKindError(
        f"Async route '{methods} {context.path}' ({where}) is a plain 'def'; migrated routes "
        "must be 'async def'. Mount sync routes with include_legacy."
    )


@dataclass(eq=False)
class RouteSlot:
    """One route's place in the composed app, before dispatch exists: its context and, per
    method, the entry that serves it (what `pair` lays out and `dispatch_routes` builds)."""

    context: RouteView
    entries: dict[str, RouteEntry] = field(default_factory=dict)


def pair(
    legacy: Iterable[Endpoint | BaseRoute], async_: Iterable[Endpoint | BaseRoute]
) -> tuple[dict[str, RouteEntry], list[RouteSlot | BaseRoute]]:
    """Pair endpoints by key; return the entries and the routes in matching order.

    Every legacy route keeps its place and its methods, so a request meets the routes in
    the order the legacy app alone has them (same match, same 405). An async twin joins
    its legacy route. An async-only route goes just before the legacy route the next
    paired async route joins, so `/users/me` still wins over `/users/{user_id}`; one that
    shares a path with a legacy route goes just after it; the rest go last.
    """
    entries: dict[str, RouteEntry] = {}
    layout: list[RouteSlot | BaseRoute] = []
    slot_of: dict[str, RouteSlot] = {}
    first_on_path: dict[str, RouteSlot] = {}
    for run in _runs(legacy):
        if isinstance(run, BaseRoute):
            layout.append(run)
            continue
        slot = RouteSlot(run[0].context)
        for endpoint in run:
            slot.entries[endpoint.method] = _add(entries, endpoint)
            slot_of[endpoint.key] = slot
        first_on_path.setdefault(run[0].path, slot)
        layout.append(slot)

    before: dict[int, list[RouteSlot | BaseRoute]] = {}
    after: dict[int, list[RouteSlot | BaseRoute]] = {}
    pending: list[RouteSlot | BaseRoute] = []
    for run in _runs(async_):
        if isinstance(run, BaseRoute):
            pending.append(run)
            continue
        rest = RouteSlot(run[0].context)
        anchor = None
        for endpoint in run:
            entry = _add(entries, endpoint)
            if endpoint.key in slot_of:
                anchor = anchor or slot_of[endpoint.key]
            else:
                rest.entries[endpoint.method] = entry
        anchor = anchor or first_on_path.get(run[0].path)
        if anchor is None:
            pending.append(rest)
            continue
        before.setdefault(id(anchor), []).extend(pending)
        pending.clear()
        if rest.entries:
            after.setdefault(id(anchor), []).append(rest)

    ordered: list[RouteSlot | BaseRoute] = []
    for item in layout:
        ordered += before.get(id(item), ())
        ordered.append(item)
        ordered += after.get(id(item), ())
    return entries, ordered + pending


def _runs(items: Iterable[Endpoint | BaseRoute]) -> Iterator[list[Endpoint] | BaseRoute]:
    # `collect` gives one Endpoint per method; the methods of one route come in a row.
    run: list[Endpoint] = []
    for item in items:
        if isinstance(item, Endpoint) and run and _same_route(run[0], item):
            run.append(item)
            continue
        if run:
            yield run
            run = []
        if isinstance(item, Endpoint):
            run = [item]
        else:
            yield item
    if run:
        yield run


def _same_route(one: Endpoint, other: Endpoint) -> bool:
    # The same route object included twice under other prefixes is two routes.
    return one.path == other.path and one.context.original_route is other.context.original_route


def _add(entries: dict[str, RouteEntry], endpoint: Endpoint) -> RouteEntry:
    entry = entries.setdefault(endpoint.key, RouteEntry(endpoint.key))
    slot = "legacy" if endpoint.side is Implementation.LEGACY else "async_"
    found: Endpoint | None = getattr(entry, slot)
    if found is not None:
        raise RouteError(
            f"Route '{endpoint.key}' is defined twice on the {endpoint.side.value} side "
            f"({found.where} and {endpoint.where}); keep one."
        )
    setattr(entry, slot, endpoint)
    return entry


class Shadow(Protocol):
    """Serves a sampled request of a route in shadow mode (gateway.shadow.runner.ShadowRunner)."""

    async def serve(
        self, entry: RouteEntry, scope: Scope, receive: Receive, send: Send
    ) -> None: ...


def dispatch_routes(
    layout: Iterable[RouteSlot | BaseRoute],
    table: ModeTable,
    request_key: Callable[[Scope], str | None],
    shadow: Shadow | None = None,
    fresh: Callable[[], None] | None = None,
) -> list[BaseRoute]:
    """The composed app's routes, in one RouteTable (gateway.routing.index): a PathGroup for
    each slot `pair` laid out, others as is.

    `fresh`, when given, runs before a paired route reads its flag (gateway.flags.board).
    """
    routes = [
        PathGroup(item.context, item.entries, table, request_key, shadow, fresh)
        if isinstance(item, RouteSlot)
        else item
        for item in layout
    ]
    return [RouteTable(routes, exact=(PathGroup,))]


class PathGroup(BaseRoute):
    """The methods one route answers on its path; picks each request's implementation.

    It stands where the legacy route (or the async-only route) stood and matches as that
    route does: FULL for its own methods only (FastAPI's APIRoute has no implicit HEAD),
    PARTIAL for other methods on its path. A PARTIAL match answers what Starlette's
    `Route.handle` answers: `HTTPException(405)` with `Allow` = the route's methods, so
    the app's exception handlers shape the body.

        group = PathGroup(slot.context, slot.entries, gateway.modes, read_key)
    """

    def __init__(
        self,
        context: RouteView,
        entries: dict[str, RouteEntry],
        table: ModeTable,
        request_key: Callable[[Scope], str | None],
        shadow: Shadow | None = None,
        fresh: Callable[[], None] | None = None,
    ) -> None:
        if not entries:
            raise RouteError(f"PathGroup for {context.path!r} got no methods; expected one.")
        self.context = context
        self.path = context.path or ""
        self.entries = entries
        self.table = table
        self.request_key = request_key
        self.shadow = shadow
        self.fresh = fresh
        self.path_regex = context.path_regex
        self.param_convertors = context.param_convertors
        self.path_format = context.path_format
        self.name = context.name or ""
        methods = context.methods or set()
        # Joined as Starlette joins it; an async-only rest answers for its own methods only.
        self.allow = ", ".join(methods if set(methods) == set(entries) else sorted(entries))
        first = next(iter(entries.values()))
        self.first = first.legacy or first.async_
        # Per method, looked up once: (entry, key when paired else None, legacy, async endpoint).
        self._plans = {
            method: (entry, entry.key if entry.paired else None, entry.legacy, entry.async_)
            for method, entry in entries.items()
        }

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
        if scope["method"] in self.entries:
            return Match.FULL, child
        return Match.PARTIAL, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self._plans.get(scope["method"])
        if plan is None:
            await self.method_not_allowed(scope, receive, send)
            return
        entry, key, legacy, async_ = plan
        if key is None:  # one implementation only
            flag = None
            endpoint = legacy if legacy is not None else async_
            assert endpoint is not None
            implementation = endpoint.side
        else:
            if self.fresh is not None:
                self.fresh()
            flag = self.table.get(key)  # read once per request
            mode = flag.mode
            if mode is Mode.ASYNC:
                implementation = Implementation.ASYNC
            elif mode is Mode.LEGACY:
                implementation = Implementation.LEGACY
            else:
                implementation = self.decide(entry, scope, flag)
            endpoint = async_ if implementation is Implementation.ASYNC else legacy
            assert endpoint is not None
        info = current_request.get()
        if info is not None:
            info.route = entry.key
            info.path = self.path
            info.implementation = implementation
        if tag_span is not None:  # OpenTelemetry installed (gateway.routing.otel)
            tag_span(entry.key, implementation, flag)
        scope["endpoint"] = endpoint.context.endpoint
        scope["route"] = endpoint.context.original_route
        if (
            flag is not None
            and flag.mode is Mode.SHADOW
            and self.shadow is not None
            and shadowed(flag, salt=entry.key, request_key=self.request_key(scope))
        ):
            await self.shadow.serve(entry, scope, receive, send)
            return
        await endpoint.app(scope, receive, send)

    def decide(self, entry: RouteEntry, scope: Scope, flag: Flag | None) -> Implementation:
        """The implementation for this request; `flag` is the route's (None: not paired)."""
        if flag is None:
            return Implementation.LEGACY if entry.async_ is None else Implementation.ASYNC
        key = self.request_key(scope) if flag.mode is Mode.CANARY else None
        return choose(flag, salt=entry.key, request_key=key)

    async def method_not_allowed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette's own 405 for a method this route lacks (raised inside an app)."""
        if self.first is not None:
            scope["endpoint"] = self.first.func
            scope["route"] = self.first.context.original_route
        headers = {"Allow": self.allow}
        if "app" in scope:
            raise HTTPException(status_code=405, headers=headers)
        response = PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)
        await response(scope, receive, send)

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
