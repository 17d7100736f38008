"""Noise: what differs between two runs of the legacy function on the same snapshot (a
random salt, a `now()` default, a uuid) cannot tell the translation apart, so it is left
out of the comparison and named in the verdict instead.

    mask = learn(first_legacy_run, second_legacy_run)   # differing leaves become NOISE
    masked(mask, first_legacy_run) == masked(mask, translated_run)
    named(mask)                                          # ["tables.user.salt"]
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["NOISE", "learn", "masked", "named"]

NOISE = "<noise>"


def learn(first: Any, second: Any) -> Any:
    """`first` with every part that differs from `second` replaced by NOISE."""
    if first == second:
        return first
    if isinstance(first, dict) and isinstance(second, dict) and first.keys() == second.keys():
        return {key: learn(value, second[key]) for key, value in first.items()}
    if _sequences(first, second) and len(first) == len(second):
        return type(first)(learn(a, b) for a, b in zip(first, second, strict=True))
    return NOISE


def masked(mask: Any, value: Any) -> Any:
    """`value` with the parts the mask calls noise replaced by NOISE, where its shape
    matches the mask's (a part of another shape is kept: it is a difference)."""
    if mask is NOISE:
        return NOISE
    if isinstance(mask, dict) and isinstance(value, dict) and mask.keys() == value.keys():
        return {key: masked(mask[key], item) for key, item in value.items()}
    if _sequences(mask, value) and len(mask) == len(value):
        return type(value)(masked(m, v) for m, v in zip(mask, value, strict=True))
    return value


def named(mask: Any, path: str = "") -> list[str]:
    """Where the noise is, by key (row positions left out): `tables.user.salt`."""
    if mask is NOISE:
        return [re.sub(r"\[\d+\]", "", path) or "the whole result"]
    found: list[str] = []
    if isinstance(mask, dict):
        for key, value in mask.items():
            found += named(value, f"{path}.{key}" if path else str(key))
    elif isinstance(mask, list | tuple):
        for index, value in enumerate(mask):
            found += named(value, f"{path}[{index}]")
    return list(dict.fromkeys(found))


def _sequences(first: Any, second: Any) -> bool:
    return isinstance(first, list | tuple) and type(first) is type(second)
