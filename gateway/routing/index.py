"""Routes in first-match-wins order, scanned only where a path can match.

Starlette finds a request's route by asking every route in order; with hundreds of routes
that scan is most of a request's cost. A route whose regex is Starlette's `compile_path` of
its template can only match a path that starts with the template's literal leading
segments (`/api/v1/users/{user_id}` -> api, v1, users). RouteTable files each route under
those segments in a trie; a request walks the trie along its own path and scans, in the
original order, only the routes filed on the nodes it passed. A route it cannot read that
way (a Host, a custom `matches`, a regex that is not its template's) is filed at the root,
so every request still asks it: the scan's answer is the same, first FULL wins, else the
first PARTIAL, only cheaper.

    table = RouteTable(routes, exact=(PathGroup,))
    app.router.routes.append(table)          # where the routes would have been
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, Route, WebSocketRoute
from starlette.routing import compile_path as _compile_path
from starlette.types import Receive, Scope, Send

from gateway._compat import get_route_path

__all__ = ["PrefixGuard", "RouteTable", "literal_segments"]

_CHOSEN = "gateway.route_table.chosen"  # the route a match picked, from matches to handle


def _matchers() -> set[Any]:
    found: set[Any] = {Route.matches, WebSocketRoute.matches, Mount.matches}
    try:
        from fastapi.routing import APIRoute, APIWebSocketRoute
    except ImportError:  # pragma: no cover - Starlette without FastAPI
        return found
    return found | {APIRoute.matches, APIWebSocketRoute.matches}


_PATH_MATCHERS = _matchers()  # `matches` that is the route's path_regex and nothing more


def literal_segments(route: BaseRoute, exact: tuple[type, ...] = ()) -> tuple[str, ...] | None:
    """The literal segments every path the route matches starts with; None when unknown.

    `literal_segments(Route("/users/{id}/posts", f))` -> ("users",); a Mount at "/api"
    -> ("api",); a Host or a route with its own `matches` -> None. Classes in `exact`
    match by their path_regex too.
    """
    if type(route).matches not in _PATH_MATCHERS and not isinstance(route, exact):
        return None
    path = getattr(route, "path", None)
    regex = getattr(route, "path_regex", None)
    if not isinstance(path, str) or not path.startswith("/") or regex is None:
        return None
    template = path.rstrip("/") + "/{path:path}" if isinstance(route, Mount) else path
    if _compile_path(template)[0].pattern != regex.pattern:
        return None  # a regex set by hand: nothing known about it
    found: list[str] = []
    for segment in template.split("/")[1:]:
        if "{" in segment:
            break
        found.append(segment)
    return tuple(found)


class _Node:
    __slots__ = ("candidates", "children", "own")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.own: list[int] = []
        self.candidates: tuple[BaseRoute, ...] = ()


class RouteTable(BaseRoute):
    """Routes asked in their order, only those a path's literal segments leave possible.

    It stands in a Router's list for the routes it holds and answers as their scan would:
    FULL from the first route that matches fully, else PARTIAL from the first partial one.
    """

    def __init__(self, routes: Iterable[BaseRoute], exact: tuple[type, ...] = ()) -> None:
        self.routes: list[BaseRoute] = list(routes)
        self._root = _Node()
        for number, route in enumerate(self.routes):
            node = self._root
            for segment in literal_segments(route, exact) or ():
                node = node.children.setdefault(segment, _Node())
            node.own.append(number)
        self._fill(self._root, [])

    def _fill(self, node: _Node, above: list[int]) -> None:
        numbers = sorted(above + node.own)
        node.candidates = tuple(self.routes[n] for n in numbers)
        for child in node.children.values():
            self._fill(child, numbers)

    def candidates(self, path: str) -> Sequence[BaseRoute]:
        """The routes that may match `path`, in their order."""
        node = self._root
        children = node.children
        for segment in path.split("/")[1:]:
            found = children.get(segment)
            if found is None:
                break
            node = found
            children = node.children
        return node.candidates

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.candidates(get_route_path(scope)):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child, _CHOSEN: route}
            if match is Match.PARTIAL and partial is None:
                partial = route, child
        if partial is None:
            return Match.NONE, {}
        return Match.PARTIAL, {**partial[1], _CHOSEN: partial[0]}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_CHOSEN)
        if scope.get("route") is self:  # Starlette 1.x names the route it handed over to
            scope["route"] = route
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


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
