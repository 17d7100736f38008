"""Shadow results on a real `gateway serve`: the operator page in headless Chromium and the
`gateway shadow` command show an error's type, whole message and the twin's file:line, to
whoever has the admin token only; `gateway shadow --reset` starts a route from 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli.commands import cli
from gateway.testing import serve_in_subprocess
from tests.apps import shadow_results
from tests.e2e.test_page import browser  # noqa: F401 - the headless Chromium fixture

pytestmark = pytest.mark.slow

TOKEN = "results-page-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY = "GET /reports/{name}"
APP_FILE = Path(shadow_results.__file__)
RAISED_AT = next(
    n for n, line in enumerate(APP_FILE.read_text().splitlines(), 1) if "no template for" in line
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("results") / "gateway.db"
    env = {
        "GATEWAY_DATABASE_URL": f"sqlite:///{database}",
        "GATEWAY_ADMIN_TOKENS": f"ops={TOKEN}",
    }
    app = "tests.apps.shadow_results:create_app"
    with serve_in_subprocess(app, env=env, ready_path="/_gateway/live") as url:
        flip = httpx.put(
            f"{url}/_gateway/routes/{quote(KEY, safe='')}",
            json={"mode": "shadow", "percent": 100, "reason": "compare"},
            headers=AUTH,
        )
        assert flip.status_code == 200, flip.text
        yield url


def errors_of(url: str) -> int:
    found = httpx.get(f"{url}/_gateway/shadow", headers=AUTH).json()
    return next((r["candidate_errors"] for r in found["routes"] if r["route"] == KEY), 0)


def wait_for_errors(url: str, wanted: int) -> None:
    """Until the twins of the requests sent have run (after legacy answered)."""
    import time

    deadline = time.monotonic() + 60
    while errors_of(url) < wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{wanted} shadow errors expected; {errors_of(url)} after 60 s")
        time.sleep(0.2)


def test_the_page_shows_an_error_whole_to_an_operator_with_the_token(server, browser):  # noqa: F811
    from playwright.sync_api import expect

    before = errors_of(server)
    assert httpx.get(f"{server}/reports/weekly").json() == {"report": "weekly"}
    wait_for_errors(server, before + 1)
    assert httpx.get(f"{server}/_gateway/shadow").status_code == 401
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server}/_gateway/?refresh=1")
    expect(page.locator("#shadow-state")).to_contain_text("need the admin token")
    expect(page.locator("#shadow tbody tr")).to_have_count(0)
    page.fill("#token", TOKEN)
    page.click("#token-use")
    example = page.locator(f'#shadow-examples li[data-route="{KEY}"]').first
    expect(example).to_contain_text(
        f"async raised ValueError at tests/apps/shadow_results.py:{RAISED_AT}", timeout=15_000
    )
    expect(example.locator("pre.failure")).to_have_text(
        "cannot render …:\nno template for this report"
    )
    page.close()
    assert errors == []


def test_the_cli_shows_the_error_and_resets_the_route(server):
    runner = CliRunner()
    before = errors_of(server)
    httpx.get(f"{server}/reports/monthly")
    wait_for_errors(server, before + 1)  # no twin still running when the route is reset
    refused = runner.invoke(cli, ["shadow", "--url", server], env={"GATEWAY_ADMIN_TOKEN": ""})
    assert refused.exit_code != 0 and "401" in refused.output
    shown = runner.invoke(cli, ["shadow", "--url", server, "--token", TOKEN])
    assert shown.exit_code == 0, shown.output
    assert f"async raised ValueError at tests/apps/shadow_results.py:{RAISED_AT}:" in shown.output
    assert "      no template for this report" in shown.output
    reset = runner.invoke(cli, ["shadow", "--url", server, "--token", TOKEN, "--reset", KEY])
    assert reset.exit_code == 0, reset.output
    assert f"{KEY}: shadow comparisons reset by ops" in reset.output
    assert errors_of(server) == 0
    httpx.get(f"{server}/reports/daily")
    wait_for_errors(server, 1)
    assert errors_of(server) == 1
