"""The canary judge on simulated request streams: seeded, no sleeping, no server.

    python -m bench.judge                 # the issue's four figures, 200 runs each
    python -m bench.judge --runs 50 --json

Each run is one canary at 50 %: both arms serve `rate` requests per second (Poisson), split
over `workers` workers that each hand the judge one batch of counts every `interval`
seconds, as the gateway's workers write theirs to the database; the judge reads every batch
and decides at the end of each interval (gateway.canary.sequential.Evidence, the same code the
gateway runs). Latencies are log-normal (median 20 ms, sigma 0.5), errors Bernoulli. A run's
rollback time is the end of the interval at which the judge first says WORSE.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from gateway.canary.sequential import LATENCY_BOUNDS, ArmCounts, Decision, Evidence

__all__ = ["Arm", "Figure", "figures", "simulate"]

ALPHA = 0.01  # GATEWAY_JUDGE_ALPHA's default
BOUNDS = np.array(LATENCY_BOUNDS)
BASE_MEDIAN = 0.020


@dataclass(frozen=True)
class Arm:
    """One arm's behaviour: its error share and its latency's median factor over legacy."""

    error_rate: float = 0.005
    latency_factor: float = 1.0


Phase = Callable[[float], tuple[Arm, Arm]]  # simulated second -> (async arm, legacy arm)


def _batch(rng: np.random.Generator, arm: Arm, mean: float) -> ArmCounts:
    requests = int(rng.poisson(mean))
    errors = int(rng.binomial(requests, arm.error_rate)) if requests else 0
    answered = requests - errors
    latency = rng.lognormal(np.log(BASE_MEDIAN * arm.latency_factor), 0.5, answered)
    buckets = np.bincount(np.searchsorted(BOUNDS, latency), minlength=len(BOUNDS) + 1)
    counts = ArmCounts(requests, errors, 0)
    counts.latency = [int(c) for c in buckets]
    return counts


def simulate(
    phase: Phase,
    *,
    seconds: float,
    seed: int,
    rate: float = 10.0,
    workers: int = 2,
    interval: float = 2.0,
    alpha: float = ALPHA,
) -> float | None:
    """Simulated seconds until the judge says WORSE, or None if it never does."""
    rng = np.random.default_rng(seed)
    evidence = Evidence()
    mean = rate * interval / workers
    now = 0.0
    while now < seconds:
        async_arm, legacy_arm = phase(now)
        now += interval
        for _ in range(workers):
            evidence.add(_batch(rng, async_arm, mean), _batch(rng, legacy_arm, mean))
        if evidence.verdict(alpha).decision is Decision.WORSE:
            return now
    return None


@dataclass(frozen=True)
class Figure:
    """One of the issue's figures: how many runs rolled back, and by when."""

    name: str
    runs: int
    rolled_back: int
    within: int  # rolled back within the deadline
    deadline: float | None
    median_seconds: float | None
    target: str

    @property
    def share_within(self) -> float:
        return self.within / self.runs


def _figure(
    name: str, phase: Phase, seconds: float, deadline: float | None, target: str, runs: int
) -> Figure:
    times = [simulate(phase, seconds=seconds, seed=seed) for seed in range(runs)]
    hits = sorted(t for t in times if t is not None)
    within = sum(1 for t in hits if deadline is None or t <= deadline)
    median = hits[len(hits) // 2] if hits else None
    return Figure(name, runs, len(hits), within, deadline, median, target)


def figures(runs: int = 200) -> list[Figure]:
    """The issue's four figures over `runs` seeded runs each (seeds 0 .. runs-1)."""
    legacy = Arm(0.005)

    def outage(now: float) -> tuple[Arm, Arm]:
        down = 60 <= now < 70  # the database is down: every request of both arms fails
        return (Arm(1.0), Arm(1.0)) if down else (legacy, legacy)

    return [
        _figure("errors 5 % vs 0.5 %", lambda _: (Arm(0.05), legacy), 60, 60,
                ">= 95 % rolled back within 60 s", runs),
        _figure("p50 +50 %", lambda _: (Arm(0.005, 1.5), legacy), 120, 120,
                ">= 95 % rolled back within 120 s", runs),
        _figure("A/A, 30 min", lambda _: (legacy, legacy), 1800, None,
                "<= 1 % rolled back", runs),
        _figure("both arms 100 % errors for 10 s", outage, 130, None,
                "0 rolled back", runs),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    results = figures(args.runs)
    if args.json:
        print(json.dumps([asdict(f) for f in results], indent=2))
        return
    print("| stream | runs | rolled back | within deadline | median time | target |")
    print("|---|---:|---:|---:|---:|---|")
    for f in results:
        median = f"{f.median_seconds:g} s" if f.median_seconds is not None else "-"
        within = f"{f.within} ({f.share_within:.1%})" if f.deadline else "-"
        print(f"| {f.name} | {f.runs} | {f.rolled_back} | {within} | {median} | {f.target} |")


if __name__ == "__main__":
    main()
