"""Zero-code composition: `--legacy APP --async ROUTER` in serve, routes and flags, on an app
of someone else's (tests/apps/bookshop.py) written into a fresh directory."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections import Counter

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli.commands import cli
from gateway.testing import serve_in_subprocess
from tests.apps.bookshop import write_bookshop

runner = CliRunner()
COMPOSE = ["--legacy", "bookshop.main:app", "--async", "bookshop.migrated:router"]


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """A directory with the bookshop in it, as the current directory; both engines on its
    database; sys.path and sys.modules restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    write_bookshop(tmp_path)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bookshop.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    return tmp_path


def table(output: str) -> dict[str, list[str]]:
    rows = [line.split() for line in output.splitlines()[1:] if not line.startswith("note: ")]
    return {f"{row[0]} {row[1]}": row[2:] for row in rows}


def test_routes_of_a_legacy_app_and_a_migrated_router(shop):
    result = runner.invoke(cli, ["routes", *COMPOSE])
    assert result.exit_code == 0, result.output
    rows = table(result.stdout)
    assert rows["GET /authors"][0] == "legacy+async"
    assert rows["GET /authors/{author_id}"][0] == "legacy+async"
    assert rows["POST /authors"][0] == "legacy"
    assert rows["GET /books/{book_id}"][0] == "legacy"
    assert rows["GET /books/{id}"][0] == "async"
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1
    assert "GET /books/{book_id} (legacy, bookshop.main.read_book) and GET /books/{id}" in notes[0]
    assert "differ only in parameter names" in notes[0]


def test_async_may_name_a_fastapi_app_whose_routes_are_taken(shop):
    (shop / "migrated_app.py").write_text(
        textwrap.dedent(
            """
            from fastapi import FastAPI
            from bookshop.migrated import router

            app = FastAPI(title="the rewrite, on its own")
            app.include_router(router, prefix="")
            """
        )
    )
    result = runner.invoke(
        cli, ["routes", "--legacy", "bookshop.main:app", "--async", "migrated_app:app", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["GET /authors"]["paired"] is True
    assert not [key for key in rows if "/docs" in key or "openapi" in key]


def test_several_async_routers(shop):
    (shop / "more.py").write_text(
        textwrap.dedent(
            """
            from fastapi import APIRouter

            def make_router():
                router = APIRouter()

                @router.get("/books")
                async def read_books():
                    return []

                return router
            """
        )
    )
    args = ["routes", *COMPOSE, "--async", "more:make_router", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["GET /books"]["async"] == "more.make_router.<locals>.read_books"
    assert rows["GET /authors"]["paired"] is True


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["routes", "--async", "bookshop.migrated:router"], "--async bookshop.migrated:router "
         "needs --legacy naming the legacy app it is paired with"),
        (["routes", "x:app", *COMPOSE], "got both an app (x:app) and --legacy bookshop.main:app"),
        (["routes", "--legacy", "bookshop.crud:models"], "--legacy bookshop.crud:models is "
         "module; expected a FastAPI app, an APIRouter or a function that returns one"),
        (["routes", "--legacy", "bookshop.nosuch:app"], "Could not import module"),
        (["routes", "bookshop.main:app"], "serve it through the gateway as it is with "
         "--legacy bookshop.main:app"),
        (["serve", "bookshop.main:app"], "with --legacy bookshop.main:app (and --async "
         "mypkg.migrated:router for migrated routes)"),
    ],
)  # fmt: skip
def test_what_cannot_be_composed_says_why_in_one_line(shop, args, words):
    result = runner.invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert words in result.stderr


def test_flags_set_on_the_database_checks_the_key_against_the_composed_routes(shop):
    url = os.environ["GATEWAY_DATABASE_URL"]
    db = ["--database-url", url, *COMPOSE]
    wrong = runner.invoke(cli, ["flags", "set", "GET /author", "async", *db])
    assert wrong.exit_code == 1
    assert "Did you mean 'GET /authors'" in wrong.stderr
    single = runner.invoke(cli, ["flags", "set", "GET /books/{book_id}", "async", *db])
    assert "only a legacy implementation" in single.stderr
    done = runner.invoke(cli, ["flags", "set", "GET /authors", "async", *db])
    assert done.exit_code == 0, done.output
    assert "GET /authors legacy -> async" in done.stdout
    listed = table(runner.invoke(cli, ["routes", *COMPOSE]).stdout)
    assert listed["GET /authors"][-1] == "async"


def test_flags_without_an_app_check_only_the_keys_shape_and_say_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = ["--database-url", f"sqlite:///{tmp_path / 'flags.db'}"]
    done = runner.invoke(cli, ["flags", "set", "GET /books/{book_id}", "canary",
                               "--percent", "5", "--json", *db])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["new"] == {"mode": "canary", "percent": 5.0}
    assert done.stderr == (
        "note: no --app or --legacy given: 'GET /books/{book_id}' was checked for its shape "
        "only, not against the app's routes\n"
    )
    assert "Did you mean" not in done.output  # the example app's routes play no part
    bad = runner.invoke(cli, ["flags", "set", "books/1", "async", *db])
    assert bad.exit_code == 1
    assert "route_key: 'books/1' is not a route key; expected 'METHOD /path/{param}'" in bad.stderr
    mode = runner.invoke(cli, ["flags", "set", "GET /books", "shadowy", *db])
    assert "mode: Unknown mode 'shadowy'" in mode.stderr
    listed = runner.invoke(cli, ["flags", "list", *db])
    assert listed.exit_code == 0, listed.output
    assert table(listed.stdout) == {"GET /books/{book_id}": ["legacy+async", "canary", "5%"]}
    assert "only the routes with a stored flag are listed" in listed.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == ["flags.db"]


def counting_module(directory) -> None:
    (directory / "counting.py").write_text(
        textwrap.dedent(
            """
            import os
            from bookshop.migrated import router

            def make_router():
                with open(os.environ["COUNTING_FILE"], "a") as builds:
                    builds.write(f"{os.getpid()}\\n")
                return router
            """
        )
    )


@pytest.mark.slow
def test_serve_composes_once_in_each_worker(tmp_path):
    write_bookshop(tmp_path)
    counting_module(tmp_path)
    url = f"sqlite:///{tmp_path / 'bookshop.db'}"
    env = {
        "DATABASE_URL": url,
        "GATEWAY_DATABASE_URL": url,
        "COUNTING_FILE": str(tmp_path / "builds"),
        "GATEWAY_WORKERS": "",
    }
    args = ("--async=counting:make_router", "--app-dir", str(tmp_path))
    with serve_in_subprocess(
        "--legacy=bookshop.main:app", env=env, workers=2, ready_path="/authors", extra_args=args
    ) as base:
        created = httpx.post(f"{base}/authors", json={"name": "le guin"})
        assert created.status_code == 201, created.text
        answers = [httpx.get(f"{base}/authors") for _ in range(20)]
        # The server answers once one worker serves; the other may still be starting.
        built = tmp_path / "builds"
        deadline = time.monotonic() + 300
        while len(set(built.read_text().split())) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert {a.status_code for a in answers} == {200}
    assert answers[0].json() == [{"id": 1, "name": "le guin"}]
    builds = Counter(built.read_text().split())
    # The supervisor, which checks, and two workers, each process once (a worker uvicorn
    # replaced on a busy host for a missed health check is one more process that built once).
    assert len(builds) >= 3
    assert set(builds.values()) == {1}
