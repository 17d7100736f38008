"""The report's window: snapshots fed with explicit times (no sleeping), differenced into
rates, quantiles and each paired route's two sides, and the CPU-bound threshold."""

from __future__ import annotations

import pytest

from gateway.metrics.readings import (
    MAX_WINDOW,
    SNAPSHOT_INTERVAL,
    RouteNumbers,
    Snapshots,
    difference,
    parse_window,
)
from gateway.report.ranking import MIN_TIMED_REQUESTS, rank, window_report

INF = float("inf")
USERS = "GET /users/{user_id}"


def totals(implementation: str, requests: float, errors: float = 0.0, **more: float):
    """Cumulative totals where half the requests took <= 10 ms and the rest <= 100 ms."""
    buckets = [(0.01, requests / 2), (0.1, requests), (INF, requests)]
    return RouteNumbers("/users/{user_id}", "GET", implementation, requests=requests,
                        errors=errors, buckets=buckets, **more)  # fmt: skip


def by_side(numbers):
    return {row.implementation: row for row in numbers}


def test_until_the_window_fills_it_covers_the_time_since_the_first_snapshot():
    snapshots = Snapshots()
    snapshots.add(1000.0, [totals("legacy", 10)])
    snapshots.add(1010.0, [totals("legacy", 30)])
    window = snapshots.window(1025.0, [totals("legacy", 60)], seconds=300.0)
    assert (window.start, window.end, window.seconds) == (1000.0, 1025.0, 25.0)
    assert not window.filled and window.requested_seconds == 300.0
    [row] = window.numbers
    assert row.requests == 50  # 60 now minus 10 at the first snapshot
    assert [(s.start, s.end, s.numbers[0].requests) for s in window.steps] == [
        (1000.0, 1010.0, 20),
        (1010.0, 1025.0, 30),
    ]
    report = window_report(window).as_dict()
    assert report["window_seconds"] == 25.0 and report["window_filled"] is False
    assert report["candidates"][0]["rate_per_second"] == pytest.approx(2.0)


def test_a_filled_window_starts_at_the_newest_snapshot_before_it():
    snapshots = Snapshots()
    for i in range(41):  # every 10 s from t=0 to t=400, 3 requests per second
        snapshots.add(i * 10.0, [totals("legacy", i * 30.0)])
    window = snapshots.window(405.0, [totals("legacy", 1215.0)], seconds=300.0)
    assert window.start == 100.0 and window.filled  # the newest snapshot at or before t=105
    [row] = window.numbers
    assert row.requests == 1215 - 300
    assert len(window.steps) == 31 and window.steps[-1].start == 400.0
    [candidate] = rank(window.numbers, window.seconds).candidates
    assert candidate.rate_per_second == pytest.approx(915 / 305)
    assert candidate.p50_seconds == pytest.approx(0.01)  # quantiles of the window's buckets


def test_snapshots_are_bounded_and_still_fill_the_longest_window():
    snapshots = Snapshots()
    for i in range(1000):
        snapshots.add(i * SNAPSHOT_INTERVAL, [totals("legacy", i)])
    assert len(snapshots.taken) == int(MAX_WINDOW // SNAPSHOT_INTERVAL) + 2
    now = 999 * SNAPSHOT_INTERVAL + 5
    assert snapshots.window(now, [totals("legacy", 1000)], MAX_WINDOW).filled


def test_snapshots_are_due_every_interval_and_unchanged_rows_share_memory():
    snapshots = Snapshots(interval=10.0)
    reads = []

    def read():
        reads.append(1)
        return [totals("legacy", 5), totals("async", len(reads))]

    assert snapshots.take_if_due(0.0, read)
    assert not snapshots.take_if_due(9.9, read)
    assert snapshots.take_if_due(10.0, read)
    assert len(reads) == 2
    first, second = snapshots.taken
    key = ("/users/{user_id}", "GET", "legacy")
    assert second.rows[key] is first.rows[key]  # same totals: no second copy
    changed = ("/users/{user_id}", "GET", "async")
    assert second.rows[changed] is not first.rows[changed]


def test_a_total_that_went_down_was_reset_and_counts_whole():
    snapshots = Snapshots()
    older = snapshots.add(0.0, [totals("legacy", 100, thread_seconds=5.0)])
    newer = snapshots.add(10.0, [totals("legacy", 40, thread_seconds=7.0)])
    [row] = difference(newer, older)
    assert row.requests == 40  # reset: all 40 are new
    assert row.thread_seconds == 2.0  # not reset: the difference


def test_side_by_side_compares_both_sides_over_the_window():
    snapshots = Snapshots()
    snapshots.add(0.0, [totals("legacy", 0), totals("async", 0)])
    snapshots.add(10.0, [totals("legacy", 90, errors=0), totals("async", 10, errors=1)])
    window = snapshots.window(20.0, [totals("legacy", 170), totals("async", 30, errors=4)], 20.0)
    report = window_report(window, modes={USERS: "canary 10%"})
    [pair] = report.pairs
    assert pair.key == USERS and pair.mode == "canary 10%"
    legacy, migrated = pair.sides["legacy"], pair.sides["async"]
    assert (legacy.requests, legacy.rate_per_second, legacy.error_share) == (170, 8.5, 0.0)
    assert (migrated.requests, migrated.rate_per_second, migrated.errors) == (30, 1.5, 4)
    assert migrated.error_share == pytest.approx(4 / 30)
    assert migrated.p50_seconds == pytest.approx(0.01)
    assert migrated.p95_seconds == pytest.approx(0.01 + 0.09 * (0.95 * 30 - 15) / 15)
    series = pair.series
    assert series.at == [10.0, 20.0]
    assert series.rate_per_second == {"legacy": [9.0, 8.0], "async": [1.0, 2.0]}
    assert series.error_share["async"] == [pytest.approx(0.1), pytest.approx(0.15)]
    assert [c.key for c in report.candidates] == [USERS]  # a canary still ranks
    assert report.candidates[0].mode == "canary 10%"


def test_a_route_fully_on_async_leaves_the_ranking_for_the_migrated_list():
    snapshots = Snapshots()
    snapshots.add(0.0, [totals("legacy", 0), totals("async", 0)])
    window = snapshots.window(10.0, [totals("legacy", 5), totals("async", 40, errors=2)], 60.0)
    report = window_report(window, modes={USERS: "async"})
    assert report.candidates == []
    [migrated] = report.migrated
    assert (migrated.key, migrated.requests, migrated.legacy_requests) == (USERS, 40, 5)
    assert migrated.rate_per_second == 4.0 and migrated.error_share == 0.05
    assert report.pairs[0].mode == "async"  # still compared side by side


@pytest.mark.parametrize(("timed", "marked"), [(MIN_TIMED_REQUESTS - 1, False),
                                               (MIN_TIMED_REQUESTS, True)])  # fmt: skip
def test_cpu_bound_mark_only_after_enough_thread_timed_requests(timed, marked):
    row = RouteNumbers("/cpu", "GET", "legacy", requests=timed, thread_requests=timed,
                       thread_seconds=timed * 0.03, thread_cpu_seconds=timed * 0.029)  # fmt: skip
    [candidate] = rank([row], 10.0).candidates
    assert candidate.cpu_share == pytest.approx(0.029 / 0.03)
    assert candidate.async_will_not_help is marked
    assert candidate.timed_requests == timed


def test_no_snapshot_yet_is_an_empty_window_not_an_error():
    window = Snapshots().window(5.0, [totals("legacy", 3)], 300.0)
    assert window.numbers == [] and window.seconds == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("text", "seconds"), [(None, 300.0), ("", 300.0), ("90", 90.0), (" 90s ", 90.0),
                          ("5m", 300.0), ("0.5h", 1800.0), ("2.5M", 150.0)],
)  # fmt: skip
def test_parse_window_reads_seconds_and_units(text, seconds):
    assert parse_window(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5 minutes", "window '5 minutes' is not a duration; expected seconds (300)"),
        ("-5", "window '-5' is not a duration"),
        ("2h", "window '2h' is 7200 s; expected 10 to 1800 s"),
        ("1", "window '1' is 1 s; expected 10 to 1800 s"),
    ],
)
def test_parse_window_refuses_with_the_value_and_the_range(text, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_window(text)


def test_pairs_list_what_is_migrating_first_then_the_busiest():
    rows = [totals("legacy", 5), RouteNumbers("/b", "GET", "legacy", requests=50)]
    snapshots = Snapshots()
    snapshots.add(0.0, [])
    window = snapshots.window(10.0, rows, 60.0)
    modes = {"GET /a": "legacy", "GET /b": "legacy", "GET /c": "async", USERS: "legacy"}
    report = window_report(window, modes=modes)
    assert [p.key for p in report.pairs] == ["GET /c", "GET /b", USERS, "GET /a"]
