"""The generated reference pages: current, and each holding every item of its list.

The lists are read here independently of gateway.cli.reference: the settings from the model,
the metrics from a real exposition of a built Gateway, the commands from `--help` itself.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from gateway import Gateway, Settings
from gateway.cli.commands import cli
from gateway.cli.reference import PAGES, write_pages
from gateway.settings import settings_reference

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "reference"
REGENERATE = "python -m gateway.cli.reference docs/reference"


def page(name: str) -> str:
    return (REFERENCE / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(PAGES))
def test_each_committed_reference_page_is_what_the_code_makes(name):
    expected = PAGES[name]()
    assert page(name) == expected, (
        f"docs/reference/{name} is stale (the code changed since it was generated); "
        f"regenerate it with: {REGENERATE}"
    )


def test_every_setting_is_in_the_settings_reference_with_a_description():
    text = page("settings.md")
    for field in dataclasses.fields(Settings):
        variable = f"GATEWAY_{field.name.upper()}"
        row = next((line for line in text.splitlines() if line.startswith(f"| `{variable}` |")), "")
        assert row, f"{variable} is not in docs/reference/settings.md"
        description = row.rstrip(" |").rsplit(" | ", 1)[-1]
        assert len(description) > 10, f"{variable} has no description in Settings: {row}"


def test_the_settings_reference_shows_types_and_defaults_as_the_environment_writes_them():
    rows = {row.env_var: row for row in settings_reference()}
    assert len(rows) == len(dataclasses.fields(Settings))
    assert rows["GATEWAY_POOL_SIZE"][1:3] == ("integer, at least 1, at most 1000", "20")
    assert rows["GATEWAY_JUDGE_ALPHA"][1:3] == ("number, above 0, below 0.5", "0.01")
    assert rows["GATEWAY_POOL_TIMEOUT"].default == "30"  # 30.0 in the model
    assert rows["GATEWAY_METRICS"][1:3] == ("boolean", "true")
    assert rows["GATEWAY_ADMIN_PORT"].type.endswith("or unset")
    assert rows["GATEWAY_ADMIN_PORT"].default == ""
    assert "rollout" in rows["GATEWAY_JUDGE_MIN_REQUESTS"].description


def test_every_metric_a_gateway_exposes_is_in_the_metrics_reference(sqlite_url):
    registry = CollectorRegistry()
    gateway = Gateway(Settings(database_url=sqlite_url), registry=registry)
    gateway.build()
    anyio.run(gateway.database.aclose)
    exposition = generate_latest(registry).decode()
    families = {
        name: kind
        for name, kind in re.findall(r"^# TYPE (gateway_\w+) (\w+)$", exposition, re.M)
        if not name.endswith("_created")  # prometheus_client's own, beside an unlabelled counter
    }
    assert len(families) >= 25, families  # the per-route set and every owner's own
    text = page("metrics.md")
    for name, kind in families.items():
        assert f"| `{name}` | {kind} |" in text or f"| `{name}_total` | {kind} |" in text, (
            f"{name} ({kind}) is not in docs/reference/metrics.md; regenerate: {REGENERATE}"
        )


def commands_in_help(path: list[str]) -> list[list[str]]:
    """Every command under `gateway <path>`, found by reading `--help` as a user would."""
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    found = [path]
    listing = result.output.partition("\nCommands:\n")[2]
    for line in listing.splitlines():
        match = re.match(r"^  (\S+)\s", line)
        if match:
            found += commands_in_help([*path, match[1]])
    return found


def test_every_command_is_in_the_cli_reference():
    commands = commands_in_help([])
    assert ["flags", "rollout"] in commands and ["serve"] in commands, commands
    text = page("cli.md")
    for command in commands:
        heading = "## `" + " ".join(["gateway", *command]) + "`"
        assert heading in text, f"{heading} is not in docs/reference/cli.md; run {REGENERATE}"


def test_write_pages_rewrites_only_what_changed(tmp_path):
    assert sorted(p.name for p in write_pages(tmp_path)) == sorted(PAGES)
    assert write_pages(tmp_path) == []
    (tmp_path / "cli.md").write_text("edited by hand", encoding="utf-8")
    assert write_pages(tmp_path) == [tmp_path / "cli.md"]
    assert (tmp_path / "cli.md").read_text(encoding="utf-8") == page("cli.md")
