"""The `gateway` command in-process (CliRunner): one error path, stored modes, finding apps."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli.commands import cli
from gateway.testing import free_port
from tests.apps.probe import PROBE

APP = "tests.apps.probe:create_probe_app"
PLAIN = "tests.unit.cli.test_cli:plain_app"
runner = CliRunner()


def plain_app():
    """A FastAPI app not built by a Gateway: what `serve mypkg.main:app` is pointed at by
    someone who has not wrapped their app yet."""
    from fastapi import FastAPI

    return FastAPI()


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["serve", "nosuch.module:app"], "no module named 'nosuch' (looked in the current"),
        (["serve", "tests.nosuch:app"], 'Could not import module "tests.nosuch"'),
        (["serve", "tests.apps.probe:nothing"], 'Attribute "nothing" not found'),
        (
            ["serve", PLAIN],
            f"not built by gateway.Gateway; serve it through the gateway as it "
            f"is with --legacy {PLAIN}",
        ),
        (["serve", "--env-file", "no-such.env"], "--env-file 'no-such.env' is not a file"),
        (["serve", "--port", "70000"], "gateway serve: Invalid value for '--port'"),
        (["routes", "nosuch.module:app"], "--app-dir names another directory"),
        (["routes", PLAIN], "wrap it in a module of yours: gw = Gateway()"),
        (["routes", "--url", "DEAD"], "cannot reach the gateway at DEAD/_gateway/routes"),
        (["routes", "--bogus"], "gateway routes: No such option: --bogus"),
        (["report", "--url", "DEAD"], "cannot reach the gateway at DEAD/_gateway/report"),
        (["flags", "list", "--url", "DEAD"], "cannot reach the gateway at DEAD/_gateway/routes"),
        (["flags", "set", PROBE, "async", "--url", "DEAD"], "cannot reach the gateway at DEAD"),
        (["flags", "history", "--url", "DEAD"], "cannot reach the gateway at DEAD/_gateway/hi"),
        (["flags", "list", "--database-url", "mysql://x/y"], "unsupported database 'mysql'"),
        (["nosuch"], "gateway: No such command 'nosuch'"),
    ],
)
def test_every_command_fails_in_one_line_on_stderr_with_exit_1(args, words):
    url = dead_url()
    result = runner.invoke(cli, [a.replace("DEAD", url) for a in args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert words.replace("DEAD", url) in result.stderr


def test_env_variables_point_report_and_routes_at_the_same_gateway():
    url = dead_url()
    env = {"GATEWAY_ADMIN_URL": url}
    for command in (["report"], ["routes"], ["flags", "list"]):
        result = runner.invoke(cli, command, env=env)
        assert result.exit_code == 1
        assert f"cannot reach the gateway at {url}/_gateway/" in result.stderr, command


def test_a_group_called_bare_shows_its_help():
    result = runner.invoke(cli, ["flags"])
    assert "List, set and audit route modes." in result.output
    assert "Traceback" not in result.output


def test_version_and_short_help():
    version = runner.invoke(cli, ["--version"])
    assert version.exit_code == 0
    assert version.stdout.startswith("gateway ") and "uvicorn " in version.stdout
    assert runner.invoke(cli, ["serve", "--version"]).stdout == version.stdout
    short = runner.invoke(cli, ["serve", "-h"], env={"COLUMNS": "200"})
    assert short.exit_code == 0
    uvicorn_names = [
        "--app-dir", "--factory", "--reload", "--root-path", "--proxy-headers",
        "--forwarded-allow-ips", "--no-access-log", "--env-file", "WEB_CONCURRENCY",
    ]  # fmt: skip
    for option in uvicorn_names:
        assert option in short.stdout, option


def test_routes_shows_the_stored_mode_not_the_default(database_url):
    changed = runner.invoke(
        cli, ["flags", "set", PROBE, "canary", "--percent", "25", "--database-url",
              database_url, "--app", APP],
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    env = {"GATEWAY_DATABASE_URL": database_url}
    listed = runner.invoke(cli, ["routes", APP], env=env)
    assert listed.exit_code == 0, listed.output
    probe = next(line for line in listed.stdout.splitlines() if line.startswith(PROBE + " "))
    assert probe.endswith("canary 25%")
    other = next(line for line in listed.stdout.splitlines() if line.startswith("GET /other"))
    assert other.endswith("legacy")  # paired, nothing stored: the default
    rows = {
        r["key"]: r
        for r in json.loads(runner.invoke(cli, ["routes", APP, "--json"], env=env).stdout)
    }
    assert (rows[PROBE]["mode"], rows[PROBE]["percent"]) == ("canary", 25.0)
    assert rows["GET /legacy-only"]["mode"] == "legacy"


def test_routes_creates_no_file_when_the_store_does_not_exist_yet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)  # the embedded ./gateway.db
    result = runner.invoke(cli, ["routes", APP])
    assert result.exit_code == 0, result.output
    assert f"{PROBE} " in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_routes_reads_a_store_whose_tables_do_not_exist_yet(tmp_path):
    from sqlalchemy import create_engine, inspect

    path = tmp_path / "app.db"
    engine = create_engine(f"sqlite:///{path}")
    engine.connect().close()  # the app's own database, the gateway never ran on it
    result = runner.invoke(cli, ["routes", APP], env={"GATEWAY_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.output
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def write_app(directory: Path, module: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from fastapi import APIRouter
            from gateway import Gateway, Settings

            legacy, migrated = APIRouter(), APIRouter()

            @legacy.get("/books/{book_id}")
            def book(book_id: int): return {"id": book_id}

            @migrated.get("/books/{book_id}")
            async def book_async(book_id: int): return {"id": book_id}

            def create_app():
                gw = Gateway(Settings.from_environ({}, database_url="sqlite:///unused.db"))
                gw.include_legacy(legacy)
                gw.include_async(migrated)
                return gw.build()

            app = create_app()
            """
        )
    )


@pytest.mark.usefixtures("isolated_imports")
def test_an_app_in_the_current_directory_is_found(tmp_path, monkeypatch):
    write_app(tmp_path, "gw_here")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["routes", "gw_here:app"])
    assert result.exit_code == 0, result.output
    assert "GET /books/{book_id}" in result.stdout


@pytest.mark.usefixtures("isolated_imports")
def test_app_dir_and_factory(tmp_path):
    write_app(tmp_path / "src", "gw_elsewhere")
    args = ["routes", "gw_elsewhere:create_app", "--app-dir", str(tmp_path / "src")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "legacy+async" in result.stdout
    assert "Could not import" in runner.invoke(cli, ["routes", "gw_nowhere:app"]).stderr


def mixed_kinds_app():
    """A legacy app with a `def` and an `async def` route, one of them migrated."""
    from fastapi import APIRouter

    from gateway import Gateway, Settings

    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/books")
    def books():
        return []

    @legacy.get("/health")
    async def health():
        return {"ok": True}

    @migrated.get("/books")
    async def books_async():
        return []

    gateway = Gateway(Settings.from_environ({}, database_url="sqlite:///never-created.db"))
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    return gateway.build()


def test_routes_shows_each_sides_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["routes", "tests.unit.cli.test_cli:mixed_kinds_app"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ROUTE", "IMPLEMENTATIONS", "KIND", "MODE"]
    assert next(x for x in lines if x.startswith("GET /books ")).split()[3:] == [
        "def", "/", "async", "def", "legacy",
    ]  # fmt: skip
    assert next(x for x in lines if x.startswith("GET /health ")).split()[3:] == [
        "async", "def", "legacy",
    ]  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_route_table_says_why_a_route_runs_on_fastapis_handler(capsys):
    from gateway.cli.common import print_routes

    rows = [
        {"key": "GET /a", "implementations": ["legacy"], "mode": "legacy", "percent": None,
         "kinds": {"legacy": "def"}, "fallback": "its dependency uses Security scopes"},
        {"key": "GET /b", "implementations": ["legacy", "async"], "mode": "canary",
         "percent": 5.0, "kinds": {"legacy": "def", "async": "async def"}},
    ]  # fmt: skip
    print_routes(rows)
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["GET", "/a", "legacy", "def", "legacy"]
    assert out[2].endswith("canary 5%")
    assert out[3] == (
        "note: GET /a runs on FastAPI's own handler: its dependency uses Security scopes"
    )
