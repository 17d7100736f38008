"""Flags of paired routes, the table every request reads, and the pure per-request decision.

table = ModeTable(["GET /users/{user_id}"])
table.set("GET /users/{user_id}", Flag(Mode.CANARY, 10))
choose(table.get("GET /users/{user_id}"), request_key="user-42", salt="GET /users/{user_id}")
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from gateway.exceptions import FlagError, UnknownModeError, UnknownRouteError
from gateway.modes import RESERVED_MODES, VALID_MODES, Implementation, Mode, format_mode, mode_names

__all__ = [
    "BUCKETS",
    "Flag",
    "ModeTable",
    "bucket",
    "check_change",
    "choose",
    "parse_flag",
    "shadowed",
]

BUCKETS = 10_000  # canary resolution: 0.01 %


@dataclass(frozen=True, slots=True)
class Flag:
    """A route's mode; `percent` is the share served by async in canary mode (0-100), and
    the share of requests also run on async (and compared) in shadow mode."""

    mode: Mode = Mode.LEGACY
    percent: float = 0.0

    def describe(self) -> str:
        return format_mode(self.mode.value, self.percent)


LEGACY = Flag(Mode.LEGACY)


def parse_flag(mode: str, percent: float | None = None) -> Flag:
    """Validate a mode name and percentage; raise UnknownModeError or FlagError naming the field.

    >>> parse_flag("canary", 10)
    Flag(mode=<Mode.CANARY: 'canary'>, percent=10.0)
    """
    if mode in RESERVED_MODES:
        raise UnknownModeError(
            f"Mode {mode!r} is reserved for a later release; expected one of "
            f"{', '.join(VALID_MODES)}.",
            field="mode",
        )
    try:
        parsed = Mode(mode)
    except ValueError:
        raise UnknownModeError(
            f"Unknown mode {mode!r}; expected one of {', '.join(VALID_MODES)}.", field="mode"
        ) from None
    if percent is not None and (isinstance(percent, bool) or not isinstance(percent, int | float)):
        raise FlagError(f"percent={percent!r} is not a number; expected 0 to 100.", field="percent")
    spec = parsed.spec
    if not parsed.takes_percent:
        implied = spec.default_percent or 0.0
        if percent is not None and percent != implied:
            with_percent = mode_names((m.value for m in Mode if m.takes_percent), "or")
            raise FlagError(
                f"percent={percent!r} does not go with mode {mode!r} (it means {implied:g}); "
                f"omit percent, or use mode {with_percent} with percent from 0 to 100.",
                field="percent",
            )
        return Flag(parsed, implied)
    if percent is None:
        if spec.default_percent is not None:
            return Flag(parsed, spec.default_percent)
        raise FlagError(
            f"Mode {mode!r} needs percent ({spec.percent_means}), a number from 0 to 100.",
            field="percent",
        )
    if not 0 <= percent <= 100:
        raise FlagError(f"percent={percent!r} is out of range; expected 0 to 100.", field="percent")
    return Flag(parsed, float(percent))


def check_change(
    key: str,
    mode: str,
    percent: float | None,
    routes: Mapping[str, Sequence[Implementation]],
) -> Flag:
    """Validate one flip against the routes' implementations; return the Flag to store.

    Raises UnknownRouteError (with the closest keys) for an unknown key, and FlagError naming
    the field for a bad mode or percentage or a route that has only one implementation.

    >>> check_change("GET /users", "async", None, {"GET /users": [Implementation.LEGACY]})
    Traceback (most recent call last):
    ...
    gateway.exceptions.FlagError: Route 'GET /users' has only a legacy implementation, ...
    """
    implementations = routes.get(key)
    if implementations is None:
        raise UnknownRouteError(key, routes)
    flag = parse_flag(mode, percent)
    if len(implementations) == 1:
        only = implementations[0].value
        other, article = ("async", "a") if only == "legacy" else ("legacy", "an")
        raise FlagError(
            f"Route {key!r} has only {article} {only} implementation, so it always serves "
            f"{only} and has no mode to set; modes apply to routes with both a legacy and an "
            f"async implementation. Add its {other} implementation first.",
            field="route_key",
        )
    return flag


def bucket(salt: str, request_key: str) -> int:
    """A stable bucket in [0, BUCKETS) for a request key, the same on every process and host."""
    digest = hashlib.blake2b(f"{salt}\x00{request_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def choose(
    flag: Flag,
    *,
    salt: str,
    request_key: str | None,
    draw: Callable[[], float] = random.random,
) -> Implementation:
    """Decide which implementation serves one request. Pure: no I/O.

    In canary mode a request key maps to a sticky bucket; buckets below percent go to async,
    so raising the percentage only ever adds buckets. Without a key, a random draw decides.
    """
    if flag.mode is Mode.LEGACY or flag.mode is Mode.SHADOW:
        return Implementation.LEGACY  # shadow: the client is always served by legacy
    if flag.mode is Mode.ASYNC:
        return Implementation.ASYNC
    threshold = flag.percent * (BUCKETS / 100)
    position = bucket(salt, request_key) if request_key is not None else draw() * BUCKETS
    return Implementation.ASYNC if position < threshold else Implementation.LEGACY


class ModeTable:
    """The in-memory modes every request reads; writers replace whole entries (atomic in CPython).

    Only paired routes have an entry. A store (see gateway.flags.store) keeps this table in step
    with the database; tests and embedders may call `set` directly. `get` is a plain dict read
    with no lock, from any thread; the follower serializes its own writers (FlagFollower.apply).
    """

    def __init__(self, keys: Iterable[str] = (), default: Flag = LEGACY) -> None:
        self.default = default
        self._flags: dict[str, Flag] = dict.fromkeys(keys, default)
        self._listeners: list[Callable[[str, Flag, Flag], None]] = []

    def __contains__(self, key: object) -> bool:
        return key in self._flags

    def __iter__(self) -> Iterator[str]:
        return iter(self._flags)

    def __len__(self) -> int:
        return len(self._flags)

    def get(self, key: str) -> Flag:
        return self._flags[key]

    def snapshot(self) -> dict[str, Flag]:
        return dict(self._flags)

    def require(self, key: str) -> None:
        """Raise UnknownRouteError (with the closest keys) unless `key` is a paired route."""
        if key not in self._flags:
            raise UnknownRouteError(key, self._flags)

    def set(self, key: str, flag: Flag) -> Flag:
        """Set one route's flag; return the previous one. Raises UnknownRouteError."""
        self.require(key)
        previous = self._flags[key]
        self._flags[key] = flag
        if previous != flag:
            for listener in self._listeners:
                listener(key, previous, flag)
        return previous

    def set_mode(self, key: str, mode: str, percent: float | None = None) -> Flag:
        """Validate and set a mode by name: `table.set_mode("GET /users", "canary", 10)`."""
        self.require(key)
        return self.set(key, parse_flag(mode, percent))

    def replace_all(self, flags: Mapping[str, Flag]) -> None:
        """Apply a full resync: known keys take the given flag, the rest fall back to default."""
        for key in self._flags:
            self.set(key, flags.get(key, self.default))

    def on_change(self, listener: Callable[[str, Flag, Flag], None]) -> None:
        """Call `listener(key, old, new)` after every change, on the thread that made it.

        That is not always the event loop's: the flag follower applies notifications from its
        listener thread, and the admin listener's flips from its own thread. A listener must
        be thread-safe and quick; one that touches loop-owned state hands itself over with
        `loop.call_soon_threadsafe` (as gateway.canary.judge's tally does).
        """
        self._listeners.append(listener)


def shadowed(
    flag: Flag,
    *,
    salt: str,
    request_key: str | None,
    draw: Callable[[], float] = random.random,
) -> bool:
    """Whether a request of a route in shadow mode also runs on async. Pure: no I/O.

    Same buckets as canary: with a request key, a key is shadowed on every worker or never.
    """
    if flag.mode is not Mode.SHADOW or flag.percent <= 0:
        return False
    if flag.percent >= 100:
        return True
    position = bucket(salt, request_key) if request_key is not None else draw() * BUCKETS
    return position < flag.percent * (BUCKETS / 100)
