"""The migration report: the pure ranking, the Done-when scenario on PostgreSQL, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from gateway import Settings
from gateway.cli.commands import cli
from gateway.cli.report import format_report
from gateway.metrics.readings import RouteNumbers, Window
from gateway.report.ranking import quantile, rank, window_report
from gateway.testing import serve_in_subprocess
from tests.apps.metrics import scenario_gateway
from tests.conftest import started_client


def legacy(route: str, requests: float, wall: float, cpu: float, **more: float) -> RouteNumbers:
    return RouteNumbers(
        route, "GET", "legacy", requests=requests, thread_requests=requests,
        thread_seconds=wall, thread_cpu_seconds=cpu, thread_blocked_seconds=wall - cpu, **more,
    )  # fmt: skip


def test_ranking_is_rate_times_mean_blocked_time():
    report = rank(
        [
            legacy("/busy-but-quick", requests=1000, wall=10.0, cpu=9.5),  # 0.5 s blocked
            legacy("/slow-io", requests=100, wall=20.0, cpu=1.0),  # 19 s blocked
            legacy("/cpu", requests=100, wall=30.0, cpu=29.0, db_seconds=0.5),
        ],
        window_seconds=10.0,
    )
    keys = [c.key for c in report.candidates]
    assert keys == ["GET /slow-io", "GET /cpu", "GET /busy-but-quick"]
    slow = report.candidates[0]
    assert slow.rate_per_second == 10.0
    assert slow.mean_blocked_seconds == pytest.approx(0.19)
    assert slow.blocked_thread_seconds_per_second == pytest.approx(1.9)  # rate x mean blocked
    assert not slow.async_will_not_help
    cpu = report.candidates[1]
    assert cpu.async_will_not_help and cpu.cpu_share == pytest.approx(29 / 30)
    assert cpu.db_share == pytest.approx(0.5 / 30)


def test_async_routes_blocking_the_loop_are_regressions_not_candidates():
    row = RouteNumbers("/x", "GET", "async", requests=5, loop_blocked_seconds=0.2,
                       loop_blocking_requests=5)  # fmt: skip
    report = rank([row], 4.0, where={("GET /x", "async"): "app.routes.x"})
    assert report.candidates == []
    [regression] = report.regressions
    assert regression.where == "app.routes.x"
    assert regression.loop_blocked_seconds_per_second == pytest.approx(0.05)


def test_routes_without_thread_timing_rank_last_with_blanks():
    report = rank([RouteNumbers("/x", "GET", "legacy", requests=3)], 1.0)
    [only] = report.candidates
    assert only.mean_blocked_seconds is None and only.cpu_share is None
    assert not only.async_will_not_help


def test_quantile_interpolates_like_prometheus():
    buckets = [(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.5, []) is None
    assert quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1


def test_format_report_marks_cpu_bound_routes():
    rows = [
        legacy("/io", 100, 5.0, 0.1),
        legacy("/cpu", 100, 5.0, 4.9),
        legacy("/few", 99, 5.0, 4.9),
    ]
    report = rank(rows, 10.0).as_dict()
    lines = format_report(report, width=80).splitlines()
    io, cpu, few = (
        next(x for x in lines if x.startswith(f"GET /{r} ")) for r in ("io", "cpu", "few")
    )
    assert io.endswith("2%") and cpu.endswith("98%*")
    assert few.endswith("98%")  # as CPU-bound, but too few requests to say so
    assert "* CPU-bound: async will not help (the thread computes; it does not wait)." in lines
    assert "least 100 thread-timed requests in the window." in " ".join(lines)


def test_format_report_shows_modes_migrated_routes_and_both_sides_in_80_columns():
    key = "/orders/{order_id}/lines/{line_id}/allocations/{allocation_id}"
    rows = [
        legacy(key, 1000, 50.0, 1.0),
        RouteNumbers(key, "GET", "async", requests=250, errors=5),
        legacy("/done", 3, 0.1, 0.0),
        RouteNumbers("/done", "GET", "async", requests=400),
        legacy("/alone", 10, 1.0, 0.5),
    ]
    window = Window(0.0, 100.0, 300.0, rows)
    modes = {f"GET {key}": "canary 20%", "GET /done": "async"}
    text = format_report(window_report(window, modes=modes).as_dict(), width=80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0] == "Over the last 100 s only (asked for 300 s; the window is still filling)."
    ranking = lines[: lines.index("Migrated (every request on async, out of the ranking):")]
    assert not any("/done" in line for line in ranking)  # migrated: out of the ranking
    assert any("canary 20%" in line for line in ranking)
    assert next(x for x in ranking if x.startswith("GET /alone")).split()[2] == "-"  # no twin
    assert "  GET /done: 4.00 req/s, 5xx 0.0%, p95 -" in lines
    pairs = lines[lines.index("Paired routes, legacy and async side by side:") :]
    sides = pairs[next(i for i, x in enumerate(pairs) if "canary 20%" in x) :]
    legacy_row, async_row = (
        next(x for x in sides if x.startswith(f"  {s} ")) for s in ("legacy", "async")
    )
    assert legacy_row.split()[1:4] == ["1000", "10.00", "0.0%"]
    assert async_row.split()[1:4] == ["250", "2.50", "2.0%"]


def test_format_report_fits_80_columns_keeping_long_route_keys_whole():
    key = "/orders/{order_id}/lines/{line_id}/allocations/{allocation_id}"
    report = rank([legacy(key, 100_000, 5000.0, 1.0), legacy("/cpu", 10, 5.0, 4.9)], 10.0)
    lines = format_report(report.as_dict(), width=80).splitlines()
    assert max(len(line) for line in lines) <= 80
    at = lines.index(f"GET {key}")  # a line of its own, the row's numbers on the next
    assert lines[at + 1].split()[:2] == ["-", "10000.00"]  # no number is cut
    assert next(x for x in lines if x.startswith("GET /cpu ")).endswith("98%")
    for width in (200, None):  # None: piped, no limit
        wide = format_report(report.as_dict(), width=width).splitlines()
        assert any(line.startswith(f"GET {key} ") for line in wide)


@pytest.mark.anyio
@pytest.mark.postgres
async def test_done_when_io_route_first_cpu_route_marked_blocking_async_listed(postgres_url):
    settings = Settings.from_environ({}, database_url=postgres_url, pool_size=10, threadpool_size=8)
    gw = scenario_gateway(settings, CollectorRegistry())
    gw.build()
    async for client in started_client(gw.app):

        async def hit(path: str, times: int) -> None:
            for _ in range(times):
                assert (await client.get(path)).status_code == 200

        # Concurrent clients, as under load: 4 on the I/O route, one on the CPU route (the
        # CPU-bound mark needs 100 requests; more clients would only queue for the GIL),
        # one on the bad async one.
        await asyncio.gather(
            *(hit(f"/io/{i}", 25) for i in range(4)),
            hit("/cpu", 100),
            hit("/blocks", 5),
        )
        report = (await client.get("/_gateway/report")).json()
    candidates = {c["key"]: c for c in report["candidates"]}
    first = report["candidates"][0]
    assert first["key"] == "GET /io/{item_id}", report
    assert not first["async_will_not_help"]
    assert first["db_share"] > 0.5
    assert first["requests"] == 100
    cpu = candidates["GET /cpu"]
    assert cpu["async_will_not_help"] and cpu["cpu_share"] >= 0.5, cpu
    assert first["blocked_thread_seconds_per_second"] > cpu["blocked_thread_seconds_per_second"]
    [regression] = report["regressions"]
    assert regression["key"] == "GET /blocks"
    assert regression["where"] == "tests.apps.metrics.blocks_the_loop"
    assert regression["requests_blocking"] == 5


@pytest.mark.slow
def test_gateway_report_command_reads_a_running_gateway(sqlite_url):
    env = {"GATEWAY_DATABASE_URL": sqlite_url}
    with serve_in_subprocess("tests.apps.metrics:create_app", env=env) as url:
        import httpx

        for _ in range(3):
            httpx.get(f"{url}/cpu").raise_for_status()
        few = CliRunner().invoke(cli, ["report", "--url", url, "--window", "1m"])
        with httpx.Client() as client:
            for _ in range(100):
                client.get(f"{url}/cpu").raise_for_status()
        result = CliRunner().invoke(cli, ["report", "--url", url])
        as_json = CliRunner().invoke(cli, ["report", "--url", url, "--json", "--window", "60"])
        refused = CliRunner().invoke(cli, ["report", "--url", url, "--window", "2h"])
    assert few.exit_code == 0, few.output
    assert "GET /cpu" in few.output and "async will not help" not in few.output
    assert result.exit_code == 0, result.output
    assert "GET /cpu" in result.output and "async will not help" in result.output
    report = json.loads(as_json.output)
    assert report["requested_window_seconds"] == 60.0
    assert next(c for c in report["candidates"] if c["key"] == "GET /cpu")["requests"] == 103
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert (
        "answered 422, expected 200: query.window: window '2h' is 7200 s; expected 10 to 1800 s"
        in line
    )


def test_gateway_report_command_names_an_unreachable_url():
    from gateway.testing import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["report", "--url", url])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"gateway: cannot reach the gateway at {url}/_gateway/report: ")


@pytest.mark.anyio
@pytest.mark.parametrize("required", [False, True])
async def test_report_reads_follow_admin_read_requires_token(sqlite_url, required):
    settings = Settings.from_environ(
        {},
        database_url=sqlite_url,
        admin_tokens="ops=s3cret-token-0123456789",
        admin_read_requires_token=required,
    )
    gw = scenario_gateway(settings, CollectorRegistry())
    gw.build()
    async for client in started_client(gw.app):
        anonymous = await client.get("/_gateway/report")
        with_token = await client.get(
            "/_gateway/report", headers={"Authorization": "Bearer s3cret-token-0123456789"}
        )
    assert anonymous.status_code == (401 if required else 200)
    assert with_token.status_code == 200
    assert "s3cret-token-0123456789" not in anonymous.text


PAIR = "GET /pair/{item_id}"


@pytest.mark.anyio
async def test_report_api_shows_modes_both_sides_and_migrated_routes(settings):
    token = "ops-token-0123456789abcdef"
    settings = dataclasses.replace(settings, admin_tokens=f"ops={token}")
    gw = scenario_gateway(settings, CollectorRegistry())
    gw.build()
    auth = {"Authorization": f"Bearer {token}"}
    async for client in started_client(gw.app):

        async def flip(mode: str, percent: float | None = None) -> None:
            body = {"mode": mode, "percent": percent, "reason": "test"}
            answer = await client.put(f"/_gateway/routes/{PAIR}", json=body, headers=auth)
            assert answer.status_code == 200, answer.text

        for item in range(5):
            assert (await client.get(f"/pair/{item}")).status_code == 200
        await flip("canary", 50)
        for user in range(40):
            answer = await client.get("/pair/1", headers={"x-user-id": str(user)})
            assert answer.status_code == 200
        canary = (await client.get("/_gateway/report", params={"window": "1m"})).json()
        await flip("async")
        for item in range(3):
            assert (await client.get(f"/pair/{item}")).status_code == 200
        migrated = (await client.get("/_gateway/report")).json()
        refused = await client.get("/_gateway/report", params={"window": "soon"})
    assert canary["requested_window_seconds"] == 60.0 and canary["window_filled"] is False
    [pair] = [p for p in canary["pairs"] if p["key"] == PAIR]
    assert canary["pairs"][0] is not None and canary["pairs"][0]["key"] == PAIR  # migrating first
    assert pair["mode"] == "canary 50%"
    legacy, async_ = pair["sides"]["legacy"], pair["sides"]["async"]
    assert legacy["requests"] + async_["requests"] == 45
    assert legacy["requests"] > 5 and async_["requests"] > 0  # users split between sides
    assert async_["error_share"] == 0.0 and async_["p95_seconds"] is not None
    assert len(pair["series"]["at"]) == len(pair["series"]["rate_per_second"]["async"]) >= 1
    [ranked] = [c for c in canary["candidates"] if c["key"] == PAIR]
    assert ranked["mode"] == "canary 50%" and ranked["requests"] == legacy["requests"]

    assert PAIR not in [c["key"] for c in migrated["candidates"]]
    [moved] = migrated["migrated"]
    assert moved["key"] == PAIR and moved["requests"] == async_["requests"] + 3
    assert moved["legacy_requests"] == legacy["requests"]
    assert migrated["requested_window_seconds"] == 300.0

    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["query", "window"]
    assert error["msg"].startswith("window 'soon' is not a duration; expected seconds (300)")
