"""Every mode reaches every surface: gateway.modes is the one list of modes.

Each mode in turn is set on a paired route through the admin API; the metrics, the CLI's help
and formatting, the admin API's errors, the settings check, the operator's page and the
docs all show it, each derived from gateway.modes.MODES.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from gateway import Settings, SettingsError
from gateway.cli.commands import cli
from gateway.modes import DEFAULT_MODES, MODES, Mode, format_mode, modes_markdown
from tests.apps.probe import ADMIN_TOKEN, PROBE, create_probe_gateway, probe_settings
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MODES_PAGE = Path(__file__).resolve().parents[2] / "docs" / "explanation" / "request-flow.md"
PERCENT = 40.0


def gauge(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    method, _, path = PROBE.partition(" ")
    return registry.get_sample_value(name, {"route": path, "method": method, **labels})


@pytest.mark.parametrize("mode", list(Mode))
async def test_a_route_in_each_mode_shows_it_on_every_surface(sqlite_url, mode):
    registry = CollectorRegistry()
    gw = create_probe_gateway(probe_settings(sqlite_url), registry=registry)
    gw.build()
    body = {"mode": mode.value, "reason": "every mode"}
    if mode.takes_percent:
        body["percent"] = PERCENT
    async for client in started_client(gw.app):
        answer = await client.put(
            f"/_gateway/routes/{quote(PROBE, safe='')}", json=body, headers=AUTH
        )
        assert answer.status_code == 200, answer.text
        percent = PERCENT if mode.takes_percent else MODES[mode].default_percent
        # The metrics: one mode at 1, every other at 0, and the share async really serves.
        for other in Mode:
            expected = 1.0 if other is mode else 0.0
            assert gauge(registry, "gateway_route_mode", mode=other.value) == expected, other
        assert gauge(registry, "gateway_route_async_percent") == mode.async_percent(percent)
        # The admin API's listing and its error for a missing mode.
        rows = {r["key"]: r for r in (await client.get("/_gateway/routes")).json()["routes"]}
        assert rows[PROBE]["mode"] == mode.value
        missing = await client.put(
            f"/_gateway/routes/{quote(PROBE, safe='')}", json={"reason": "x"}, headers=AUTH
        )
        assert missing.status_code == 422
        assert all(m.value in missing.text for m in Mode)
        # The page's first HTML carries every mode, with what it means.
        page = (await client.get("/_gateway/")).text
        data = json.loads(re.search(r'<script id="modes"[^>]*>(.*?)</script>', page, re.S)[1])
        assert [m["mode"] for m in data] == [m.value for m in Mode]
        assert data[list(Mode).index(mode)]["meaning"] == MODES[mode].meaning
    # The CLI formats it, and its help offers it.
    shown = format_mode(mode.value, percent)
    assert shown == (f"{mode.value} {percent:g}%" if mode.takes_percent else mode.value)
    help_text = " ".join(CliRunner().invoke(cli, ["flags", "set", "--help"]).output.split())
    assert mode.value in help_text


@pytest.mark.parametrize("mode", list(Mode))
def test_settings_accept_exactly_the_modes_that_can_be_the_default(mode):
    environ = {"GATEWAY_DEFAULT_MODE": mode.value}
    if MODES[mode].can_be_default:
        assert Settings.from_environ(environ).default_mode == mode.value
    else:
        with pytest.raises(SettingsError) as caught:
            Settings.from_environ(environ)
        assert all(repr(name) in str(caught.value) for name in DEFAULT_MODES)


def test_every_mode_has_a_spec_and_the_docs_table_is_generated_from_it():
    assert set(MODES) == set(Mode)
    table = modes_markdown()
    assert all(f"`{m.value}`" in table for m in Mode)
    text = MODES_PAGE.read_text(encoding="utf-8")
    start, end = "<!-- modes: generated from gateway.modes -->\n", "<!-- /modes -->"
    found = text[text.index(start) + len(start) : text.index(end)]
    assert found == table, (
        f"the modes table of docs/explanation/request-flow.md is stale; replace it with:\n{table}"
    )
