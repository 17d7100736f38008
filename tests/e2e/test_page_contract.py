"""The operator's page flags a twin that differs from its legacy route (the pairing
contract), in a real headless Chromium against a real `gateway serve`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.testing import serve_in_subprocess
from tests.e2e.test_page import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = pytest.mark.slow

ACCEPTED = "GET /api/items/{item_id}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("contract") / "gateway.db"
    env = {"GATEWAY_DATABASE_URL": f"sqlite:///{database}"}
    app = "tests.apps.guarded:create_accepted_app"
    with serve_in_subprocess(app, env=env, ready_path="/_gateway/live") as url:
        yield url


def test_page_flags_an_accepted_twin_with_its_reason_and_differences(server, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/_gateway/?refresh=1")
    flag = page.locator(f'#routes tr[data-route="{ACCEPTED}"] td.key details.contract')
    expect(flag.locator("summary")).to_have_text(
        "differs from legacy, accepted: the v2 API is public: the ingress checks keys"
    )
    flag.locator("summary").click()
    expect(flag.locator("li")).to_contain_text(
        "legacy runs verify_api_key from a dependencies= list"
    )
    page.close()
    assert errors == []
