"""The issue's figures for the canary judge, on seeded simulated streams (bench.judge)."""

from __future__ import annotations

import pytest

from bench.judge import Arm, figures, simulate

pytestmark = pytest.mark.slow  # 800 simulated canaries: tens of seconds of CPU


def test_the_judge_meets_the_issues_figures_on_200_seeded_runs_each():
    errors, latency, same, outage = figures(200)
    assert errors.share_within >= 0.95, errors
    assert errors.deadline == 60
    assert latency.share_within >= 0.95, latency
    assert latency.deadline == 120
    assert same.rolled_back <= 2, same  # at most 1 % of 200 A/A canaries of 30 minutes
    assert outage.rolled_back == 0, outage


def test_a_run_is_the_same_for_the_same_seed():
    phase = lambda _now: (Arm(0.05), Arm(0.005))  # noqa: E731
    first = [simulate(phase, seconds=120, seed=seed) for seed in range(5)]
    assert first == [simulate(phase, seconds=120, seed=seed) for seed in range(5)]
    assert all(t is not None for t in first)
