"""The operator's page in a real headless Chromium against a real `gateway serve`.

Open the page, enter the admin token, flip a route to async, and see the next request
served by the async implementation (told by gateway_requests_total's implementation label).
A canary with traffic on both sides shows side by side with its charts, and one click (and
its confirmation) sends it back to legacy. Screenshots go to the test's tmp dir; run with
`-s` to see their paths.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.testing import serve_in_subprocess

pytestmark = pytest.mark.slow

TOKEN = "page-test-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROUTE = "GET /users"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("page") / "gateway.db"
    env = {
        "GATEWAY_DATABASE_URL": f"sqlite:///{database}",
        "GATEWAY_ADMIN_TOKENS": f"ops={TOKEN}",
    }
    with serve_in_subprocess(env=env, ready_path="/_gateway/live") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is missing: apt-get install chromium (scripts/test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def served(url: str, implementation: str) -> float:
    """How many GET /users requests `implementation` has served, from /metrics."""
    text = httpx.get(f"{url}/metrics").text
    wanted = ('route="/users"', 'method="GET"', f'implementation="{implementation}"')
    total = 0.0
    for line in text.splitlines():
        if line.startswith("gateway_requests_total{") and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_page_flips_a_route_in_a_real_browser(server, browser):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{server}/_gateway/?refresh=1")
    row = page.locator(f'#routes tr[data-route="{ROUTE}"]')
    mode = row.locator("td.mode .mode-name")
    expect(mode).to_have_text("legacy")
    expect(page.locator("#token-state")).to_have_text("no token: read-only")

    # A wrong token is refused and changes nothing.
    page.fill("#token", "not-the-token-but-long-enough")
    page.click("#token-use")
    row.locator("select").select_option("async")
    row.locator("button.apply").click()
    expect(page.locator("#message")).to_contain_text("The token was rejected (401)")
    assert httpx.get(f"{server}/users").status_code == 200
    assert mode.text_content() == "legacy"

    # The real token flips the route; the page shows the new mode.
    page.click("#token-forget")
    page.fill("#token", TOKEN)
    page.click("#token-use")
    assert page.locator("#token").input_value() == ""  # the field does not keep it
    assert page.evaluate("sessionStorage.getItem('gateway.adminToken')") == TOKEN
    assert TOKEN not in page.content()
    row.locator("select").select_option("async")
    row.locator("input.reason").fill("page test")
    before = {impl: served(server, impl) for impl in ("legacy", "async")}
    row.locator("button.apply").click()
    expect(page.locator("#message")).to_have_text(f"{ROUTE} now serves: async")
    expect(mode).to_have_text("async")
    expect(row.locator("input.reason")).to_have_value("")

    # The next request is served by the async implementation.
    response = httpx.get(f"{server}/users")
    assert response.status_code == 200
    after = {impl: served(server, impl) for impl in ("legacy", "async")}
    assert after["async"] == before["async"] + 1
    assert after["legacy"] == before["legacy"]

    # An out-of-range percentage is stopped by the form itself: nothing is sent.
    row.locator("select").select_option("canary")
    row.locator("input[name=percent]").fill("150")
    row.locator("button.apply").click()
    expect(row.locator("input[name=percent]:invalid")).to_have_count(1)
    expect(page.locator("#message")).to_have_text(f"{ROUTE} now serves: async")
    expect(mode).to_have_text("async")

    # The flip is in the history with the token's name and the reason typed in.
    history = httpx.get(f"{server}/_gateway/history").json()["history"]
    assert len(history) == 1
    assert history[0]["route"] == ROUTE
    assert re.search("page test", str(history[0]))
    assert "ops" in str(history[0])

    # A flip made elsewhere (here: the admin API) shows up by itself on the next refresh.
    back = httpx.put(
        f"{server}/_gateway/routes/GET%20%2Fusers",
        json={"mode": "legacy", "reason": "back"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert back.status_code == 200
    expect(mode).to_have_text("legacy", timeout=15_000)
    expect(page.locator("#refreshed")).to_contain_text("every 1 s")

    page.close()


def test_page_is_served_with_a_strict_policy_and_no_secret(server):
    response = httpx.get(f"{server}/_gateway/")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert TOKEN not in response.text
    assert 'data-prefix="/_gateway"' in response.text
    assert httpx.get(f"{server}/_gateway/static/page.js").status_code == 200
    assert httpx.get(f"{server}/_gateway/static/..%2Fpage.py").status_code == 404


@pytest.fixture(scope="module")
def canary_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("canary") / "gateway.db"
    env = {
        "GATEWAY_DATABASE_URL": f"sqlite:///{database}",
        "GATEWAY_ADMIN_TOKENS": f"ops={TOKEN}",
    }
    with serve_in_subprocess(env=env, ready_path="/_gateway/live") as url:
        yield url


def test_page_compares_a_canary_side_by_side_and_rolls_it_back(canary_server, browser, tmp_path):
    from playwright.sync_api import expect

    server = canary_server
    flipped = httpx.put(
        f"{server}/_gateway/routes/GET%20%2Fusers",
        json={"mode": "canary", "percent": 50, "reason": "try async on half"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert flipped.status_code == 200, flipped.text
    with httpx.Client() as client:
        for user in range(120):  # the canary splits users, so both sides serve some
            client.get(f"{server}/users", headers={"x-user-id": str(user)}).raise_for_status()
    assert served(server, "legacy") > 0 and served(server, "async") > 0

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []  # a CSP violation, a script error or a failed fetch lands here

    def on_console(message) -> None:
        # The browser's own favicon request is the one 404 allowed (the page has no icon).
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location['url']})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/_gateway/?refresh=1")
    page.fill("#token", TOKEN)
    page.click("#token-use")
    row = page.locator(f'#routes tr[data-route="{ROUTE}"]')
    expect(row.locator("td.mode .mode-name")).to_have_text("canary 50% async")
    expect(row.locator("td.mode .judge")).to_contain_text("judge: judged")
    expect(row.locator("select")).to_have_value("canary")
    expect(row.locator("input[name=percent]")).to_have_value("50")
    expect(row.locator("td.change")).to_contain_text("ops")
    expect(row.locator("td.change")).to_contain_text("try async on half")

    # Both sides over the window, with their numbers and a chart of each.
    sides = {
        side: page.locator(f'#pairs tr[data-route="{ROUTE}"][data-side="{side}"]')
        for side in ("legacy", "async")
    }
    for side in sides.values():
        expect(side.locator("td.requests")).not_to_have_text("0")
    counts = {name: int(side.locator("td.requests").inner_text()) for name, side in sides.items()}
    assert counts["legacy"] + counts["async"] >= 120, counts
    assert counts["legacy"] > 0 and counts["async"] > 0, counts
    for field in ("rate_per_second", "p95_seconds"):
        chart = page.locator(f'#pairs svg.chart[data-route="{ROUTE}"][data-field="{field}"]')
        expect(chart.locator("path.line.legacy")).to_have_count(1)
        expect(chart.locator("path.line.async")).to_have_count(1)
    expect(page.locator("#history tbody tr").first).to_contain_text("legacy → canary 50%")

    # Search narrows every list to the routes that match.
    page.fill("#search", "users/first")
    expect(page.locator("#routes tbody tr:visible")).to_have_count(1)
    expect(page.locator('#routes tr[data-route="GET /users/first"]')).to_be_visible()
    expect(row).to_be_hidden()
    page.fill("#search", "")
    expect(row).to_be_visible()

    canary_shot = tmp_path / "page-canary.png"
    page.screenshot(path=str(canary_shot), full_page=True)
    print(f"screenshot of the canary side by side: {canary_shot}")

    # One click asks first; cancelling changes nothing.
    row.locator("button.back-start").click()
    row.locator("button.back-cancel").click()
    expect(row.locator("td.mode .mode-name")).to_have_text("canary 50% async")
    row.locator("button.back-start").click()
    expect(row.locator(".confirm")).to_contain_text(f"Send every request of {ROUTE} to legacy?")
    row.locator("button.back-confirm").click()
    expect(page.locator("#message")).to_have_text(f"{ROUTE} now serves: legacy")
    expect(row.locator("td.mode .mode-name")).to_have_text("legacy")
    expect(row.locator("button.back-start")).to_be_hidden()  # nothing to roll back now
    expect(row.locator("select")).to_have_value("legacy")  # the form follows the new mode
    expect(row.locator("td.change")).to_contain_text("back to legacy from the operator's page")
    expect(page.locator("#history tbody tr").first).to_contain_text("canary 50% → legacy")

    # Every user is on legacy again, including those the canary sent to async.
    before = {impl: served(server, impl) for impl in ("legacy", "async")}
    with httpx.Client() as client:
        for user in range(20):
            client.get(f"{server}/users", headers={"x-user-id": str(user)}).raise_for_status()
    after = {impl: served(server, impl) for impl in ("legacy", "async")}
    assert after == {"legacy": before["legacy"] + 20, "async": before["async"]}
    history = httpx.get(f"{server}/_gateway/history").json()["history"]
    assert [(h["new"]["mode"], h["by"]) for h in history] == [("legacy", "ops"), ("canary", "ops")]

    rolled_back_shot = tmp_path / "page-rolled-back.png"
    page.screenshot(path=str(rolled_back_shot), full_page=True)
    print(f"screenshot after the rollback: {rolled_back_shot}")
    page.close()
    assert errors == []


def test_page_sets_a_route_in_shadow_and_shows_its_comparisons(server, browser, tmp_path):
    from playwright.sync_api import expect

    key = "GET /users/{user_id}"
    page = browser.new_page()
    page.goto(f"{server}/_gateway/?refresh=1")
    page.fill("#token", TOKEN)
    page.click("#token-use")
    row = page.locator(f'#routes tr[data-route="{key}"]')
    row.locator("select").select_option("shadow")
    expect(row.locator("input[name=percent]")).to_have_value("100")
    row.locator("input.reason").fill("compare first")
    row.locator("button.apply").click()
    expect(page.locator("#message")).to_have_text(f"{key} now serves: shadow 100% (legacy serves)")
    for user_id in (1, 2, 3, 999):
        assert httpx.get(f"{server}/users/{user_id}").status_code in (200, 404)
    shadow = page.locator(f'#shadow tr[data-route="{key}"]')
    # Four comparisons, all the same: the example's twin is correct.
    expect(shadow.locator("td").nth(1)).to_have_text("4", timeout=15_000)
    expect(shadow.locator("td").nth(3)).to_have_text("0")
    expect(page.locator("#shadow-state")).to_contain_text("every worker")
    page.screenshot(path=str(tmp_path / "page-shadow.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'page-shadow.png'}")
    back = httpx.put(
        f"{server}/_gateway/routes/GET%20%2Fusers%2F%7Buser_id%7D",
        json={"mode": "legacy", "reason": "done comparing"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert back.status_code == 200
    page.close()
