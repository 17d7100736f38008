"""The operator page's first response holds its data: the route table is in the HTML the
server sends (checked in headless Chromium with scripts off, so nothing fetched it), and
times are UTC ISO like the CLI's, with the local time on hover once the script runs."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.testing import serve_in_subprocess

TOKEN = "first-html-test-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
ROUTE = "GET /users"
UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("first-html") / "gateway.db"
    env = {"GATEWAY_DATABASE_URL": f"sqlite:///{database}", "GATEWAY_ADMIN_TOKENS": f"ops={TOKEN}"}
    with serve_in_subprocess(env=env, ready_path="/_gateway/live") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is missing: apt-get install chromium (scripts/test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox"], headless=True
        )
        yield browser
        browser.close()


@pytest.mark.slow
def test_the_first_html_holds_the_route_table_with_scripts_off(server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{server}/_gateway/")
    routes = httpx.get(f"{server}/_gateway/routes").json()["routes"]
    keys = page.locator("#routes tbody tr").evaluate_all("rows => rows.map(r => r.dataset.route)")
    assert keys == [r["key"] for r in routes] and ROUTE in keys
    row = page.locator(f'#routes tr[data-route="{ROUTE}"]')
    assert row.locator("td.key").text_content() == ROUTE
    assert row.locator("td.mode .mode-name").text_content() == "legacy"
    assert row.locator("td").nth(1).text_content() == "legacy + async"
    refreshed = page.locator("#refreshed").text_content()
    assert "loading" not in refreshed and UTC_ISO.search(refreshed), refreshed
    context.close()


@pytest.mark.slow
def test_times_are_utc_iso_with_the_local_time_on_hover(server, browser):
    from playwright.sync_api import expect

    flipped = httpx.put(
        f"{server}/_gateway/routes/GET%20%2Fusers",
        json={"mode": "async", "reason": "times"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert flipped.status_code == 200, flipped.text
    at = httpx.get(f"{server}/_gateway/history").json()["history"][0]["at"]
    page = browser.new_page()
    page.goto(f"{server}/_gateway/")
    when = page.locator("#history tbody tr td.when").first
    expect(when).to_have_text(at)  # the string the CLI prints
    assert UTC_ISO.fullmatch(at)
    assert when.get_attribute("title").startswith("local time: ")
    expect(page.locator("#refreshed")).to_contain_text("Refreshed ")
    assert UTC_ISO.search(page.locator("#refreshed").text_content())
    # The script replaced the server's rows with its own (one row per route, controls in).
    expect(page.locator(f'#routes tr[data-route="{ROUTE}"]')).to_have_count(1)
    expect(page.locator(f'#routes tr[data-route="{ROUTE}"] select')).to_have_count(1)
    page.close()
