"""The migration report: the pure ranking, the Done-when scenario on PostgreSQL, the CLI."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from gateway import Settings
from gateway.cli import cli
from gateway.cli_report import format_report
from gateway.report import RouteNumbers, quantile, rank
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
    report = rank([row], 4.0, where={"GET /x": "app.routes.x"})
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
    report = rank([legacy("/io", 10, 5.0, 0.1), legacy("/cpu", 10, 5.0, 4.9)], 10.0).as_dict()
    lines = format_report(report, width=80).splitlines()
    io, cpu = (next(x for x in lines if x.startswith(f"GET /{r} ")) for r in ("io", "cpu"))
    assert io.endswith("2%") and cpu.endswith("98%*")
    assert "* CPU-bound: async will not help (the thread computes; it does not wait)." in lines


def test_format_report_fits_80_columns_wrapping_long_route_keys():
    key = "/orders/{order_id}/lines/{line_id}/allocations/{allocation_id}"
    report = rank([legacy(key, 100_000, 5000.0, 1.0), legacy("/cpu", 10, 5.0, 4.9)], 10.0)
    text = format_report(report.as_dict(), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert key.replace("/", "") in "".join(text.split()).replace("/", "")  # wrapped, all there
    assert "10000.00" in text  # no number is cut
    wide = format_report(report.as_dict(), width=200)
    assert any(line.startswith(f"GET {key} ") for line in wide.splitlines())


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

        # Concurrent clients, as under load: 4 on each legacy route, one on the bad async one.
        await asyncio.gather(
            *(hit(f"/io/{i}", 10) for i in range(4)),
            *(hit("/cpu", 10) for _ in range(4)),
            hit("/blocks", 5),
        )
        report = (await client.get("/_gateway/report")).json()
    candidates = {c["key"]: c for c in report["candidates"]}
    first = report["candidates"][0]
    assert first["key"] == "GET /io/{item_id}", report
    assert not first["async_will_not_help"]
    assert first["db_share"] > 0.5
    assert first["requests"] == 40
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
        result = CliRunner().invoke(cli, ["report", "--url", url])
        as_json = CliRunner().invoke(cli, ["report", "--url", url, "--json"])
    assert result.exit_code == 0, result.output
    assert "GET /cpu" in result.output and "async will not help" in result.output
    assert '"candidates"' in as_json.output


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
