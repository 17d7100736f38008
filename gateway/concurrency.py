"""The one way sync work reaches a worker thread, and the threadpool's size.

Everything sync the gateway runs for a request goes through `run_sync`, so queue wait and
thread time are measured in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread

__all__ = ["ThreadTiming", "run_sync", "set_threadpool_size", "threadpool_stats"]

P = ParamSpec("P")
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


async def run_sync(
    func: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> tuple[T, ThreadTiming]:
    """Run `func` in anyio's default threadpool and say where its time went.

    result, timing = await run_sync(session_work, user_id)
    """
    timing = ThreadTiming()
    submitted = time.perf_counter()

    def timed() -> T:
        started = time.perf_counter()
        cpu_started = time.thread_time()
        timing.queued = started - submitted
        try:
            return func(*args, **kwargs)
        finally:
            timing.cpu = time.thread_time() - cpu_started
            timing.wall = time.perf_counter() - started

    result = await anyio.to_thread.run_sync(timed)
    return result, timing


def set_threadpool_size(size: int) -> None:
    """Set anyio's default thread limiter (what FastAPI's `def` routes run under)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = size


def threadpool_stats() -> dict[str, Any]:
    """Size, busy threads and waiting tasks of the default limiter (call on the loop)."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    stats = limiter.statistics()
    return {
        "size": int(stats.total_tokens),
        "busy": stats.borrowed_tokens,
        "waiting": stats.tasks_waiting,
    }
