"""The right culprit: an `async def` route or dependency on a sync Session is flagged before
any traffic (routes, startup line, page, `gateway routes`), and after traffic the report
names the function that ran the sync call on the loop (never the correct async twin) and
ranks the route first, above a `def` route that blocks more thread time."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from gateway import Settings
from gateway.cli.commands import cli
from gateway.cli.report import format_report
from gateway.metrics.readings import RouteNumbers
from gateway.report.ranking import rank
from tests.apps import loop_blocking
from tests.apps.loop_blocking import loop_blocking_gateway
from tests.conftest import started_client

APP = "tests.apps.loop_blocking"
STATS = f"{APP}.stats"  # the legacy `async def` route on the sync session
CURRENT_USER = f"{APP}.current_user"  # the `async def` dependency on the sync session


def dispose_legacy_engine() -> None:
    loop_blocking.SessionLocal.kw["bind"].dispose()


@pytest.mark.anyio
async def test_flagged_before_any_traffic_in_routes_startup_line_and_page(sqlite_url):
    settings = Settings.from_environ({}, database_url=sqlite_url)
    gw = loop_blocking_gateway(settings, sqlite_url, CollectorRegistry())
    app = gw.build()
    try:
        rows = {row["key"]: row for row in gw.describe_routes()}
        assert rows["GET /stats"]["blocks_loop"] == {"legacy": [STATS]}  # not the twin
        assert rows["GET /me"]["blocks_loop"] == {"legacy": [CURRENT_USER]}
        assert rows["GET /slow"]["blocks_loop"] == {}
        summary = gw.startup_summary()
        assert summary["blocks_loop"] == ["GET /stats", "GET /me"]
        async for client in started_client(app):
            page = (await client.get("/_gateway/")).text
            routes = (await client.get("/_gateway/routes")).json()["routes"]
    finally:
        dispose_legacy_engine()
    assert f"blocks the event loop (legacy): {STATS} is async def" in page
    assert {r["key"]: r["blocks_loop"] for r in routes}["GET /me"] == {"legacy": [CURRENT_USER]}


def test_gateway_routes_warns_about_each_route_before_traffic(sqlite_url):
    env = {"GATEWAY_DATABASE_URL": sqlite_url}
    try:
        result = CliRunner().invoke(cli, ["routes", f"{APP}:create_app"], env=env)
    finally:
        dispose_legacy_engine()
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: GET /stats (legacy): {STATS} is async def and takes a sync Session: each "
        "query blocks the event loop and every request of the worker; make it a def, or use "
        "the async session",
        f"warning: GET /me (legacy): {CURRENT_USER} is async def and takes a sync Session: "
        "each query blocks the event loop and every request of the worker; make it a def, or "
        "use the async session",
    ]


@pytest.mark.anyio
async def test_after_traffic_the_report_names_the_function_and_ranks_the_route_first(
    settings, database_url
):
    gw = loop_blocking_gateway(settings, database_url, CollectorRegistry())
    app = gw.build()
    try:
        async for client in started_client(app):

            async def hit(path: str, times: int) -> None:
                for _ in range(times):
                    assert (await client.get(path)).status_code == 200

            await asyncio.gather(
                hit("/slow", 20), hit("/slow", 20), hit("/stats", 5), hit("/me", 5)
            )
            report = (await client.get("/_gateway/report")).json()
    finally:
        dispose_legacy_engine()
    ranked = [c["key"] for c in report["candidates"]]
    # Both loop blockers first, whatever their thread time; the thread-blocking route after.
    assert set(ranked[:2]) == {"GET /stats", "GET /me"} and ranked[2] == "GET /slow", report
    slow = report["candidates"][2]
    assert slow["blocked_thread_seconds_per_second"] > max(
        c["blocked_thread_seconds_per_second"] for c in report["candidates"][:2]
    )
    assert all(c["loop_blocked_seconds_per_second"] > 0 for c in report["candidates"][:2])
    where = {(r["key"], r["implementation"]): r["where"] for r in report["regressions"]}
    assert where == {("GET /stats", "legacy"): STATS, ("GET /me", "legacy"): CURRENT_USER}
    text = format_report(report, width=None)
    assert "! blocks the event loop" in text


def test_ranking_puts_a_loop_blocker_above_any_thread_blocker():
    thread = RouteNumbers("/busy", "GET", "legacy", requests=1000, thread_requests=1000,
                          thread_seconds=50.0, thread_blocked_seconds=40.0)  # fmt: skip
    loop = RouteNumbers("/stats", "GET", "legacy", requests=10, loop_blocked_seconds=0.01,
                        loop_blocking_requests=10)  # fmt: skip
    report = rank([thread, loop], 10.0, where={("GET /stats", "legacy"): STATS})
    assert [c.key for c in report.candidates] == ["GET /stats", "GET /busy"]
    assert report.candidates[0].loop_blocked_seconds_per_second == pytest.approx(0.001)
    [regression] = report.regressions
    assert regression.where == STATS
