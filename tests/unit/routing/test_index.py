"""RouteTable answers exactly as Starlette's ordered scan: generated route tables and paths
(methods, 405s, mounts, hosts, redirect_slashes, path converters), both routers asked."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Host, Mount, Route, Router

from gateway.routing.index import RouteTable, literal_segments

pytestmark = pytest.mark.anyio

LITERALS = ("api", "v1", "users", "me", "items", "a.b", "")
PARAMS = ("{x}", "{x:int}", "{x:path}", "{x:float}", "pre-{x}")


def endpoint(number: int) -> Any:
    async def answer(request: Request) -> PlainTextResponse:
        params = sorted(request.path_params.items())
        return PlainTextResponse(f"route {number} {request.url.path} {params}")

    return answer


@st.composite
def templates(draw: Any) -> str:
    segments = draw(st.lists(st.sampled_from((*LITERALS, *PARAMS)), min_size=0, max_size=4))
    seen = 0
    named = []
    for segment in segments:  # one name per parameter: Starlette refuses duplicates
        if "{x" in segment:
            seen += 1
            segment = segment.replace("{x", "{x" + str(seen))
        named.append(segment)
    return "/" + "/".join(named)


@st.composite
def tables(draw: Any) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for number in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(("route", "route", "route", "mount", "host")))
        path = draw(templates())
        if kind == "mount":
            inner = [Route(draw(templates()), endpoint(number * 100 + i)) for i in range(2)]
            routes.append(Mount(path.rstrip("/"), routes=inner))
        elif kind == "host":
            routes.append(Host("bench", app=Router([Route(path, endpoint(number))])))
        else:
            methods = draw(st.sets(st.sampled_from(("GET", "POST", "PUT")), min_size=1))
            routes.append(Route(path, endpoint(number), methods=sorted(methods)))
    return routes


paths = st.lists(st.sampled_from((*LITERALS, "7", "1.5", "x", "me/")), max_size=5).map(
    lambda parts: "/" + "/".join(parts)
)


async def answer(router: Router, method: str, path: str) -> tuple[Any, ...]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "root_path": "", "query_string": b"", "headers": [(b"host", b"bench")],
        "scheme": "http", "server": ("bench", 80),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await router(scope, receive, send)
    headers = sorted(sent[0].get("headers", []))
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def filled(route: BaseRoute, values: list[str], slash: bool) -> str:
    """A path the route's template (a Mount's, then its first route's) could match."""
    template = getattr(route, "path", "") or ""
    if isinstance(route, Mount):
        template += getattr(route.routes[0], "path", "")
    elif isinstance(route, Host):
        template = getattr(route.app.routes[0], "path", "")  # type: ignore[attr-defined]
    parts = template.split("/")
    for number, part in enumerate(parts):
        if "{" in part:
            parts[number] = part.split("{")[0] + values[number % len(values)]
    path = "/".join(parts) or "/"
    return path.rstrip("/") if slash and path.endswith("/") else path + "/" if slash else path


@st.composite
def requests_for(draw: Any, routes: list[BaseRoute]) -> list[tuple[str, str]]:
    found = []
    for _ in range(draw(st.integers(1, 8))):
        method = draw(st.sampled_from(("GET", "POST", "DELETE")))
        if draw(st.booleans()):
            path = draw(paths)
        else:
            values = draw(st.lists(st.sampled_from(("7", "1.5", "x", "x/y", "me")), min_size=1))
            path = filled(draw(st.sampled_from(routes)), values, draw(st.booleans()))
        found.append((method, path))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routes=tables(), redirect=st.booleans(), data=st.data())
async def test_same_answer_as_the_ordered_scan(routes, redirect, data):
    scan = Router(routes=routes, redirect_slashes=redirect)
    indexed = Router(routes=[RouteTable(routes)], redirect_slashes=redirect)
    for method, path in data.draw(requests_for(routes)):
        assert await answer(indexed, method, path) == await answer(scan, method, path)


def test_a_route_is_filed_under_its_literal_leading_segments():
    assert literal_segments(Route("/api/v1/users/{user_id}", endpoint(0))) == ("api", "v1", "users")
    assert literal_segments(Route("/", endpoint(0))) == ("",)
    assert literal_segments(Mount("/static", routes=[])) == ("static",)
    assert literal_segments(Route("/files-{name}", endpoint(0))) == ()
    assert literal_segments(Host("example.org", app=Router())) is None


def test_a_route_whose_regex_is_not_its_template_is_asked_for_every_path():
    route = Route("/users/{user_id}", endpoint(0))
    route.path_regex = __import__("re").compile("^/.*$")
    assert literal_segments(route) is None
    table = RouteTable([Route("/users/me", endpoint(1)), route])
    assert table.candidates("/anything/else") == (route,)
    assert table.candidates("/users/me") == (table.routes[0], route)


def test_a_path_meets_only_the_routes_it_can_match_in_their_order():
    routes = [Route(f"/api/v1/r{n}/{{item_id}}", endpoint(n)) for n in range(1000)]
    routes.append(Route("/api/v1/users/{user_id}", endpoint(1000)))
    routes.append(Route("/{slug}", endpoint(1001)))
    table = RouteTable(routes)
    assert table.candidates("/api/v1/users/7") == (routes[1000], routes[1001])
    assert table.candidates("/api/v1/r5/7") == (routes[5], routes[1001])
