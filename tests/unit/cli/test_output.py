"""What the commands print on a big app's terms (tests/apps/long_routes.py): route keys whole
in a pipe and at 80 columns, JSON alone on stdout whatever the app prints, a note per reason
a route keeps FastAPI's own handler, --help readable at 80 columns."""

from __future__ import annotations

import json
import logging
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from gateway.cli.commands import cli
from gateway.cli.common import print_routes, stdout_to_stderr
from gateway.metrics.readings import RouteNumbers, Window
from gateway.report.ranking import window_report
from tests.apps.long_routes import KEPT, KEYS, MARKED, PAIRED, YIELDS

APP = "tests.apps.long_routes:create_app"
runner = CliRunner()
WIDTHS = [pytest.param({}, id="piped"), pytest.param({"COLUMNS": "80"}, id="80-columns")]


@pytest.fixture(autouse=True)
def no_columns(monkeypatch):
    """CliRunner's stdout is no terminal: with COLUMNS unset the output is piped output."""
    monkeypatch.delenv("COLUMNS", raising=False)


def rows_by_key(stdout: str, keys: list[str], env: dict[str, str]) -> dict[str, list[str]]:
    """Each key's row, found by the whole key: one line in a pipe; at 80 columns a key too
    long for its column on a line of its own and its cells on the next. Lines fit 80."""
    lines = stdout.splitlines()
    table = [line for line in lines if not line.startswith(("note: ", "  "))]
    if env:
        assert max(len(line) for line in table) <= 80, stdout
    assert "…" not in stdout
    found = {}
    for key in keys:
        [at] = [i for i, line in enumerate(lines) if line == key or line.startswith(f"{key} ")]
        if lines[at] == key:
            assert env, f"piped, {key!r} should share its line with its cells"
            found[key] = lines[at + 1].split()
        else:
            found[key] = lines[at][len(key) :].split()
    return found


@pytest.mark.parametrize("env", WIDTHS)
@pytest.mark.parametrize("command", ["routes", "flags list"])
def test_routes_and_flags_list_show_every_key_whole(command, env, tmp_path):
    args = ["routes", APP] if command == "routes" else ["flags", "list", "--app", APP]
    args += ["--database-url", f"sqlite:///{tmp_path / 'flags.db'}"] * (command != "routes")
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    rows = rows_by_key(result.stdout, KEYS, env)
    assert rows[PAIRED] == ["legacy+async", "def", "/", "async", "def", "legacy"]
    assert all(rows[key] == ["legacy", "def", "legacy"] for key in [*YIELDS, *MARKED])


SHADOWED = {
    "routes": [
        {"route": key, "compared": 7, "same": 6, "different": 1, "candidate_errors": 0,
         "skipped": 2, "examples": []}
        for key in KEYS
    ]
}  # fmt: skip


@pytest.mark.parametrize("env", WIDTHS)
def test_shadow_shows_every_key_whole(env, monkeypatch):
    monkeypatch.setattr("gateway.cli.shadow.request_gateway", lambda *args, **kw: SHADOWED)
    result = runner.invoke(cli, ["shadow"], env=env)
    assert result.exit_code == 0, result.output
    rows = rows_by_key(result.stdout, KEYS, env)
    assert all(row == ["7", "6", "1", "0", "2"] for row in rows.values())


def report_of_long_keys() -> dict:
    paths = [key.partition(" ")[2] for key in [PAIRED, *YIELDS]]
    numbers = [
        RouteNumbers(path, "GET", "legacy", requests=100 * (i + 1), thread_requests=100,
                     thread_seconds=5.0, thread_cpu_seconds=1.0, thread_blocked_seconds=4.0)
        for i, path in enumerate(paths)
    ]  # fmt: skip
    numbers.append(RouteNumbers(paths[0], "GET", "async", requests=40))
    return window_report(Window(0.0, 100.0, 100.0, numbers), modes={PAIRED: "canary 20%"}).as_dict()


@pytest.mark.parametrize("env", WIDTHS)
def test_report_shows_every_key_whole_and_is_not_wrapped_in_a_pipe(env, monkeypatch):
    report = report_of_long_keys()
    monkeypatch.setattr("gateway.cli.report.request_gateway", lambda *args, **kw: report)
    result = runner.invoke(cli, ["report"], env=env)
    assert result.exit_code == 0, result.output
    ranking, _, pairs = result.stdout.partition("Paired routes, legacy and async side by side:")
    rows = rows_by_key(ranking, [PAIRED, *YIELDS], env)
    assert rows[PAIRED][:3] == ["canary", "20%", "1.00"]
    assert [rows[key][:2] for key in YIELDS] == [["-", "2.00"], ["-", "3.00"], ["-", "4.00"]]
    assert rows_by_key(pairs, [PAIRED], env)[PAIRED] == ["canary", "20%"]
    legend = next(line for line in ranking.splitlines() if line.startswith("BLOCKED/S:"))
    if env:
        assert max(len(line) for line in result.stdout.splitlines()) <= 80
    else:  # the legend is one line, however long: no fragments
        assert legend.endswith("thread-timed requests in the window.")


def noisy_app(directory) -> None:
    """An app that prints and logs to stdout when it is imported and when it is built."""
    (directory / "noisy_app.py").write_text(
        textwrap.dedent(
            """
            import logging
            import sys

            from tests.apps.long_routes import create_app as build

            print("noisy: imported")
            root = logging.getLogger()
            root.addHandler(logging.StreamHandler(sys.stdout))
            root.setLevel(logging.INFO)
            logging.getLogger("noisy").info("noisy: logged at import")

            def create_app():
                print("noisy: building")
                logging.getLogger("noisy.build").addHandler(logging.StreamHandler(sys.stdout))
                logging.getLogger("noisy.build").warning("noisy: logged at build")
                return build()
            """
        )
    )


@pytest.fixture
def restored_logging(monkeypatch):
    """Put the root logger back as it was after an app configured it."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logging.getLogger("noisy.build"), "handlers", [])
    monkeypatch.delitem(sys.modules, "noisy_app", raising=False)  # imported afresh


@pytest.mark.usefixtures("isolated_imports", "restored_logging")
@pytest.mark.parametrize(
    "command",
    [
        ["routes", "noisy_app:create_app"],
        ["flags", "list", "--app", "noisy_app:create_app", "--database-url", "DB"],
        ["flags", "set", PAIRED, "canary", "--percent", "5", "--app", "noisy_app:create_app",
         "--database-url", "DB"],
    ],
    ids=["routes", "flags list", "flags set"],
)  # fmt: skip
def test_json_is_all_of_stdout_whatever_the_app_prints_or_logs(command, tmp_path):
    noisy_app(tmp_path)
    args = [a.replace("DB", f"sqlite:///{tmp_path / 'flags.db'}") for a in command]
    result = runner.invoke(cli, [*args, "--app-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    for said in ("imported", "logged at import", "building", "logged at build"):
        assert f"noisy: {said}" in result.stderr
    # The gateway's own build log, through the app's handler: one line, a count per reason.
    assert "5 legacy route(s) keep FastAPI's own handler: 3 because " in result.stderr


def test_a_stdout_handler_made_before_writes_to_stderr_while_a_command_works(capsys):
    logger = logging.getLogger("tests.made_before")
    handler = logging.StreamHandler(sys.stdout)
    logger.addHandler(handler)
    try:
        with stdout_to_stderr():
            print("printed")
            logger.warning("logged")
        assert handler.stream is sys.stdout  # as it was, afterwards
    finally:
        logger.removeHandler(handler)
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "printed\nlogged\n"


def notes(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("note: ")]


def test_routes_sums_up_the_reasons_and_verbose_names_each_route():
    summed = runner.invoke(cli, ["routes", APP])
    assert summed.exit_code == 0, summed.output
    assert notes(summed.stdout) == [
        f"note: 3 routes run on FastAPI's own handler: {KEPT[YIELDS[0]]}",
        f"note: 2 routes run on FastAPI's own handler: {KEPT[MARKED[0]]}",
        "note: --verbose names each route on FastAPI's own handler and why",
    ]
    verbose = runner.invoke(cli, ["routes", APP, "--verbose"])
    assert notes(verbose.stdout) == [
        f"note: {key} runs on FastAPI's own handler: {KEPT[key]}" for key in [*YIELDS, *MARKED]
    ]
    rows = json.loads(runner.invoke(cli, ["routes", APP, "--json"]).stdout)
    assert {row["key"]: row["fallback"] for row in rows} == {key: KEPT.get(key) for key in KEYS}


def test_a_reason_of_one_route_names_it(capsys):
    rows = [
        {"key": f"GET /{name}", "implementations": ["legacy"], "mode": "legacy",
         "fallback": reason}
        for name, reason in [("a", "x"), ("b", "y"), ("c", "y"), ("d", None)]
    ]  # fmt: skip
    print_routes(rows)
    assert notes(capsys.readouterr().out) == [
        "note: 2 routes run on FastAPI's own handler: y",
        "note: GET /a runs on FastAPI's own handler: x",
        "note: --verbose names each route on FastAPI's own handler and why",
    ]


def test_serve_help_is_readable_at_80_columns():
    result = runner.invoke(cli, ["serve", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    # Read the text wherever it is drawn: box lines and borders become spaces.
    plain = [line.translate(str.maketrans("│╭╮╰╯─", "      ")).rstrip() for line in lines]
    options = plain[next(i for i, line in enumerate(plain) if "Options" in line) + 1 :]
    continued = [line for line in options if line.strip() and not line.lstrip().startswith("-")]
    # A description's lines start within the first 40 columns: none is squeezed into a strip.
    assert continued
    assert all(len(line) - len(line.lstrip()) <= 40 for line in continued), result.stdout
    names = ["--forwarded-allow-ips", "--no-proxy-headers", "--no-access-log", "--reload-dir"]
    assert all(name in result.stdout for name in names)  # no name cut or split
