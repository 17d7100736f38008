"""Event loop lag: how late a periodic timer fires, sampled by a task on the loop.

sampler = Sampler(histogram, interval=0.25)
sampler.also(refresh_gauges)   # run on the loop each tick
sampler.start(); ...; await sampler.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Sampler"]

log = logging.getLogger("gateway.metrics")


class Sampler:
    """Sleeps `interval` seconds in a loop and observes how much later than that it woke."""

    def __init__(self, histogram: Any, interval: float) -> None:
        self.histogram = histogram
        self.interval = interval
        self.last_lag = 0.0
        self._tasks: list[Callable[[], None]] = []
        self._running: asyncio.Task[None] | None = None

    def also(self, task: Callable[[], None]) -> None:
        """Run `task()` on the loop after every tick (cheap gauge refreshes)."""
        self._tasks.append(task)

    def start(self) -> None:
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._running = self._running, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.last_lag = max(time.perf_counter() - before - self.interval, 0.0)
            self.histogram.observe(self.last_lag)
            for task in self._tasks:
                try:
                    task()
                except Exception:  # a broken gauge must not stop the lag sampler
                    log.exception("metrics sampler task %r failed", task)
