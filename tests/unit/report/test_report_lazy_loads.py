"""The report lists what each legacy route loads lazily: its async twin must eager-load it."""

from __future__ import annotations

import pytest

from gateway import Settings
from gateway.cli.report import format_report
from tests.apps.shadow_twins import twins_gateway
from tests.conftest import started_client

pytestmark = pytest.mark.anyio


async def test_lazy_loads_of_a_legacy_route_are_in_the_report(database_url):
    gw = twins_gateway(Settings.from_environ({}, database_url=database_url, pool_size=2))
    gw.build()
    async for client in started_client(gw.app):
        for author_id in (1, 2, 2):
            assert (await client.get(f"/authors/{author_id}/books")).status_code == 200
        assert (await client.get("/authors/1")).status_code == 200  # reads no relationship
        report = (await client.get("/_gateway/report")).json()
    assert report["lazy_loads"] == [
        {"route": "GET /authors/{author_id}/books", "relationships": {"Author.books": 3}}
    ]
    text = format_report(report)
    assert "Lazy loads: async will raise here unless these are eager-loaded:" in text
    assert "  GET /authors/{author_id}/books: Author.books (3)" in text
