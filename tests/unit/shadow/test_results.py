"""What shadow results show, in-process on SQLite and PostgreSQL: an error's type, whole
message and the twin's file:line; nothing a request wrote, unless the operator keeps bodies;
a token to read them; a reset or a new twin version counting from 0."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway import Settings
from gateway.cli.commands import cli
from gateway.cli.shadow import format_shadow
from tests.apps import shadow_results
from tests.apps.shadow_results import EMAIL, results_gateway
from tests.conftest import started_client

pytestmark = [
    pytest.mark.anyio,
    # aiosqlite leaves the cursor coroutine of the refused lazy load unawaited: its own wart.
    pytest.mark.filterwarnings("ignore:coroutine 'Connection.cursor' was never awaited"),
]

TOKEN = "results-readers-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTES = ["POST /users", "GET /tasks/{task_id}", "GET /users/{user_id}/card", "GET /reports/{name}"]
APP_FILE = Path(shadow_results.__file__)
NEW_EMAIL = "grace.hopper@example.com"


def settings_for(url: str, **more) -> Settings:
    return Settings.from_environ(
        {}, database_url=url, pool_size=2, max_overflow=2, admin_tokens=f"ops={TOKEN}", **more
    )


def line_of(text: str, path: Path = APP_FILE) -> int:
    """The 1-based number of the one line of `path` that holds `text`."""
    found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def example_of(found: dict, key: str) -> dict:
    row = next(r for r in found["routes"] if r["route"] == key)
    assert row["examples"], row
    return row["examples"][0]


async def shadow_all(gw, client) -> None:
    for key in ROUTES:
        gw.modes.set_mode(key, "shadow", 100)


async def test_an_error_shows_its_type_whole_message_and_the_twins_line(database_url):
    gw = results_gateway(settings_for(database_url))
    gw.build()
    async for client in started_client(gw.app):
        await shadow_all(gw, client)
        for path in ("/tasks/1", "/users/1/card", "/reports/weekly"):
            assert (await client.get(path)).status_code == 200  # legacy answers
        await gw.shadow.settle()
        found = (await client.get("/_gateway/shadow", headers=AUTH)).json()

    lazy = example_of(found, "GET /tasks/{task_id}")["detail"]["failure"]
    assert lazy["type"] == "ResponseValidationError"
    cause = lazy["message"].splitlines()[1]  # the cause, past the first line
    assert cause.startswith("  response.assignee: Error extracting attribute: ")
    assert "MissingGreenlet" in cause and "greenlet_spawn has not been called" in cause
    # Raised in FastAPI's serializer: no frame is the app's, so the twin's own route.
    assert lazy["where"].endswith(f"shadow_results.py:{line_of('async def read_task(') - 1}")

    invalid = example_of(found, "GET /users/{user_id}/card")["detail"]
    assert invalid["failure"]["type"] == "ResponseValidationError"
    message = invalid["failure"]["message"].splitlines()
    assert message[0] == "1 validation error:"
    assert "response.nickname: Field required (missing)" in message[1]
    assert invalid["error"].startswith("ResponseValidationError: 1 validation error")
    assert invalid["failure"]["where"].endswith(
        f"shadow_results.py:{line_of('async def user_card(') - 1}"
    )

    raised = example_of(found, "GET /reports/{name}")["detail"]["failure"]
    assert raised == {
        "type": "ValueError",
        # Whole, and without 'weekly': that is a value of legacy's body.
        "message": "cannot render …:\nno template for this report",
        "where": raised["where"],
    }
    # Raised in a helper of the twin's module: that line, not the route's.
    assert raised["where"].endswith(f"shadow_results.py:{line_of('no template for this')}")

    shown = format_shadow(found, width=None)
    assert "async raised ValueError at " in shown
    assert f"shadow_results.py:{line_of('no template for this')}:" in shown
    assert "      no template for this report" in shown  # the second line of its message
    assert "response.nickname: Field required (missing)" in shown


async def test_no_written_value_reaches_a_log_line_or_an_answer(database_url, caplog):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="gateway")
    gw = results_gateway(settings_for(database_url))
    gw.build()
    async for client in started_client(gw.app):
        await shadow_all(gw, client)
        created = await client.post("/users", json={"email": NEW_EMAIL, "name": "Grace"})
        assert created.status_code == 201 and created.json()["email"] == NEW_EMAIL
        await client.get("/users/1/card")  # its validation error's input holds EMAIL
        await gw.shadow.settle()
        anonymous = await client.get("/_gateway/shadow")
        wrong = await client.get("/_gateway/shadow", headers={"Authorization": "Bearer nope"})
        shown = await client.get("/_gateway/shadow", headers=AUTH)
        public = [await client.get(p) for p in ("/_gateway/routes", "/_gateway/history")]

    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert shown.status_code == 200
    for answer in (anonymous, wrong, shown, *public):
        assert NEW_EMAIL not in answer.text and EMAIL not in answer.text
    writes = example_of(shown.json(), "POST /users")["detail"]["writes"]
    assert "async only: insert users set email=…, name=…" in writes, writes
    assert "legacy only: insert users set email=…, name=…" in writes, writes
    differs = [r for r in caplog.records if "differs" in r.getMessage()]
    assert differs, "the difference was logged"  # so the next check can fail
    assert "insert users set email=…, name=…" in differs[0].getMessage()
    for record in caplog.records:
        assert NEW_EMAIL not in record.getMessage() and "GRACE" not in record.getMessage()
        assert EMAIL not in record.getMessage()


async def test_keep_bodies_keeps_the_values_for_whoever_has_a_token(database_url):
    gw = results_gateway(settings_for(database_url, shadow_keep_bodies=True))
    gw.build()
    async for client in started_client(gw.app):
        await shadow_all(gw, client)
        await client.post("/users", json={"email": NEW_EMAIL, "name": "Grace"})
        await client.get("/users/1/card")
        await gw.shadow.settle()
        anonymous = await client.get("/_gateway/shadow")
        found = (await client.get("/_gateway/shadow", headers=AUTH)).json()
    assert anonymous.status_code == 401 and NEW_EMAIL not in anonymous.text
    detail = example_of(found, "POST /users")["detail"]
    assert f"async only: insert users set email='{NEW_EMAIL}', name='GRACE'" in detail["writes"]
    assert "GRACE" in detail["bodies"]["async"]
    invalid = example_of(found, "GET /users/{user_id}/card")["detail"]["failure"]
    assert EMAIL in invalid["message"]  # the validation error's input, as raised


async def test_a_reset_starts_the_route_at_zero_in_every_worker(database_url):
    one, two = (results_gateway(settings_for(database_url)) for _ in range(2))
    one.build(), two.build()
    key = "GET /reports/{name}"
    async for first in started_client(one.app):
        async for second in started_client(two.app):
            for gw in (one, two):
                gw.modes.set_mode(key, "shadow", 100)
            for name in ("a", "b", "c"):
                await first.get(f"/reports/{name}")
            await one.shadow.settle()
            await one.shadow.flush()
            before = (await second.get("/_gateway/shadow", headers=AUTH)).json()
            refused = await second.delete("/_gateway/shadow/GET%20%2Freports%2F%7Bname%7D")
            unknown = await second.delete("/_gateway/shadow/GET%20%2Freport", headers=AUTH)
            done = await second.delete(
                "/_gateway/shadow/GET%20%2Freports%2F%7Bname%7D", headers=AUTH
            )
            await one.shadow.flush()  # the first worker learns of the reset here
            after = (await first.get("/_gateway/shadow", headers=AUTH)).json()
            await first.get("/reports/d")
            await one.shadow.settle()
            await one.shadow.flush()
            again = (await second.get("/_gateway/shadow", headers=AUTH)).json()

    def errors(found: dict) -> tuple[int, int]:
        row = next(r for r in found["routes"] if r["route"] == key)
        return row["candidate_errors"], len(row["examples"])

    assert errors(before) == (3, 3)
    assert refused.status_code == 401
    assert unknown.status_code == 404
    assert unknown.json()["suggestions"] == [key], unknown.json()
    assert done.status_code == 200 and done.json() == {"route": key, "reset": True, "by": "ops"}
    assert errors(after) == (0, 0)
    assert one.shadow.results.routes[key].counts["candidate_error"] == 1  # the one since
    assert errors(again) == (1, 1)


TWIN = """
from fastapi import APIRouter

router = APIRouter()


@router.get("/reports/{{name}}")
async def report(name: str):
    return {{"report": name.upper()}}  # {version}
"""


def twin_module(directory: Path, version: str, name: str):
    """A twin of GET /reports/{name} (it upper-cases: a difference), loaded from a file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "twin.py"
    path.write_text(TWIN.format(version=version))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.router


async def test_a_new_twin_version_starts_at_zero(database_url, tmp_path):
    key = "GET /reports/{name}"
    deployed = {
        "first": twin_module(tmp_path / "host1", "version 1", "twin_first"),
        "same": twin_module(tmp_path / "host2", "version 1", "twin_same"),  # another host
        "fixed": twin_module(tmp_path / "host3", "version 2", "twin_fixed"),
    }
    found = {}
    for label, twins in deployed.items():
        gw = results_gateway(settings_for(database_url), twins)
        gw.build()
        async for client in started_client(gw.app):
            gw.modes.set_mode(key, "shadow", 100)
            await client.get(f"/reports/{label}")
            await gw.shadow.settle()
            row = next(
                r
                for r in (await client.get("/_gateway/shadow", headers=AUTH)).json()["routes"]
                if r["route"] == key
            )
            found[label] = (row["version"], row["different"], len(row["examples"]))
    version = found["first"][0]
    assert found["first"] == (version, 1, 1)
    assert found["same"] == (version, 2, 2)  # the same code elsewhere: the same version
    assert found["fixed"][0] != version
    assert found["fixed"][1:] == (1, 1)  # a new version: only its own comparison


def test_the_cli_resets_a_route_through_the_admin_api(monkeypatch):
    calls = []

    def answer(method, url, path, token, **kwargs):
        calls.append((method, path, token))
        return {"route": "GET /reports/{name}", "reset": True, "by": "ops"}

    monkeypatch.setattr("gateway.cli.shadow.request_gateway", answer)
    result = CliRunner().invoke(cli, ["shadow", "--reset", "GET /reports/{name}", "--token", TOKEN])
    assert result.exit_code == 0, result.output
    assert calls == [("DELETE", "/_gateway/shadow/GET%20%2Freports%2F%7Bname%7D", TOKEN)]
    assert "GET /reports/{name}: shadow comparisons reset by ops" in result.output
