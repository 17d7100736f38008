"""The judge's statistics on hand-made counts: what moves the evidence and what does not."""

from __future__ import annotations

import math

import pytest

from gateway.canary.sequential import LATENCY_BOUNDS, ArmCounts, Decision, Evidence, RatioTest


def arm(requests: int, errors: int = 0, client: int = 0, seconds: float = 0.02) -> ArmCounts:
    counts = ArmCounts()
    for index in range(requests):
        status = 500 if index < errors else 404 if index < errors + client else 200
        counts.add(status, seconds)
    return counts


def test_no_data_holds_with_no_evidence():
    evidence = Evidence()
    evidence.add(ArmCounts(), ArmCounts())
    verdict = evidence.verdict(alpha=0.01)
    assert verdict.decision is Decision.HOLD
    assert all(test.log_e == 0 for test in evidence.tests.values())
    assert verdict.reason.startswith("no regression found")


def test_many_more_errors_on_async_is_worse_and_the_reason_has_the_figures():
    evidence = Evidence()
    for _ in range(10):
        evidence.add(arm(100, errors=10), arm(100, errors=1))
    verdict = evidence.verdict(alpha=0.01)
    assert verdict.decision is Decision.WORSE
    assert verdict.test == "5xx"
    assert "5xx async 100/1000, legacy 10/1000" in verdict.reason
    assert "threshold" in verdict.reason and "alpha 0.01" in verdict.reason


def test_equal_errors_only_lower_the_evidence():
    evidence = Evidence()
    for _ in range(50):
        evidence.add(arm(100, errors=5), arm(100, errors=5))
    assert evidence.tests["5xx"].log_e < 0
    assert evidence.verdict(alpha=0.01).decision is Decision.HOLD


def test_both_arms_failing_alike_is_not_counted_against_async():
    evidence = Evidence()
    for _ in range(30):  # an outage: every request of both arms fails
        evidence.add(arm(50, errors=50), arm(50, errors=50))
    assert evidence.tests["5xx"].log_e == 0
    # ...so a regression afterwards is found as quickly as without the outage.
    fresh = Evidence()
    for target in (evidence, fresh):
        for _ in range(5):
            target.add(arm(100, errors=10), arm(100, errors=1))
    assert evidence.tests["5xx"].log_e == pytest.approx(fresh.tests["5xx"].log_e)


def test_async_failing_alone_is_not_mistaken_for_an_outage():
    evidence = Evidence()
    for _ in range(3):
        evidence.add(arm(20, errors=20), arm(20))
    assert evidence.verdict(alpha=0.01).decision is Decision.WORSE


def test_client_errors_are_compared_between_arms_only():
    both = Evidence()
    for _ in range(20):
        both.add(arm(100, client=30), arm(100, client=30))
    assert both.verdict(alpha=0.01).decision is Decision.HOLD
    only_async = Evidence()
    for _ in range(20):
        only_async.add(arm(100, client=30), arm(100, client=3))
    verdict = only_async.verdict(alpha=0.01)
    assert (verdict.decision, verdict.test) == (Decision.WORSE, "4xx")


def test_slower_async_is_worse_once_legacy_has_a_median():
    evidence = Evidence()
    evidence.add(arm(100, seconds=0.030), arm(100, seconds=0.020))
    # The first batch only sets legacy's median: nothing before it to compare with.
    assert evidence.tests["latency"].log_e == 0
    for _ in range(5):
        evidence.add(arm(100, seconds=0.030), arm(100, seconds=0.020))
    verdict = evidence.verdict(alpha=0.01)
    assert (verdict.decision, verdict.test) == (Decision.WORSE, "latency")
    assert "slower than legacy's median" in verdict.reason


def test_a_larger_async_share_needs_more_async_events():
    test = RatioTest()
    test.update(ours=9, theirs=1, share=0.9)  # exactly async's share of the traffic
    assert test.log_e < 0
    one_sided = RatioTest()
    one_sided.update(ours=9, theirs=1, share=0.5)
    assert one_sided.log_e > 0


def test_a_batch_with_one_arm_only_carries_no_evidence():
    test = RatioTest()
    test.update(ours=5, theirs=0, share=1.0)
    test.update(ours=0, theirs=0, share=0.5)
    assert test.log_e == 0


def test_ratio_grid_must_look_for_worse_async():
    with pytest.raises(ValueError, match=r"ratios \(0\.5,\) must be non-empty and all above"):
        RatioTest([0.5])
    with pytest.raises(ValueError, match=r"all above tolerated=1\.25"):
        RatioTest([1.2, 2.0], tolerated=1.25)


def test_a_small_latency_difference_is_tolerated_however_long_it_lasts():
    from gateway.canary.sequential import LATENCY_RATIOS, LATENCY_TOLERATED

    # What a real two-worker canary showed after a database restart: async 16 % more often
    # slower than legacy's median (1646 of 3225 against 1421 of 3238), batch after batch.
    small = RatioTest(LATENCY_RATIOS, tolerated=LATENCY_TOLERATED)
    strict = RatioTest((1.1, 1.25, 1.5), tolerated=1.0)
    for _ in range(500):
        small.update(ours=51, theirs=44, share=0.5)
        strict.update(ours=51, theirs=44, share=0.5)
    assert small.log_e < 0  # the evidence only falls
    assert strict.log_e > 50  # against "no difference at all" it would roll back
    # A real regression (async slower than legacy's median twice as often) is still found.
    big = RatioTest(LATENCY_RATIOS, tolerated=LATENCY_TOLERATED)
    for _ in range(20):
        big.update(ours=66, theirs=33, share=0.5)
    assert big.log_e > 10


def test_alpha_out_of_range_is_refused_naming_the_value():
    with pytest.raises(ValueError, match=r"alpha=1\.5 is out of range"):
        Evidence().verdict(alpha=1.5)


def test_counts_round_trip_through_their_json_form():
    counts = arm(30, errors=3, client=4, seconds=0.1)
    counts.add(200, 120.0)  # beyond the last bound
    back = ArmCounts.from_json(counts.as_json())
    assert back == counts
    assert back.latency[len(LATENCY_BOUNDS)] == 1
    with pytest.raises(ValueError, match="malformed"):
        ArmCounts.from_json({"n": 1})


def test_evidence_never_overflows_on_a_long_regression():
    evidence = Evidence()
    for _ in range(2000):
        evidence.add(arm(100, errors=100), arm(100))
    assert math.isfinite(evidence.tests["5xx"].log_e)
    assert "e-value" in evidence.verdict(alpha=0.01).reason
