"""Progressive rollout plans and the pure decision to move a route up one step.

    plan = RolloutPlan.parse("1,5,25,50,100", "10m")
    step = advance(plan, index=0, held=620.0, requests=(900, 40_000), min_requests=200)
    step.move, step.why            # True, "held 10m 20s at 1% with 900 async and 40000 ..."

A step is a canary percentage; the last step, 100, is mode async (the rollout is done). The
route moves up when the judge has held the current step for `hold` seconds with at least
`min_requests` requests in each arm since the step began and found no regression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RolloutPlan", "Step", "advance", "format_seconds", "parse_duration"]

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", re.IGNORECASE)
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_HOLD = 7 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds from "90", "90s", "10m" or "1.5h"; ValueError naming the value otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"hold {text[:40]!r} is not a duration; expected seconds (600) or a number with "
            "s, m or h (10m)"
        )
    seconds = float(match.group(1)) * _UNIT[match.group(2).lower()]
    if not 0 < seconds <= MAX_HOLD:
        raise ValueError(f"hold {text.strip()!r} is {seconds:g} s; expected above 0 to 7 days")
    return seconds


def format_seconds(seconds: float) -> str:
    """'10m', '1m 30s', '45s': how a hold reads in the history and the route list."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if minutes and rest:
        return f"{minutes}m {rest}s"
    return f"{minutes}m" if minutes else f"{rest}s"


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """Canary percentages to walk through, ending at 100, and the hold at each step."""

    steps: tuple[float, ...]
    hold: float

    @classmethod
    def parse(cls, steps: str | list[float], hold: str | float) -> RolloutPlan:
        """From "1,5,25,50,100" (or a list of numbers) and "10m" (or seconds)."""
        if isinstance(steps, str):
            try:
                values = [float(part) for part in steps.split(",") if part.strip()]
            except ValueError:
                raise ValueError(
                    f"steps {steps[:60]!r} are not numbers; expected percentages separated "
                    "by commas, e.g. 1,5,25,50,100"
                ) from None
        else:
            values = [float(v) for v in steps]
        seconds = parse_duration(hold) if isinstance(hold, str) else float(hold)
        return cls.checked(tuple(values), seconds)

    @classmethod
    def checked(cls, steps: tuple[float, ...], hold: float) -> RolloutPlan:
        """The plan, or ValueError naming what is wrong with the steps or the hold."""
        shown = ",".join(f"{s:g}" for s in steps)
        if not steps or steps[-1] != 100:
            raise ValueError(f"steps {shown!r} must end at 100 (the route then serves async)")
        if any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)):
            raise ValueError(
                f"steps {shown!r} must rise strictly, each above 0 and at most 100, "
                "e.g. 1,5,25,50,100"
            )
        if not 0 < hold <= MAX_HOLD:
            raise ValueError(f"hold {hold:g} s is out of range; expected above 0 to 7 days")
        return cls(steps, hold)

    def describe(self) -> str:
        return f"{','.join(f'{s:g}' for s in self.steps)} % holding {format_seconds(self.hold)}"


@dataclass(frozen=True, slots=True)
class Step:
    """Whether to move up now, and why (or why it waits): what the route list shows."""

    move: bool
    why: str


def advance(
    plan: RolloutPlan,
    *,
    index: int,
    held: float,
    requests: tuple[int, int],
    min_requests: int,
) -> Step:
    """Decide whether step `index`, held for `held` seconds with (async, legacy) `requests`
    since it began and no regression found, moves up. Pure: no I/O."""
    percent = plan.steps[index]
    ours, theirs = requests
    waits = []
    if held < plan.hold:
        waits.append(f"held {format_seconds(held)} of {format_seconds(plan.hold)}")
    if ours < min_requests or theirs < min_requests:
        waits.append(
            f"{ours} async and {theirs} legacy requests of the {min_requests} each it needs"
        )
    if waits:
        return Step(False, f"step {index + 1}/{len(plan.steps)} at {percent:g}%: waiting, "
                    + "; ".join(waits))  # fmt: skip
    return Step(
        True,
        f"held {format_seconds(held)} at {percent:g}% with {ours} async and {theirs} legacy "
        "requests and no regression",
    )
