"""The operator page's first HTML, in-process: the route table server-rendered (every value
escaped) when reads are open, and no route when reads need a token. In Chromium with scripts
off: tests/e2e/test_page_first_html.py."""

from __future__ import annotations

import pytest

from gateway.admin.page import route_rows_html
from tests.apps.probe import PROBE, create_probe_gateway, probe_settings
from tests.conftest import started_client

TOKEN = "first-html-test-token-0123456789abcdef"


def test_the_rows_escape_every_value():
    row = {
        "key": 'GET /a/<b>&"c"',
        "implementations": ["legacy"],
        "mode": "legacy",
        "percent": None,
        "paired": False,
        "legacy": "app.<locals>.x",
        "async": None,
        "blocks_loop": {"legacy": ["app.<locals>.x"]},
    }
    found = route_rows_html([row])
    assert "<b>" not in found and "<locals>" not in found
    assert 'data-route="GET /a/&lt;b&gt;&amp;&quot;c&quot;"' in found


@pytest.mark.anyio
async def test_reads_behind_a_token_put_no_route_in_the_first_html(sqlite_url):
    settings = probe_settings(sqlite_url, admin_tokens=f"ops={TOKEN}")
    open_page = await first_html(create_probe_gateway(settings).build())
    assert f'<tr data-route="{PROBE}">' in open_page and "as of " in open_page
    guarded = probe_settings(
        sqlite_url, admin_tokens=f"ops={TOKEN}", admin_read_requires_token=True
    )
    page = await first_html(create_probe_gateway(guarded).build())
    assert "<tr data-route=" not in page
    assert "enter an admin token to see the routes" in page


async def first_html(app) -> str:
    async for client in started_client(app):
        return (await client.get("/_gateway/")).text
    raise AssertionError("the client never started")
