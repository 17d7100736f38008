"""The one way sync work reaches a worker thread, and the threadpool's size.

Everything sync the gateway runs for a request goes through `run_sync`, so queue wait and
thread time are measured in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread

__all__ = ["LegacyThreads", "ThreadTiming", "run_sync", "set_threadpool_size", "threadpool_stats"]

T = TypeVar("T")


@dataclass(slots=True)
class ThreadTiming:
    """Where a piece of sync work spent its time, in seconds."""

    queued: float = 0.0  # from submission until a worker thread started it
    wall: float = 0.0  # in the worker thread
    cpu: float = 0.0  # thread CPU time in the worker thread

    @property
    def blocked(self) -> float:
        """Wall time in the thread not spent on its CPU: I/O, locks, sleeps."""
        return max(self.wall - self.cpu, 0.0)


class LegacyThreads:
    """How many legacy requests run in worker threads at once: a limiter of their own.

    threads = LegacyThreads(80)    # Gateway: GATEWAY_LEGACY_CONCURRENCY, else pool + overflow
    threads.start()                # on the event loop (anyio limiters belong to one)
    await run_sync(work, threads=threads)

    A legacy request on the fast path holds one thread for all its work, so no more of them
    can make progress at once than the database pool has connections; the rest wait here,
    on the event loop, instead of as threads queued on the pool (where every connection
    returned wakes a thread and 1000 threads contend for the GIL).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"legacy concurrency {size}: expected at least 1")
        self.size = size
        self.limiter: anyio.CapacityLimiter | None = None

    def start(self) -> None:
        self.limiter = anyio.CapacityLimiter(self.size)


async def run_sync(
    func: Callable[..., T], *args: Any, threads: LegacyThreads | None = None
) -> tuple[T, ThreadTiming]:
    """Run `func(*args)` in a worker thread and say where its time went: under `threads`'
    limiter when given (and started), else anyio's default one (FastAPI's threadpool).

    result, timing = await run_sync(session_work, user_id)
    """
    timing = ThreadTiming()
    submitted = time.perf_counter()

    def timed() -> T:
        started = time.perf_counter()
        cpu_started = time.thread_time()
        timing.queued = started - submitted
        try:
            return func(*args)
        finally:
            timing.cpu = time.thread_time() - cpu_started
            timing.wall = time.perf_counter() - started

    limiter = threads.limiter if threads is not None else None
    result = await anyio.to_thread.run_sync(timed, limiter=limiter)
    return result, timing


def set_threadpool_size(size: int) -> None:
    """Set anyio's default thread limiter (what FastAPI's `def` routes run under)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = size


def threadpool_stats(threads: LegacyThreads | None = None) -> dict[str, Any]:
    """Size, busy threads and waiting tasks of the default limiter, plus the legacy
    requests' own when given (call on the loop)."""
    limiters = [anyio.to_thread.current_default_thread_limiter()]
    if threads is not None and threads.limiter is not None:
        limiters.append(threads.limiter)
    found = {"size": 0, "busy": 0, "waiting": 0}
    for limiter in limiters:
        stats = limiter.statistics()
        found["size"] += int(stats.total_tokens)
        found["busy"] += stats.borrowed_tokens
        found["waiting"] += stats.tasks_waiting
    return found
