"""Keeping written values and bodies out of shadow results and log lines (pure).

    hide = Redactor.of(legacy, candidate)            # the two sides' Outcomes
    hide.text("async only: insert users set email='ada@example.com', name='Ada'")
    # "async only: insert users set email=…, name=…"

Every value either side wrote (each write's columns and WHERE values) and every value in
either side's JSON body is replaced by … wherever it appears in a result's text: the write
differences, the error messages. Table names, column names, JSON keys and paths, statuses
and counts stay. Numbers are replaced only where a value stands (after `=`, `[` or `, `),
so "(3 rows)" keeps its count. With GATEWAY_SHADOW_KEEP_BODIES=true nothing is replaced.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.shadow.compare import Outcome

__all__ = ["HIDDEN_VALUE", "Redactor"]

HIDDEN_VALUE = "…"
_NOT_VALUES = frozenset({"table", "op", "rows"})  # a Write's fields that hold no user data


class Redactor:
    """Replaces known values in text; `Redactor.of(legacy, candidate)` knows both sides'."""

    def __init__(self, values: Iterable[Any]) -> None:
        texts: set[str] = set()
        numbers: set[str] = set()
        for value in values:
            if value is None or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                numbers.add(repr(value))
                continue
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            texts.add(repr(value))
            shown = str(value)
            if len(shown) >= 2:  # one letter would blank out every word holding it
                texts.add(shown)
        self._texts = sorted(texts, key=len, reverse=True)  # 'ada@x.org' before ada@x.org
        self._numbers = (
            re.compile(
                r"(?:(?<==)|(?<=\[)|(?<=, )|(?<==\())(?:"
                + "|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True))
                + r")(?![\w.])"
            )
            if numbers
            else None
        )

    @classmethod
    def of(cls, *outcomes: Outcome) -> Redactor:
        """A redactor of every value the given sides wrote or answered."""
        values: list[Any] = []
        for outcome in outcomes:
            for write in outcome.writes:
                values.extend(_write_values(write))
            values.extend(_json_leaves(outcome.body))
        return cls(values)

    def text(self, text: str) -> str:
        for value in self._texts:
            if value in text:
                text = text.replace(value, HIDDEN_VALUE)
        if self._numbers is not None:
            text = self._numbers.sub(HIDDEN_VALUE, text)
        return text

    def data(self, value: Any) -> Any:
        """`value` (JSON-like: dicts, lists, strings) with every string's values replaced;
        dict keys are kept as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


def _write_values(write: Any) -> Iterator[Any]:
    """The values of a Write (gateway.shadow.compare), whatever fields it has: not the
    table, the operation, the row count, or the column names of `values` pairs."""
    if not dataclasses.is_dataclass(write):
        yield write
        return
    for field in dataclasses.fields(write):
        if field.name in _NOT_VALUES:
            continue
        value = getattr(write, field.name)
        if field.name == "values":
            yield from _leaves([v for _, v in value])
        else:
            yield from _leaves(value)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _json_leaves(body: bytes) -> Iterator[Any]:
    if not body:
        return
    try:
        found = json.loads(body)
    except ValueError:
        return
    yield from _leaves(found)
