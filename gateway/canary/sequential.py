"""The canary judge's statistics: anytime-valid comparisons of a route's two arms. Pure.

    evidence = Evidence()
    evidence.add(async_counts, legacy_counts)      # one worker's counts of a few seconds
    verdict = evidence.verdict(alpha=0.01)         # Decision.WORSE, or HOLD with the figures

Each comparison counts events either arm can produce: a 5xx, a 4xx, a response slower than
legacy's median so far. If async is no worse, an event of a batch is async's with probability
at most the async share of that batch's requests, pi. For a rate ratio psi (async's rate over
legacy's) an event is async's with probability pi*psi / (pi*psi + 1 - pi); the product over
batches of the binomial likelihood ratio of psi against 1, averaged over a grid of psi (a
mixture sequential probability ratio test), is then a nonnegative supermartingale (sampling
errors without replacement within a batch only makes it smaller: Hoeffding 1963). By Ville's
inequality it ever reaches k/alpha with probability at most alpha/k, however often it is read,
so the judge may decide at any moment (Lindon et al., KDD 2022, for the same idea on counts).

What this gives for free: no data is no evidence (hold); a failure that hits both arms alike
(every request of a batch a 5xx) leaves each arm's share of the events at pi and the evidence
only falls; 4xx are compared between the arms only, like everything else here.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway._compat import StrEnum

__all__ = [
    "LATENCY_BOUNDS",
    "ArmCounts",
    "Decision",
    "Evidence",
    "RatioTest",
    "Verdict",
]

# Upper bounds of the judge's latency buckets: 0.5 ms to ~60 s, each 20 % above the last,
# so "slower than legacy's median" is resolved to a fifth of the median at any scale.
LATENCY_BOUNDS: tuple[float, ...] = tuple(0.0005 * 1.2**i for i in range(65))
# The worsening each test looks for, equally weighted: errors may rise many times over,
# while the share of responses above legacy's median can at most double (from 1/2 to 1).
# Fewer points decide sooner on the ratios they hold; each ratio between them still wins.
COUNT_RATIOS = (1.5, 2.0, 4.0, 8.0, 16.0)
LATENCY_RATIOS = (1.5, 1.75, 2.0)
# How much more often async may be slower than legacy's median before it counts as worse:
# two implementations of one route never have exactly one latency distribution, and with
# thousands of requests a minute a test against "no difference at all" finds one. Errors
# get no such allowance.
LATENCY_TOLERATED = 1.25
MIN_BASELINE = 20  # legacy responses needed before its median is a threshold
# The share of alpha each test spends: server errors are what a canary is mostly for.
SHARES = {"5xx": 0.6, "4xx": 0.2, "latency": 0.2}


class Decision(StrEnum):
    """What the judge concludes about a canary right now."""

    HOLD = "hold"  # no evidence that async is worse (yet): keep the canary as it is
    WORSE = "worse"  # async is worse: roll the route back to legacy


@dataclass(slots=True)
class ArmCounts:
    """What one arm of one route served in a period: requests, 5xx, 4xx, latency buckets.

    Latency counts only responses below 500, so a failure that is fast or slow on one arm
    is judged by the error test alone.
    """

    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))

    def add(self, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests += 1
        if status >= 500:
            self.server_errors += 1
            return
        if status >= 400:
            self.client_errors += 1
        self.latency[bisect_left(LATENCY_BOUNDS, seconds)] += 1

    def merge(self, other: ArmCounts) -> None:
        self.requests += other.requests
        self.server_errors += other.server_errors
        self.client_errors += other.client_errors
        for index, count in enumerate(other.latency):
            self.latency[index] += count

    @property
    def answered(self) -> int:
        """Responses below 500: what the latency comparison is made of."""
        return self.requests - self.server_errors

    def above(self, bucket: int) -> int:
        """Responses slower than bucket `bucket`."""
        return sum(self.latency[bucket + 1 :])

    def median_bucket(self) -> int | None:
        """The bucket holding the median response, None with no responses."""
        total = self.answered
        if total == 0:
            return None
        running = 0
        for index, count in enumerate(self.latency):
            running += count
            if 2 * running >= total:
                return index
        return len(self.latency) - 1

    def as_json(self) -> dict[str, Any]:
        """A compact form for the database: the latency buckets as [index, count] pairs."""
        buckets = [[i, c] for i, c in enumerate(self.latency) if c]
        return {"n": self.requests, "5xx": self.server_errors, "4xx": self.client_errors,
                "lat": buckets}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArmCounts:
        """Read `as_json`'s form back; raise ValueError on anything else."""
        try:
            counts = cls(int(data["n"]), int(data["5xx"]), int(data["4xx"]))
            for index, count in data["lat"]:
                counts.latency[int(index)] += int(count)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"judge counts {str(data)[:80]!r} are malformed: {exc!r}") from None
        return counts


class RatioTest:
    """A one-sided mixture SPRT: is async's share of some event above its share of traffic?

    `log_e` is the log of the e-value (the mixture likelihood ratio), 0 at the start.
    """

    def __init__(self, ratios: Sequence[float] = COUNT_RATIOS, tolerated: float = 1.0) -> None:
        """`tolerated`: the rate ratio still counted as no worse (the null hypothesis is
        ratio <= tolerated; the likelihood ratio against its boundary stays an e-process
        for every ratio below it, the binomial family having a monotone likelihood ratio)."""
        if not ratios or min(ratios) <= tolerated or tolerated < 1:
            raise ValueError(
                f"ratios {tuple(ratios)!r} must be non-empty and all above tolerated="
                f"{tolerated!r}, itself at least 1"
            )
        self.ratios = tuple(ratios)
        self.tolerated = tolerated
        self._log_lr = [0.0] * len(ratios)

    def update(self, ours: int, theirs: int, share: float) -> None:
        """One batch: `ours` events on async, `theirs` on legacy, async's share `share`."""
        if ours + theirs == 0 or not 0 < share < 1:
            return  # nothing could tell the arms apart
        base = share * self.tolerated / (share * self.tolerated + 1 - share)
        for index, ratio in enumerate(self.ratios):
            theta = share * ratio / (share * ratio + 1 - share)
            self._log_lr[index] += ours * math.log(theta / base) + theirs * math.log(
                (1 - theta) / (1 - base)
            )

    @property
    def log_e(self) -> float:
        """log of the mean of exp(log_lr) over the grid, computed without overflow."""
        top = max(self._log_lr)
        mean = sum(math.exp(v - top) for v in self._log_lr) / len(self._log_lr)
        return top + math.log(mean)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge's conclusion with its figures: `reason` is what the history records."""

    decision: Decision
    test: str  # the test that decided, "" on hold
    reason: str
    async_requests: int
    legacy_requests: int


class Evidence:
    """Everything the judge knows about one canary: cumulative counts and the three tests."""

    def __init__(self) -> None:
        self.async_ = ArmCounts()
        self.legacy = ArmCounts()
        self.slow = [0, 0]  # responses above legacy's median so far: async, legacy
        self.tests = {
            "5xx": RatioTest(COUNT_RATIOS),
            "4xx": RatioTest(COUNT_RATIOS),
            "latency": RatioTest(LATENCY_RATIOS, tolerated=LATENCY_TOLERATED),
        }

    def add(self, async_: ArmCounts, legacy: ArmCounts) -> None:
        """One batch of counts from one worker (the arms over the same seconds)."""
        total = async_.requests + legacy.requests
        failed = async_.server_errors + legacy.server_errors
        if total:
            share = async_.requests / total
            # Both arms failing together (more than half of legacy's part failed whatever the
            # split) is no evidence against async. The skip reads only the batch's totals,
            # on which the test conditions, so it leaves the test valid.
            if failed < total * (1 + share) / 2:
                self.tests["5xx"].update(async_.server_errors, legacy.server_errors, share)
            self.tests["4xx"].update(async_.client_errors, legacy.client_errors, share)
        # The threshold comes from earlier batches only, so this batch cannot move it.
        median = self.legacy.median_bucket() if self.legacy.answered >= MIN_BASELINE else None
        answered = async_.answered + legacy.answered
        if median is not None and answered:
            ours, theirs = async_.above(median), legacy.above(median)
            self.tests["latency"].update(ours, theirs, async_.answered / answered)
            self.slow[0] += ours
            self.slow[1] += theirs
        self.async_.merge(async_)
        self.legacy.merge(legacy)

    def verdict(self, alpha: float) -> Verdict:
        """WORSE when a test's e-value reaches 1 / (its share of alpha), else HOLD.

        The reason names the test closest to its threshold, with its counts per arm.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha={alpha!r} is out of range; expected above 0 and below 1")
        margins = {
            name: test.log_e - math.log(1 / (alpha * SHARES[name]))
            for name, test in self.tests.items()
        }
        name = max(margins, key=lambda n: margins[n])
        worse = margins[name] >= 0
        log_e = self.tests[name].log_e
        figures = (
            f"{self._figures(name)}; e-value {_e(log_e)} {'>=' if worse else '<'} "
            f"threshold {_e(log_e - margins[name])} (alpha {alpha:g}, {SHARES[name]:.0%} "
            f"of it on {name})"
        )
        lead = f"async is worse on {name}" if worse else "no regression found"
        return Verdict(
            Decision.WORSE if worse else Decision.HOLD,
            name if worse else "",
            f"{lead}: {figures}",
            self.async_.requests,
            self.legacy.requests,
        )

    def _figures(self, name: str) -> str:
        a, b = self.async_, self.legacy
        if name == "5xx":
            return f"5xx async {a.server_errors}/{a.requests}, legacy {b.server_errors}/" + str(
                b.requests
            )
        if name == "4xx":
            return f"4xx async {a.client_errors}/{a.requests}, legacy {b.client_errors}/" + str(
                b.requests
            )
        median = b.median_bucket()
        shown = "none yet"
        if median is not None:
            shown = f"{LATENCY_BOUNDS[min(median, len(LATENCY_BOUNDS) - 1)] * 1000:.3g} ms"
        return (
            f"slower than legacy's median ({shown}) async {self.slow[0]}/{a.answered}, "
            f"legacy {self.slow[1]}/{b.answered}"
        )


def _e(log_value: float) -> str:
    return f"{math.exp(min(log_value, 700)):.3g}"
