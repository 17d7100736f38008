"""The benchmark harness (bench/): the pure parts, the apps it serves, and one real wrk run.

No timing is asserted anywhere: the tests check parsing, ordering, arithmetic, that every
case serves the same answer, and that wrk's Lua hook prints what the parser reads.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import psycopg
import pytest

from bench import cases, procstat, report, wrk
from bench.cases import Case
from tests.conftest import started_client

WRK_LINE = (
    'BENCH_JSON {"requests": 1200, "sent": 1301, "duration_us": 2000000, "bytes": 5, '
    '"errors": {"connect": 0, "read": 1, "write": 0, "status": 200, "timeout": 3}, '
    '"latency_us": {"p50": 1500, "p90": 2500, "p99": 9000, "mean": 1800.5, "max": 12000}, '
    '"window": {"requests": 900, "status_errors": 150, "last_answer": 111.0}}'
)


# -- wrk output -----------------------------------------------------------------------------


def test_parse_output_reads_the_lua_line_among_wrk_text():
    text = f"Running 2s test @ http://127.0.0.1:1\n  2 threads\n{WRK_LINE}\nRequests/sec: 600\n"
    result = wrk.parse_output(text)
    assert result.requests == 1200
    assert result.ok == 1000  # status errors are not served requests
    assert result.ok_per_second == 500.0
    assert result.error_count == 204
    assert result.unanswered == 101
    assert result.latency_ms == {"p50": 1.5, "p90": 2.5, "p99": 9.0, "mean": 1.8, "max": 12.0}


def test_the_measured_window_counts_only_its_own_answers():
    result = wrk.parse_output(WRK_LINE, window=(110.0, 111.5))
    assert (result.ok, result.ok_per_second, result.measured_seconds) == (750, 500.0, 1.5)
    assert result.stalled == 0.5  # the last answer came half a second before the end
    assert result.requests == 1200 and result.error_count == 204  # errors: the whole run
    assert result.measured_requests == 900
    assert result.to_dict()["duration_s"] == 1.5 and result.to_dict()["wrk_run_s"] == 2.0


def test_parse_output_names_what_is_missing():
    with pytest.raises(ValueError, match="no BENCH_JSON line"):
        wrk.parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")
    with pytest.raises(ValueError, match="not JSON"):
        wrk.parse_output("BENCH_JSON {nope\n")
    with pytest.raises(ValueError, match="lacks duration_us"):
        wrk.parse_output('BENCH_JSON {"requests": 1, "errors": {}, "latency_us": {}}\n')


def test_nothing_served_is_zero_per_second_not_a_crash():
    line = WRK_LINE.replace('"requests": 1200', '"requests": 0').replace(
        '"status": 200', '"status": 0'
    )
    result = wrk.parse_output(line)
    assert (result.ok, result.ok_per_second, result.unanswered) == (0, 0.0, 1301)


def test_wrk_command_passes_path_and_ids_to_the_script():
    argv = wrk.command("http://127.0.0.1:9", "/users/", connections=1000, duration=2.4, max_id=50)
    assert argv[0] == "wrk"
    assert "--connections=1000" in argv and "--duration=2s" in argv
    assert f"--script={wrk.LUA_SCRIPT}" in argv
    assert argv[-4:] == ["http://127.0.0.1:9", "--", "/users/", "50"]
    timed = wrk.command("http://x", "/", connections=2, duration=5, window=(10.5, 12.25))
    assert timed[-2:] == ["10.500000", "12.250000"]
    with pytest.raises(ValueError, match="at least threads"):
        wrk.command("http://x", "/", connections=1, duration=1, threads=2)


# -- cases and order ------------------------------------------------------------------------


def test_schedule_alternates_forward_and_reversed():
    abc = [Case(n, n, "m:f") for n in "ABC"]
    order = [(r, c.name) for r, c in cases.schedule(abc, 3)]
    assert order == [
        (1, "A"), (1, "B"), (1, "C"),
        (2, "C"), (2, "B"), (2, "A"),
        (3, "A"), (3, "B"), (3, "C"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="at least 1"):
        cases.schedule(abc, 0)


def test_schedule_runs_reference_cases_for_fewer_rounds_interleaved():
    mixed = [
        Case("H1", "", "m:f", headline=True),
        Case("R", "", "m:f"),
        Case("H2", "", "m:f", headline=True),
    ]
    order = [(r, c.name) for r, c in cases.schedule(mixed, 3, reference_rounds=2)]
    assert order == [
        (1, "H1"), (1, "R"), (1, "H2"),
        (2, "H2"), (2, "R"), (2, "H1"),
        (3, "H1"), (3, "H2"),
    ]  # fmt: skip
    assert [n for _r, n in [(r, c.name) for r, c in cases.schedule(mixed, 2, 0)]] == [
        "H1", "H2", "H2", "H1"
    ]  # fmt: skip
    more = [(r, c.name) for r, c in cases.schedule(mixed, 1, reference_rounds=2)]
    assert more == [(1, "H1"), (1, "R"), (1, "H2"), (2, "R")]
    with pytest.raises(ValueError, match="reference rounds of at least 0"):
        cases.schedule(mixed, 2, reference_rounds=-1)


def test_the_headline_cases_are_the_issues_six():
    assert [c.name for c in cases.CASES if c.headline] == [
        "bare_def",
        "bare_async",
        "bare_async_freeze",
        "gateway_legacy",
        "gateway_async",
        "gateway_async_nofreeze",
    ]


def test_select_keeps_the_baseline_and_rejects_unknown_names():
    picked = cases.select("gateway_async, ceiling")
    assert [c.name for c in picked] == ["bare_def", "gateway_async", "ceiling"]
    with pytest.raises(ValueError, match=r"unknown case.*nope.*expected some of headline"):
        cases.select("nope")


def test_select_knows_the_headline_and_reference_groups():
    headline = cases.select("headline")
    assert all(c.headline for c in headline) and len(headline) == 6
    reference = cases.select("reference")
    assert reference[0].name == cases.BASELINE
    assert all(not c.headline for c in reference[1:])
    assert {c.name for c in reference} >= {"bare_async_w2", "gateway_legacy_w2", "ceiling"}
    assert [c.name for c in cases.select("headline,ceiling")][-1] == "ceiling"


def test_worker_cases_have_their_baselines():
    workers = {c.name: c for c in cases.CASES if c.workers > 1}
    assert set(workers) == {"bare_def_w2", "bare_async_w2", "gateway_legacy_w2", "gateway_async_w2"}
    assert all(c.workers == 2 and "pool per worker" in c.title for c in workers.values())
    for top, bottom, _label, _target in report.COMPARISONS:
        if top in workers:
            assert bottom in workers or bottom in {c.name for c in cases.CASES}


def test_every_case_serves_the_same_route_shape():
    names = [c.name for c in cases.CASES]
    assert len(set(names)) == len(names)
    assert names[0] == cases.BASELINE
    assert {c.path for c in cases.CASES} == {"/users/", "/ceiling/"}
    modes = {c.name: c.env.get("GATEWAY_DEFAULT_MODE") for c in cases.CASES if c.gateway}
    assert modes == {
        "gateway_legacy": "legacy",
        "gateway_async": "async",
        "gateway_async_nofreeze": "async",
        "gateway_async_sync": "async",
        "gateway_legacy_w2": "legacy",
        "gateway_async_w2": "async",
    }
    compared = {name for c in report.COMPARISONS for name in c[:2]}
    assert compared <= {c.name for c in cases.CASES}
    deadlock = {c.name: c.env for c in cases.DEADLOCK_CASES}
    assert set(deadlock) == {
        "deadlock_bare_def",
        "deadlock_bare_async_sync_dep",
        "deadlock_gateway_legacy",
    }
    for env in deadlock.values():
        assert env["GATEWAY_POOL_SIZE"] == "20" and env["GATEWAY_MAX_OVERFLOW"] == "0"
        assert env["GATEWAY_THREADPOOL_SIZE"] == "40"


# -- ratios and tables ----------------------------------------------------------------------


def _run(profile, number, case, ok_rps, *, server_s=1.0, status=0):
    return {
        "profile": profile,
        "round": number,
        "case": case,
        "title": case.replace("_", " "),
        "wrk": {
            "requests": 5 * int(ok_rps * 10) + status,  # the whole run, warm-up included
            "measured_requests": int(ok_rps * 10) + status,
            "ok": int(ok_rps * 10),
            "duration_s": 10.0,
            "ok_per_second": ok_rps,
            "unanswered_at_end": 3,
            "errors": {"connect": 0, "read": 0, "write": 0, "status": status, "timeout": 0},
            "latency_ms": {"p50": 100.0, "p90": 200.0, "p99": 300.0 + number, "mean": 1, "max": 1},
        },
        "cpu": {
            "server_s": server_s,
            "postgres_s": 0.5,
            "wrk_s": 0.2,
            "machine_busy_s": 19.0,
            "machine_total_s": 20.0,
        },
    }


RUNS = [
    _run("plain", 1, "bare_def", 500),
    _run("plain", 1, "bare_async", 1000),
    _run("plain", 1, "gateway_async", 980),
    _run("plain", 2, "gateway_async", 1200),
    _run("plain", 2, "bare_async", 1250, status=7),
    _run("plain", 2, "bare_def", 600),
    _run("delay5ms", 1, "bare_def", 400),
    _run("delay5ms", 1, "bare_async", 1200),
]


def test_ratios_pair_cases_from_the_same_round_only():
    assert report.pair_ratios(RUNS, "bare_async", "bare_def") == {
        "plain": [2.0, 1250 / 600],
        "delay5ms": [3.0],
    }
    assert report.pair_ratios(RUNS, "gateway_async", "bare_async") == {"plain": [0.98, 0.96]}
    assert report.pair_ratios([_run("plain", 1, "a", 5), _run("plain", 1, "b", 0)], "a", "b") == {}


def test_summary_rows_average_rounds_and_sum_errors():
    rows = report.summarize(RUNS, ["bare_def", "bare_async", "gateway_async"])
    plain_async = next(r for r in rows if (r["profile"], r["case"]) == ("plain", "bare_async"))
    assert plain_async["ok_per_second"] == 1125
    assert plain_async["ratio"] == pytest.approx((2.0 + 1250 / 600) / 2)
    assert (plain_async["ratio_min"], plain_async["ratio_max"]) == (2.0, 1250 / 600)
    assert plain_async["p99_ms"] == 302.0
    assert plain_async["errors"]["status"] == 7
    assert plain_async["server_ms_per_req"] == pytest.approx((1000 / 10_000 + 1000 / 12_507) / 2)
    assert plain_async["cores"] == {
        "server": 0.1,
        "postgres": 0.05,
        "wrk": 0.02,
        "other": 1.73,
        "idle": 0.1,
    }
    assert [(r["profile"], r["case"]) for r in rows] == [
        ("plain", "bare_def"),
        ("plain", "bare_async"),
        ("plain", "gateway_async"),
        ("delay5ms", "bare_def"),
        ("delay5ms", "bare_async"),
    ]


# bare_async_freeze measured as bare_async was: the like-for-like pairing has numbers
FROZEN = [
    {**r, "case": "bare_async_freeze", "title": "bare async freeze"}
    for r in RUNS
    if r["case"] == "bare_async"
]


def test_comparisons_check_targets_and_give_the_interval():
    runs = RUNS + FROZEN
    found = {(c["profile"], c["numerator"], c["denominator"]): c for c in report.comparisons(runs)}
    gateway = found[("plain", "gateway_async", "bare_async_freeze")]
    assert gateway["mean"] == 0.97 and gateway["target"] == 0.97 and gateway["met"] is True
    assert gateway["per_round"] == [0.98, 0.96]
    # two rounds: t(1) = 12.706, sd 0.01414, half width 12.706 * 0.01414 / sqrt(2) = 0.127
    assert gateway["interval95"] == {
        "mean": 0.97,
        "low": 0.8429,
        "high": 1.0971,
        "half_width": 0.1271,
        "plus_minus_pct": 13.0992,
        "narrow": False,
    }
    deployed = found[("plain", "gateway_async", "bare_async")]
    assert deployed["target"] is None and deployed["met"] is None
    seed = found[("delay5ms", "bare_async", "bare_def")]
    assert seed["per_round"] == [3.0] and seed["target"] is None and seed["met"] is None
    assert seed["interval95"] is None  # one round has no interval
    slower = report.comparisons(
        [_run("p", 1, "gateway_async", 96), _run("p", 1, "bare_async_freeze", 100)]
    )
    assert [c["met"] for c in slower if c["numerator"] == "gateway_async"] == [False]


def test_t_quantile_matches_the_table_and_the_expansion_beyond_it():
    assert report.t_975(1) == 12.7062
    assert report.t_975(5) == 2.5706  # the value every t table prints for 5 df
    assert report.t_975(30) == 2.0423
    assert report.t_975(31) == pytest.approx(2.0395, abs=1e-4)  # Cornish-Fisher, beyond
    assert report.t_975(60) == pytest.approx(2.0003, abs=1e-4)
    assert report.t_975(10_000) == pytest.approx(1.96, abs=1e-3)
    with pytest.raises(ValueError, match="at least 1 degree of freedom"):
        report.t_975(0)


def test_interval_of_six_rounds_against_a_hand_computed_one():
    values = [0.95, 0.97, 0.99, 0.96, 0.98, 1.00]
    found = report.interval95(values)
    assert found is not None
    # mean 0.975, sd 0.018708, t(5) 2.5706: half width 2.5706 * 0.018708 / sqrt(6) = 0.019633
    assert found["mean"] == pytest.approx(0.975)
    assert found["half_width"] == pytest.approx(0.019633, abs=1e-6)
    assert (found["low"], found["high"]) == pytest.approx((0.955367, 0.994633), abs=1e-6)
    assert found["plus_minus_pct"] == pytest.approx(2.0137, abs=1e-4)
    assert found["narrow"] is True
    assert report.interval95([1.0]) is None and report.interval95([]) is None
    assert report.interval95([1.0, 1.0])["half_width"] == 0.0


def test_summary_lines_say_interval_narrowness_target_and_rounds():
    lines = report.summary_lines(report.comparisons(RUNS + FROZEN))
    first = lines[0]
    assert first.startswith("   plain  gateway async / bare async, both GC-frozen")
    assert "0.970 ± 13.1 % [0.843, 1.097]" in first
    assert "narrower than ±5 %: no" in first and "target >= 0.97 (met)" in first
    assert first.endswith("rounds 0.980, 0.960")
    single = next(line for line in lines if line.startswith("delay5ms  bare async / bare def"))
    assert "3.000 (1 round, no interval), narrower than ±5 %: n/a; rounds 3.000" in single


def test_deadlock_verdict():
    hung = _run("plain", 1, "deadlock_bare_def", 0)
    assert report.deadlock_verdict(hung) == "deadlocked"
    assert report.deadlock_verdict(_run("plain", 1, "d", 300)) == "completed"
    assert report.deadlock_verdict(_run("plain", 1, "d", 300, status=2)) == "served with errors"
    froze = _run("plain", 1, "d", 2)  # a first burst, then nothing for 3 of 10 s
    froze["wrk"]["stalled_s"] = 3.0
    assert report.deadlock_verdict(froze) == "deadlocked"
    froze["wrk"]["stalled_s"] = 1.9
    assert report.deadlock_verdict(froze) == "completed"


def _result(runs):
    return {
        "started": "2026-11-25T20:00:00Z",
        "command": "scripts/bench --quick",
        "settings": {
            "connections": 1000,
            "threads": 2,
            "warmup_s": 1,
            "duration_s": 2,
            "rounds": 2,
            "pool_size": 80,
            "max_overflow": 0,
            "threadpool_size": 1000,
            "users": 10_000,
            "timeout_s": 30,
        },
        "profiles": [
            {"name": "plain", "title": "plain lookup"},
            {"name": "delay5ms", "title": "d"},
        ],
        "summary": report.summarize(runs, ["bare_def", "bare_async", "gateway_async"]),
        "comparisons": report.comparisons(runs),
        "runs": runs,
        "deadlock": [{**_run("plain", 1, "deadlock_bare_def", 0), "verdict": "deadlocked"}],
        "machine": {"nproc": 2},
        "versions": {"fastapi": "0.165"},
    }


def test_markdown_has_a_row_per_case_and_the_deadlock_verdict():
    text = report.markdown(_result(RUNS + FROZEN))
    assert "Command: `scripts/bench --quick`" in text
    assert "| bare async | 1125 | 2.04 (2.00-2.08) | 100 | 302 | status 7 |" in text
    assert (
        "| plain | gateway async / bare async, both GC-frozen (cost of gateway + metrics) "
        "| 0.980, 0.960 | 0.970 ± 13.1 % [0.843, 1.097] | no | >= 0.97 (met) |"
    ) in text
    assert "| delay5ms | bare async / bare def (seed: 2.3x) | 3.000 | 3.000 (1 round, no " in text
    assert "2 round(s) of the headline cases and 2 of the reference cases" in text
    assert "| deadlock bare def | 10 | 0 | 0 | n/a | 3 | deadlocked |" in text
    assert "nproc: 2" in text


def test_headline_puts_the_profiles_side_by_side():
    lines = report.headline(_result(RUNS + FROZEN))
    assert lines[2] == "| ratio | plain lookup | d | target |"
    row = next(line for line in lines if line.startswith("| bare async / bare def"))
    assert row == "| bare async / bare def (seed: 2.3x) | 2.042 ± 25.9 % | 3.000 |  |"
    gateway = next(line for line in lines if line.startswith("| gateway async / bare async"))
    assert gateway.endswith("| 0.970 ± 13.1 % | n/a | >= 0.97 (met) |")
    legacy = next(line for line in lines if line.startswith("| gateway legacy / bare def ("))
    assert legacy.endswith("| n/a | n/a | >= 1.5 (not measured) |")
    assert "| errors, all runs | 14 | 0 | 0 |" in lines  # bare async 7, its frozen copy 7


def test_chart_is_written_as_png(tmp_path: Path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "chart.png"
    report.write_chart(_result(RUNS), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- /proc ------------------------------------------------------------------------------------


def test_parse_stat_times_survives_a_name_with_spaces_and_parens():
    tick = procstat.TICK
    fields = ["S", *["0"] * 10, str(3 * tick), str(tick), *["0"] * 30]
    assert procstat.parse_stat_times(f"123 (uvicorn (w) 1) {' '.join(fields)}") == 4.0


def test_snapshot_of_this_process_moves_forward():
    import os

    before = procstat.snapshot(os.getpid(), os.getpid())
    sum(i * i for i in range(200_000))
    delta = procstat.snapshot(os.getpid(), os.getpid()).minus(before)
    assert delta["server_s"] >= 0 and delta["machine_total_s"] >= 0
    assert delta["wrk_s"] >= 0
    assert set(delta) == {"server_s", "postgres_s", "wrk_s", "machine_busy_s", "machine_total_s"}


def test_parent_pid_and_the_process_tree():
    fields = ["S", "42", *["0"] * 40]
    assert procstat.parse_stat_parent(f"7 (uvicorn (w) 1) {' '.join(fields)}") == 42
    parents = {10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 21: 99}
    assert procstat.descendants(parents, 10) == {11, 12, 13}
    assert procstat.descendants(parents, 13) == set()
    assert procstat.descendants({2: 3, 3: 2}, 2) == {2, 3}  # a loop ends, it does not spin


def test_tree_seconds_counts_a_child_process():
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # Read our own CPU time first: it only grows, so the tree read after it includes at
        # least as much (the other order raced on a busy host: 16.48 >= 16.49 failed).
        own = procstat.process_seconds(os.getpid())
        assert procstat.tree_seconds(os.getpid()) >= own
        parents = {}
        for entry in procstat.PROC.iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = procstat.parse_stat_parent(
                        (entry / "stat").read_text()
                    )
                except FileNotFoundError:
                    continue
        assert child.pid in procstat.descendants(parents, os.getpid())
    finally:
        child.kill()
        child.wait()
    with pytest.raises(ProcessLookupError, match="expected the server to be running"):
        procstat.tree_seconds(child.pid)


# -- the runner's pure parts ------------------------------------------------------------------


def _options(**changes):
    from bench.run import Options

    base = {
        "rounds": 6,
        "reference_rounds": 2,
        "duration": 8.0,
        "warmup": 2.0,
        "deadlock_duration": 12.0,
        "connections": 1000,
        "threads": 2,
        "timeout": 30.0,
        "pool_size": 80,
        "threadpool_size": 1000,
        "pool_timeout": 30.0,
        "users": 10_000,
        "quick": False,
    }
    return Options(**{**base, **changes})


def test_server_argv_passes_workers_to_uvicorn_and_uses_gateway_serve_for_the_gateway():
    from bench.run import server_argv

    bare = next(c for c in cases.CASES if c.name == "bare_async_w2")
    argv = server_argv(bare, 8123, python="py")
    assert argv[:5] == ["py", "-m", "uvicorn", "bench.apps.bare_async:create_app", "--factory"]
    assert argv[argv.index("--workers") + 1] == "2" and argv[argv.index("--port") + 1] == "8123"
    single = server_argv(next(c for c in cases.CASES if c.name == "bare_async"), 8123, "py")
    assert "--workers" not in single
    assert single[4:] == argv[4 : len(single)]  # otherwise the same flags
    gateway = server_argv(next(c for c in cases.CASES if c.name == "gateway_legacy_w2"), 9, "py")
    assert gateway[:6] == [
        "py",
        "-m",
        "gateway",
        "serve",
        "bench.apps.gateway_app:create_app",
        "--factory",
    ]
    assert gateway[gateway.index("--workers") + 1] == "2"
    assert "--no-access-log" in gateway
    one = server_argv(next(c for c in cases.CASES if c.name == "gateway_legacy"), 9, "py")
    assert one[2] == "uvicorn"  # one worker: the gateway is served as every other case


def test_each_worker_gets_its_share_of_the_pool():
    options = _options()
    assert options.app_env("postgresql://x")["GATEWAY_POOL_SIZE"] == "80"
    two = options.app_env("postgresql://x", workers=2)
    assert two["GATEWAY_POOL_SIZE"] == "40" and two["GATEWAY_THREADPOOL_SIZE"] == "1000"
    assert two["GATEWAY_MAX_OVERFLOW"] == "0"


def test_wrk_runs_whole_seconds_that_hold_the_warmup_the_window_and_the_tail():
    from bench.run import TAIL_S, WARMUP_S, wrk_seconds

    assert wrk_seconds(WARMUP_S, 8.0) == 10  # the default run: no second lost to rounding
    assert wrk_seconds(2.0, 8.0) == 11
    assert wrk_seconds(1.75 - TAIL_S, 8.0) == 10
    assert wrk_seconds(0.0, 10.0) == 11


def test_plan_runs_every_profile_and_leaves_ceiling_out_of_the_delayed_one():
    planned = cases.plan(cases.CASES, cases.PROFILES, 6, 2)
    headline = [c for c in cases.CASES if c.headline]
    reference = [c for c in cases.CASES if not c.headline]
    assert len(planned) == 2 * (6 * len(headline) + 2 * len(reference)) - 2
    ceiling = [(p.name, n) for p, n, c in planned if c.name == "ceiling"]
    assert ceiling == [("plain", 1), ("plain", 2)]
    assert planned[0][0].name == "plain"
    assert {n for _p, n, c in planned if c.name == "bare_async_w2"} == {1, 2}


def test_only_the_first_round_of_a_gateway_case_is_scraped():
    gateway = next(c for c in cases.CASES if c.name == "gateway_async")
    bare = next(c for c in cases.CASES if c.name == "bare_async")
    assert cases.scraped(gateway, 1) and not cases.scraped(gateway, 2)
    assert not cases.scraped(bare, 1)


def test_the_estimate_is_computed_from_the_plan():
    from bench.run import KILL_S, SCRAPE_S, SEED_S, START_S, estimate_seconds, server_kind

    options = _options(warmup=2.0)
    bare, gateway = Case("b", "", "m:f"), Case("g", "", "m:f", gateway=True, workers=2)
    assert (server_kind(bare), server_kind(gateway)) == ("uvicorn", "gateway serve")
    found = estimate_seconds([(1, bare), (2, bare), (1, gateway), (2, gateway)], [bare], options)
    expected = SEED_S + 2 * (11 + START_S["uvicorn"] + KILL_S)
    expected += 11 + START_S["gateway serve"] + SCRAPE_S  # round 1: scraped
    expected += 11 + START_S["gateway serve"] + KILL_S
    expected += 13 + START_S["uvicorn"] + KILL_S  # a deadlock run: no warm-up, 12 s
    assert found == pytest.approx(expected)


def test_the_default_run_fits_the_budget_by_the_same_arithmetic():
    from bench.run import estimate_seconds, parse_args

    _args, options = parse_args([])
    assert (options.rounds, options.reference_rounds) == (6, 2)
    assert (options.warmup, options.duration, options.deadlock_duration) == (1.75, 8.0, 10.0)
    planned = cases.plan(cases.CASES, cases.PROFILES, options.rounds, options.reference_rounds)
    full = estimate_seconds([(n, c) for _p, n, c in planned], list(cases.DEADLOCK_CASES), options)
    assert full <= 23 * 60
    _args, quick = parse_args(["--quick"])
    assert (quick.rounds, quick.reference_rounds) == (2, 1)
    _args, few = parse_args(["--rounds", "1"])
    assert few.reference_rounds == 1


# -- the apps, on a real PostgreSQL -------------------------------------------------------------

APPS = [
    ("bench.apps.bare_def", "create_app", {}),
    ("bench.apps.bare_def", "create_frozen_app", {}),
    ("bench.apps.bare_async", "create_frozen_app", {}),
    ("bench.apps.bare_async_sync", "create_app", {}),
    ("bench.apps.bare_async_sync", "create_dependency_app", {}),
    ("bench.apps.bare_async", "create_app", {}),
    ("bench.apps.instrumented", "create_app", {}),
    ("bench.apps.gateway_app", "create_app", {"GATEWAY_DEFAULT_MODE": "legacy"}),
    ("bench.apps.gateway_app", "create_app", {"GATEWAY_DEFAULT_MODE": "async"}),
    ("bench.apps.gateway_app", "create_blocking_app", {"GATEWAY_DEFAULT_MODE": "async"}),
]


@pytest.fixture
def seeded_url(postgres_url: str) -> str:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id serial PRIMARY KEY, name varchar(100) UNIQUE NOT NULL,"
            " email varchar(200) NOT NULL)"
        )
        conn.execute(
            "INSERT INTO users (name, email) SELECT 'user' || i, 'user' || i || '@example.com'"
            " FROM generate_series(1, 20) AS i"
        )
    return postgres_url


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.parametrize(("module", "factory", "env"), APPS)
async def test_every_app_answers_the_same_lookup(module, factory, env, seeded_url, monkeypatch):
    if module.endswith("instrumented"):
        pytest.importorskip("prometheus_fastapi_instrumentator")
    import importlib

    monkeypatch.setenv("GATEWAY_DATABASE_URL", seeded_url)
    monkeypatch.setenv("GATEWAY_POOL_SIZE", "2")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = getattr(importlib.import_module(module), factory)()
    async for client in started_client(app):
        found = await client.get("/users/7")
        missing = await client.get("/users/999")
    assert found.status_code == 200
    assert found.json() == {"id": 7, "name": "user7", "email": "user7@example.com"}
    assert missing.status_code == 404
    assert missing.json() == {"detail": "User 999 not found"}


@pytest.mark.postgres
@pytest.mark.anyio
async def test_gateway_app_runs_the_mode_it_was_given(seeded_url, monkeypatch):
    from bench.apps import gateway_app

    monkeypatch.setenv("GATEWAY_DATABASE_URL", seeded_url)
    monkeypatch.setenv("GATEWAY_POOL_SIZE", "2")
    for mode in ("legacy", "async"):
        monkeypatch.setenv("GATEWAY_DEFAULT_MODE", mode)
        app = gateway_app.create_app()
        async for client in started_client(app):
            gateway = app.state.gateway
            assert gateway.modes.get(gateway_app.ROUTE).mode.value == mode
            answer = await client.get("/users/3")
        assert answer.headers["x-gateway-implementation"] == mode


def test_gateway_legacy_side_is_the_bare_def_app_itself(monkeypatch):
    from bench.apps import gateway_app

    # never connected: the app is only built; monkeypatch keeps it out of later tests
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    gateway = gateway_app.create_app().state.gateway
    row = next(r for r in gateway.describe_routes() if r["key"] == gateway_app.ROUTE)
    assert row["paired"] and row["kinds"] == {"legacy": "def", "async": "async def"}
    assert row["legacy"] == "bench.apps.bare_def.create_app.<locals>.read_user"
    assert row["async"] == "bench.apps.gateway_app.read_user_async"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_frozen_apps_freeze_after_startup_and_unfreeze_at_shutdown(seeded_url, monkeypatch):
    import gc

    from bench.apps import bare_async

    monkeypatch.setenv("GATEWAY_DATABASE_URL", seeded_url)
    monkeypatch.setenv("GATEWAY_POOL_SIZE", "2")
    gc.unfreeze()
    async for _client in started_client(bare_async.create_frozen_app()):
        frozen = gc.get_freeze_count()
    assert frozen > 0 and gc.get_freeze_count() == 0
    async for _client in started_client(bare_async.create_app()):
        assert gc.get_freeze_count() == 0


@pytest.mark.postgres
def test_delay_profile_changes_the_database_not_the_query(postgres_server):
    from bench.database import throwaway_database

    with throwaway_database(postgres_server, users=5) as db:
        for profile, relkind in ((cases.PROFILES[1], "v"), (cases.PROFILES[0], "r")):
            db.use_profile(profile)
            with psycopg.connect(db.url) as conn:
                row = conn.execute(
                    "SELECT c.relkind FROM pg_class c WHERE c.oid = 'users'::regclass"
                ).fetchone()
                count = conn.execute("SELECT count(*) FROM users WHERE id = 3").fetchone()
            assert (row[0], count[0]) == (relkind, 1)
        name = db.name
    with psycopg.connect(postgres_server) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert left is None


# -- one real wrk run -------------------------------------------------------------------------


@pytest.mark.slow
def test_wrk_and_the_lua_hook_against_a_real_server():
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (scripts/bench installs it)")
    from bench.run import serve

    case = next(c for c in cases.CASES if c.name == "ceiling")
    env = {"GATEWAY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}  # never connected
    with serve(case, env) as server:
        start = time.monotonic()
        argv = wrk.command(
            server.url, case.path, connections=2, duration=2, max_id=3, window=(start, start + 1)
        )
        with wrk.Running(argv) as running:
            result, output = running.finish(60, window=(start, start + 1))
    assert result.requests > 0, output
    assert result.error_count == 0, output
    assert result.sent >= result.requests
    assert result.window_requests is not None and result.ok <= result.requests
    assert json.loads(output.split(wrk.MARKER, 1)[1].splitlines()[0])["requests"] == result.requests


def test_loop_blocking_sums_the_gateway_metrics_over_labels():
    run = _run("plain", 1, "gateway_async_sync", 100)
    run["wrk"]["requests"] = 1000  # the whole wrk run: the span the counters cover
    run["gateway_metrics"] = {
        'gateway_loop_blocked_seconds_total{method="GET",route="/users/{user_id}"}': 0.5,
        'gateway_loop_blocked_seconds_total{method="GET",route="/other"}': 0.25,
        'gateway_loop_blocking_requests_total{method="GET",route="/users/{user_id}"}': 900,
        "gateway_event_loop_lag_seconds_sum": 0.3,
        "gateway_event_loop_lag_seconds_count": 10,
    }
    assert report.loop_blocking(run) == {
        "blocked_ms_per_request": 0.75,
        "blocking_share": 0.9,
        "mean_lag_ms": pytest.approx(30.0),
    }
    # the gateway's own request count, when scraped, is the denominator (same span)
    run["gateway_metrics"]['gateway_requests_total{status="200"}'] = 1500
    assert report.loop_blocking(run)["blocking_share"] == 0.6
    run["gateway_metrics"] = {'gateway_requests_total{status="200"}': 10.0}
    assert report.loop_blocking(run) == {
        "blocked_ms_per_request": 0.0,  # exposed, never counted: no blocking
        "blocking_share": 0.0,
        "mean_lag_ms": None,
    }
    run["gateway_metrics"] = {}
    assert set(report.loop_blocking(run).values()) == {None}
    text = report.markdown({**_result(RUNS), "runs": [*RUNS, run]})
    assert "| plain | 1 | gateway_async_sync | n/a | n/a | n/a |" in text
