"""Comparing what legacy and async did for one request: the answer, the writes, the work.

Pure: values in, differences out, no I/O; gateway.shadow drives it.

    json_paths({"id": 1, "name": "ada"}, {"id": 1, "name": "Ada"})   # ["$.name"]
    compare(legacy, candidate, noise=Noise())                         # a Comparison

JSON bodies are compared structurally: a difference is reported by its path ("$.items[2].
email", "$.items (length 3 != 5)"). Generated keys are matched, not compared: the rolled-back
candidate's INSERT took id 7 while legacy's took id 8, so every 7 in the candidate's answer
and writes stands for legacy's 8. Noise (paths that differ between two runs of the same
implementation on the same request) is learned by gateway.shadow and ignored here, and a
list whose order is noise is compared as a multiset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMPARED_HEADERS",
    "SQL",
    "Comparison",
    "Noise",
    "Outcome",
    "Write",
    "compare",
    "json_paths",
    "unordered_paths",
]

COMPARED_HEADERS = ("content-type", "location")
SQL = "sql"  # the op of a write sent as SQL text: compared by statement and parameters
_MISSING = object()


@dataclass(frozen=True)
class Write:
    """One committed row change: `insert`, `update` or `delete` on a table.

    `values` are the columns written (insert, update), `where` the values that chose the
    rows (update, delete; their parameter names differ between Query and select() code, so
    only the values count), `rows` how many rows the statement changed.
    """

    table: str
    op: str
    values: tuple[tuple[str, Any], ...] = ()
    where: tuple[Any, ...] = ()
    rows: int = 1

    def describe(self) -> str:
        if self.op == SQL:  # SQL text: the statement stands in `table`
            return f"SQL {self.table!r} with {list(self.where)!r}"
        parts = [f"{self.op} {self.table}"]
        if self.values:
            parts.append("set " + ", ".join(f"{k}={v!r}" for k, v in self.values))
        if self.op != "insert":
            parts.append(f"where {list(self.where)!r}" if self.where else "with no WHERE")
            parts.append(f"({self.rows} rows)")
        return " ".join(parts)


@dataclass
class Outcome:
    """What one implementation did for the request."""

    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    writes: list[Write] = field(default_factory=list)  # committed only
    uncommitted: int = 0  # statements written but never committed
    generated: list[Any] = field(default_factory=list)  # keys its INSERTs generated, in order
    statements: int = 0
    rows_fetched: int | None = None  # None when the driver does not say
    unlimited_selects: int = 0  # SELECTs without LIMIT (a `.first()` that lost LIMIT 1)
    error: str | None = None
    escapes: list[str] = field(default_factory=list)  # what isolation refused it


@dataclass
class Noise:
    """Paths of one route that differ between runs of one implementation: not compared."""

    paths: set[str] = field(default_factory=set)
    unordered: set[str] = field(default_factory=set)  # lists compared as multisets

    def learn(self, one: Any, other: Any) -> bool:
        """Add what differs between two runs of the same request; True if anything new."""
        before = (len(self.paths), len(self.unordered))
        self.unordered |= unordered_paths(one, other)
        # Kept per field, not per position: "$.items[].created_at" covers every item.
        self.paths |= {_generic(p) for p in json_paths(one, other, unordered=self.unordered)}
        return (len(self.paths), len(self.unordered)) != before


@dataclass(frozen=True)
class Comparison:
    """The verdict on one shadowed request."""

    same: bool
    status: tuple[int, int] | None = None  # (legacy, async) when they differ
    fields: list[str] = field(default_factory=list)  # body paths and header names
    writes: list[str] = field(default_factory=list)  # "legacy only: ..." / "async only: ..."
    work: list[str] = field(default_factory=list)  # statements, rows fetched, lost LIMITs
    uncompared: list[str] = field(default_factory=list)  # writes in forms that cannot match

    @property
    def outcome(self) -> str:
        """ "same", "different", or "uncompared" (only writes whose forms differ differ)."""
        if self.same:
            return "same"
        if self.status is None and not (self.fields or self.writes or self.work):
            return "uncompared"
        return "different"

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"fields": self.fields, "writes": self.writes, "work": self.work}
        if self.uncompared:
            found["uncompared"] = self.uncompared
        if self.status is not None:
            found["status"] = {"legacy": self.status[0], "async": self.status[1]}
        return found


def compare(legacy: Outcome, candidate: Outcome, noise: Noise | None = None) -> Comparison:
    """Compare status, body, the headers that matter, the committed writes and the work."""
    noise = noise or Noise()
    keys = dict(zip(candidate.generated, legacy.generated, strict=False))
    status = (legacy.status, candidate.status) if legacy.status != candidate.status else None
    fields = [
        f"header {name}"
        for name in COMPARED_HEADERS
        if legacy.headers.get(name) != candidate.headers.get(name)
    ]
    fields += _body_paths(legacy, candidate, keys, noise)
    writes = _write_differences(legacy, candidate, keys)
    uncompared = _uncomparable(writes)
    if uncompared:
        writes = []
    work = _work_differences(legacy, candidate)
    same = status is None and not fields and not writes and not work and not uncompared
    return Comparison(same, status, fields, writes, work, uncompared)


def json_paths(
    one: Any, other: Any, *, path: str = "$", unordered: Iterable[str] = ()
) -> list[str]:
    """The paths at which two JSON values differ (leaves, or a list whose length differs)."""
    unordered = set(unordered)
    found: list[str] = []
    _walk(one, other, path, unordered, found)
    return found


def unordered_paths(one: Any, other: Any, path: str = "$") -> set[str]:
    """Lists that hold the same items in another order (recursively)."""
    found: set[str] = set()
    if isinstance(one, dict) and isinstance(other, dict):
        for key in one.keys() & other.keys():
            found |= unordered_paths(one[key], other[key], f"{path}.{key}")
    elif isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        if one != other and _multiset(one) == _multiset(other):
            found.add(path)
        else:
            for index, (a, b) in enumerate(zip(one, other, strict=True)):
                found |= unordered_paths(a, b, f"{path}[{index}]")
    return found


def _walk(one: Any, other: Any, path: str, unordered: set[str], found: list[str]) -> None:
    generic = _generic(path)
    if generic in unordered and isinstance(one, list) and isinstance(other, list):
        if _multiset(one) != _multiset(other):
            found.append(path)
        return
    if isinstance(one, dict) and isinstance(other, dict):
        for key in sorted(one.keys() | other.keys(), key=str):
            a, b = one.get(key, _MISSING), other.get(key, _MISSING)
            if a is _MISSING or b is _MISSING:
                found.append(f"{path}.{key}")
            else:
                _walk(a, b, f"{path}.{key}", unordered, found)
    elif isinstance(one, list) and isinstance(other, list):
        if len(one) != len(other):
            found.append(f"{path} (length {len(one)} != {len(other)})")
            return
        for index, (a, b) in enumerate(zip(one, other, strict=True)):
            _walk(a, b, f"{path}[{index}]", unordered, found)
    elif one != other or type(one) is not type(other):
        found.append(path)


def _generic(path: str) -> str:
    """ "$.items[3].id" -> "$.items[].id": noise is learned per field, not per position."""
    out, depth = [], 0
    for char in path:
        if char == "[":
            depth += 1
            out.append("[]")
        elif char == "]":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _multiset(items: Sequence[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True, default=str) for item in items)


def _body_paths(
    legacy: Outcome, candidate: Outcome, keys: Mapping[Any, Any], noise: Noise
) -> list[str]:
    if legacy.body == candidate.body:
        return []
    one, other = _json(legacy.body), _json(candidate.body)
    if one is _MISSING or other is _MISSING:
        return ["body (not JSON: the bytes differ)"]
    other = _rekey(other, keys)
    paths = json_paths(one, other, unordered=noise.unordered)
    return [p for p in paths if _generic(p) not in noise.paths and p not in noise.paths]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return _MISSING


def _rekey(value: Any, keys: Mapping[Any, Any]) -> Any:
    """The candidate's generated keys replaced by legacy's, wherever they appear."""
    if not keys:
        return value
    if isinstance(value, dict):
        return {k: _rekey(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_rekey(v, keys) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value in keys:
        return keys[value]
    return value


def _write_differences(legacy: Outcome, candidate: Outcome, keys: Mapping[Any, Any]) -> list[str]:
    ours = [_rekey_write(w, keys) for w in candidate.writes]
    theirs = list(legacy.writes)
    found = []
    for write in theirs:
        if write in ours:
            ours.remove(write)
        else:
            found.append(f"legacy only: {write.describe()}")
    found += [f"async only: {write.describe()}" for write in ours]
    if candidate.uncommitted and not candidate.writes and legacy.writes:
        found.append(
            f"async wrote {candidate.uncommitted} statement(s) but never committed (legacy did)"
        )
    return found


def _uncomparable(differences: list[str]) -> list[str]:
    """Write differences where one side wrote SQL text and the other did not: the two
    forms cannot be matched, so they are neither the same nor proven different."""
    sides = {"legacy": [False, False], "async": [False, False]}  # [sql, other]
    for line in differences:
        side, _, write = line.partition(" only: ")
        if side in sides:
            sides[side][0 if write.startswith("SQL ") else 1] = True
    if not any(sql for sql, _ in sides.values()):
        return []
    legacy_sql, legacy_other = sides["legacy"]
    async_sql, async_other = sides["async"]
    if (legacy_sql and async_sql) and not (legacy_other or async_other):
        return []  # SQL text on both sides that differs: a difference
    return [f"{line} (written as SQL text on one side only)" for line in differences]


def _rekey_write(write: Write, keys: Mapping[Any, Any]) -> Write:
    if not keys:
        return write
    values = tuple((k, _rekey(v, keys)) for k, v in write.values)
    return Write(write.table, write.op, values, tuple(_rekey(list(write.where), keys)), write.rows)


def _work_differences(legacy: Outcome, candidate: Outcome) -> list[str]:
    found = []
    if candidate.unlimited_selects > legacy.unlimited_selects:
        found.append(
            f"async ran {candidate.unlimited_selects} SELECT(s) without LIMIT, legacy "
            f"{legacy.unlimited_selects} (a .first() that lost its LIMIT 1?)"
        )
    fetched = (legacy.rows_fetched, candidate.rows_fetched)
    if None not in fetched and fetched[1] > fetched[0]:  # type: ignore[operator]
        found.append(f"async fetched {fetched[1]} rows, legacy {fetched[0]}")
    return found
