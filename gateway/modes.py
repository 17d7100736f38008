"""The modes of a paired route and what each one means: the one list of modes.

    Mode.CANARY.takes_percent            # True
    Mode.SHADOW.async_percent(100.0)     # 0.0: legacy serves every client in shadow
    mode_names()                         # "legacy, async, canary or shadow"

Help texts, errors, metrics, the settings check, the operator's page and the docs all derive
from `MODES`; what a mode does per request is decided in gateway.flags.table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway._compat import StrEnum

__all__ = [
    "DEFAULT_MODES",
    "MODES",
    "RESERVED_MODES",
    "VALID_MODES",
    "Implementation",
    "Mode",
    "ModeSpec",
    "format_mode",
    "mode_names",
    "modes_as_data",
    "modes_markdown",
]


class Implementation(StrEnum):
    """Which implementation of a route served a request."""

    LEGACY = "legacy"
    ASYNC = "async"


class Mode(StrEnum):
    """How a paired route picks its implementation; `MODES` says what each one means.

    legacy and async serve every request from one side; canary sends `percent` of requests
    to async; shadow serves every request from legacy and also runs async on `percent` of
    them, with its writes rolled back, to compare the two (gateway.shadow).
    """

    LEGACY = "legacy"
    ASYNC = "async"
    CANARY = "canary"
    SHADOW = "shadow"

    @property
    def spec(self) -> ModeSpec:
        return MODES[self]

    @property
    def takes_percent(self) -> bool:
        return self.spec.percent_means is not None

    def async_percent(self, percent: float) -> float:
        """The share of requests this mode serves from async (0-100), for the metrics."""
        share = self.spec.async_share
        return percent if share is None else share


@dataclass(frozen=True)
class ModeSpec:
    """What one mode means; every help text, error, metric, the page and the docs read it here.

    `percent_means` is None for a mode without a percentage, and `default_percent` is the
    percentage a flip without one gets (None: required). `async_share` is the share served
    by async (None: the percentage). `label` shows a route in that mode on the page.
    """

    meaning: str
    percent_means: str | None = None
    default_percent: float | None = None
    async_share: float | None = None
    can_be_default: bool = False
    label: str = "{mode}"


# The one list of modes. Adding a mode: a member above, its line here, and what it does at
# dispatch (routing.dispatch); the rest (metrics, CLI, admin API, settings, page) follows.
MODES: Mapping[Mode, ModeSpec] = {
    Mode.LEGACY: ModeSpec(
        "legacy serves every request", default_percent=0.0, async_share=0.0, can_be_default=True
    ),
    Mode.ASYNC: ModeSpec(
        "async serves every request", default_percent=100.0, async_share=100.0, can_be_default=True
    ),
    Mode.CANARY: ModeSpec(
        "async serves `percent` of the requests (sticky per request key), legacy the rest",
        percent_means="share of requests served by async",
        label="{mode} {percent}% async",
    ),
    Mode.SHADOW: ModeSpec(
        "legacy serves every request; async also runs on `percent` of them, its writes rolled "
        "back, and the two answers are compared",
        percent_means="share of requests also run on async, rolled back and compared",
        default_percent=100.0,
        async_share=0.0,
        label="{mode} {percent}% (legacy serves)",
    ),
}
VALID_MODES = tuple(m.value for m in Mode)
RESERVED_MODES: tuple[str, ...] = ()
DEFAULT_MODES = tuple(m.value for m in Mode if m.spec.can_be_default)


def mode_names(modes: Iterable[str] = VALID_MODES, last: str = "or") -> str:
    """The modes as a sentence's list: `mode_names()` is "legacy, async, canary or shadow"."""
    names = list(modes)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def modes_as_data() -> list[dict[str, object]]:
    """Each mode and what it means, JSON-ready (the page's bootstrap data, the docs)."""
    return [
        {
            "mode": mode.value,
            "meaning": mode.spec.meaning,
            "percent_means": mode.spec.percent_means,
            "default_percent": mode.spec.default_percent,
            "label": mode.spec.label,
        }
        for mode in Mode
    ]


def modes_markdown() -> str:
    """The modes as the docs' Markdown table (docs/explanation/request-flow.md's; tested)."""
    rows = ["| mode | what it serves | percent |", "|---|---|---|"]
    for mode in Mode:
        spec = mode.spec
        if spec.percent_means is None:
            percent = "none"
        else:
            default = (
                "required" if spec.default_percent is None else f"default {spec.default_percent:g}"
            )
            percent = f"{spec.percent_means} ({default})"
        default_note = " (can be `GATEWAY_DEFAULT_MODE`)" if spec.can_be_default else ""
        rows.append(f"| `{mode.value}`{default_note} | {spec.meaning} | {percent} |")
    return "\n".join(rows) + "\n"


def format_mode(mode: str, percent: float | None) -> str:
    """'canary 10%' for a mode that takes a percentage, the mode's name otherwise."""
    with_percent = mode in VALID_MODES and Mode(mode).takes_percent and percent is not None
    return f"{mode} {percent:g}%" if with_percent else mode
