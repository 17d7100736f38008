"""How busy the machine's cores are: runnable threads per core, from /proc/loadavg.

    load = CpuLoad()
    load.probe()          # each sampler tick
    load.factor           # 3.0 when the cores are shared three ways; 1.0 when idle or unknown

The metrics use the factor to estimate how much of a worker thread's off-CPU time was a
wait for a core (which migrating to async does not free).
"""

from __future__ import annotations

import os

__all__ = ["CpuLoad"]


class CpuLoad:
    """A decaying average of runnable threads per core, at least 1."""

    def __init__(self, path: str = "/proc/loadavg") -> None:
        self.path = path
        self.factor = 1.0
        self._cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self._probed = False

    def probe(self) -> float:
        """Fold the runnable threads per core read now into `factor`; return the factor."""
        try:
            with open(self.path, "rb") as loadavg:
                runnable = int(loadavg.read().split()[3].split(b"/")[0])
        except (OSError, ValueError, IndexError):
            return self.factor  # not Linux: leave the factor at 1
        now = max(runnable / self._cores, 1.0)
        # Decay so the factor follows the last few ticks.
        self.factor = 0.8 * self.factor + 0.2 * now if self._probed else now
        self._probed = True
        return self.factor
