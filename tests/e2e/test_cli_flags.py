"""`gateway flags ...` in-process (CliRunner): directly on the database, and via a real server."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli.commands import cli
from gateway.testing import serve_in_subprocess
from tests.apps.probe import ADMIN_TOKEN, PROBE

APP = "tests.apps.probe:create_probe_app"
runner = CliRunner()


def flags(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(cli, ["flags", *args], env=env, catch_exceptions=False)


def test_set_list_history_directly_on_the_database(database_url):
    db = ["--database-url", database_url, "--app", APP]
    listed = flags("list", *db)
    assert listed.exit_code == 0, listed.output
    assert "GET /probe" in listed.output
    assert "legacy+async" in listed.output

    changed = flags("set", PROBE, "canary", "--percent", "10", "--reason", "try it", *db)
    assert changed.exit_code == 0, changed.output
    assert "GET /probe legacy -> canary 10%  (try it)" in changed.output

    rows = json.loads(flags("list", "--json", *db).output)
    probe = next(r for r in rows if r["key"] == PROBE)
    assert (probe["mode"], probe["percent"]) == ("canary", 10.0)

    history = flags("history", "--database-url", database_url)
    assert history.exit_code == 0
    assert "db:" in history.output
    assert "canary 10%" in history.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["GET /prob", "async"], "Did you mean 'GET /probe'"),
        ([PROBE, "canary", "--percent", "150"], "percent: percent=150.0 is out of range"),
        ([PROBE, "shadow", "--percent", "-5"], "percent: percent=-5.0 is out of range"),
        (["GET /legacy-only", "async"], "only a legacy implementation"),
    ],
)
def test_bad_changes_exit_1_and_record_nothing(sqlite_url, args, words):
    db = ["--database-url", sqlite_url, "--app", APP]
    result = runner.invoke(cli, ["flags", "set", *args, *db])
    assert result.exit_code == 1
    assert words in result.output
    assert "no flag changes yet" in flags("history", "--database-url", sqlite_url).output


def test_no_gateway_listening_is_one_clear_line():
    from gateway.testing import free_port

    result = runner.invoke(cli, ["flags", "list", "--url", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "cannot reach the gateway at" in result.output


@pytest.mark.slow
def test_against_a_running_gateway(sqlite_url):
    env = {"GATEWAY_DATABASE_URL": sqlite_url, "GATEWAY_ADMIN_TOKENS": f"ops={ADMIN_TOKEN}"}
    with serve_in_subprocess(APP, env=env, ready_path="/probe", ready_timeout=120) as url:
        assert httpx.get(f"{url}/probe").json()["implementation"] == "legacy"

        refused = runner.invoke(cli, ["flags", "set", PROBE, "async", "--url", url])
        assert refused.exit_code == 1
        assert "401" in refused.output
        wrong = runner.invoke(
            cli, ["flags", "set", PROBE, "async", "--url", url, "--token", "x" * 20]
        )
        assert "Invalid bearer token" in wrong.output

        result = flags(
            "set", PROBE, "async", "--reason", "cutover", "--url", url,
            env={"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "ops: GET /probe legacy -> async  (cutover)" in result.output
        assert httpx.get(f"{url}/probe").json()["implementation"] == "async"

        listed = flags("list", "--url", url)
        probe_line = next(x for x in listed.output.splitlines() if x.startswith(PROBE + " "))
        assert probe_line.split()[-1] == "async"
        routes = runner.invoke(cli, ["routes"], env={"GATEWAY_ADMIN_URL": url})
        assert routes.exit_code == 0, routes.output
        assert next(x for x in routes.stdout.splitlines() if x.startswith(PROBE + " ")).endswith(
            "async"
        )
        history = json.loads(flags("history", "--json", "--url", url).output)
        assert [(h["by"], h["new"]["mode"]) for h in history] == [("ops", "async")]


def test_history_lines_escape_control_characters_of_stored_reasons(capsys):
    # Entries stored before reasons were checked may hold a carriage return or an escape.
    from gateway.cli.flags import _print_history

    row = {
        "id": 7,
        "at": "2026-12-01T00:00:00Z",
        "by": "ops",
        "route": "GET /probe",
        "old": {"mode": "legacy", "percent": 0.0},
        "new": {"mode": "async", "percent": 100.0},
        "reason": "done\rforged \x1b[2J",
    }
    _print_history([row])
    line = capsys.readouterr().out
    assert (
        line
        == "#7 2026-12-01T00:00:00Z ops: GET /probe legacy -> async  (done\\x0dforged \\x1b[2J)\n"
    )
