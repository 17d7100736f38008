"""Refused admin tokens, counted per client: after too many wrong ones, the client waits.

    throttle = AdminThrottle(limit=20, window=60.0)
    wait = throttle.blocked_for(client)        # before a token is checked: None, or seconds
    opening = throttle.refused(client, wrong_token=True)    # after a 401: log it if not None

Each client (a peer address) gets a fixed window that opens at its first refusal. Within it,
`limit` wrong tokens are checked and refused one by one; after them the client's admin
requests are answered 429 before any token is looked at, until the window closes. A request
without a token is counted for the log but never blocks: it guesses nothing, and a page or
a poller without a token must not lock its operator out.

One log line per window per client: `refused` returns an `Opening` only for the refusal that
opens a window, carrying the tally of the client's window before (when it closed less than
one window ago), so a steady attack writes one line a window, each with the last one's count.

Pure apart from the clock (`now=`): no logging and no I/O. The admin API runs on the app's
loop and, with GATEWAY_ADMIN_PORT, on a loop of its own thread, so counting takes a lock;
`blocked_for` on a client that is not blocked takes none: one dict lookup.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AdminThrottle", "Opening", "Tally"]


@dataclass(frozen=True)
class Tally:
    """What one client did in one window: `Tally(wrong=20, missing=0, throttled=789)`."""

    wrong: int
    missing: int
    throttled: int

    def describe(self) -> str:
        """`20 wrong tokens, 0 without a token, 789 answered 429`."""
        return (
            f"{self.wrong} wrong tokens, {self.missing} without a token, "
            f"{self.throttled} answered 429"
        )


@dataclass(frozen=True)
class Opening:
    """The refusal that opened a window for `client`: the one to log, with `summary()`."""

    client: str
    window: float
    previous: Tally | None

    def summary(self) -> str:
        """What the rest of the window does with this client's refusals, and its last tally."""
        text = (
            f"further refusals from {self.client} for {self.window:g} s are counted, "
            "not logged one by one"
        )
        if self.previous is not None:
            text += f"; its previous {self.window:g} s: {self.previous.describe()}"
        return text


@dataclass(slots=True)
class _Window:
    start: float
    wrong: int = 0
    missing: int = 0
    throttled: int = 0

    def tally(self) -> Tally:
        return Tally(self.wrong, self.missing, self.throttled)


class AdminThrottle:
    """Fixed windows of refused admin tokens by client, at most `max_clients` of them.

    throttle = AdminThrottle(limit=20, window=60.0, now=clock)   # `now`: seconds, monotonic
    """

    def __init__(
        self,
        limit: int = 20,
        window: float = 60.0,
        *,
        max_clients: int = 10_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit={limit!r}: expected at least 1 wrong token per window")
        if not window > 0:
            raise ValueError(f"window={window!r}: expected a number of seconds above 0")
        if max_clients < 1:
            raise ValueError(f"max_clients={max_clients!r}: expected at least 1")
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._now = now
        # Ordered by the start of each window (a reopened one moves to the end), so the
        # oldest are first: eviction looks at the front only.
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tracked(self) -> int:
        """How many clients have a window (at most `max_clients`)."""
        return len(self._windows)

    def blocked_for(self, client: str) -> int | None:
        """Seconds `client` must still wait (>= 1, counted as one more 429), or None."""
        window = self._windows.get(client)
        if window is None or window.wrong < self.limit:
            return None
        left = window.start + self.window - self._now()
        if left <= 0:
            return None
        with self._lock:
            window.throttled += 1
        return max(1, math.ceil(left))

    def refused(self, client: str, *, wrong_token: bool) -> Opening | None:
        """Count a 401 for `client` (a wrong token, else a missing one).

        Returns an Opening when this refusal opens the client's window (log one line), else
        None (log nothing).
        """
        now = self._now()
        with self._lock:
            self._evict(now)
            window = self._windows.get(client)
            opening = None
            if window is None or now - window.start >= self.window:
                previous = window.tally() if window is not None else None
                window = self._open(client, now)
                opening = Opening(client, self.window, previous)
            if wrong_token:
                window.wrong += 1
            else:
                window.missing += 1
            return opening

    def _open(self, client: str, now: float) -> _Window:
        self._windows.pop(client, None)
        if len(self._windows) >= self.max_clients:
            self._windows.popitem(last=False)
        window = self._windows[client] = _Window(now)
        return window

    def _evict(self, now: float) -> None:
        # A closed window is kept one window longer, for the tally its client's next line
        # reports; after that it is dropped.
        while self._windows:
            oldest = next(iter(self._windows.values()))
            if now - oldest.start < 2 * self.window:
                return
            self._windows.popitem(last=False)
