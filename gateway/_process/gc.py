"""The garbage collector policy a gateway applies once startup is done, undone at shutdown.

    policy = GcPolicy(freeze=True, thresholds=(10000, 10, 10))
    policy.apply()      # end of startup
    policy.restore()    # shutdown

Freezing: the app, its routes, engines, models and metrics live as long as the process;
left in the oldest generation, every full collection walks all of them again, and under many
concurrent requests full collections are frequent. `gc.freeze()` moves every object alive
after startup to the permanent generation; objects created later are collected as before.
Thresholds (opt-in) make collections rarer for the whole process.
"""

from __future__ import annotations

import gc

__all__ = ["GcPolicy"]


class GcPolicy:
    """Apply at the end of startup, restore at shutdown; a second apply is harmless."""

    def __init__(self, *, freeze: bool, thresholds: tuple[int, ...] | None = None) -> None:
        self.freeze = freeze
        self.thresholds = thresholds
        self._saved: tuple[int, ...] | None = None
        self._frozen = False

    def apply(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
        if self.freeze and not self._frozen:
            gc.freeze()
            self._frozen = True
        if self.thresholds:
            gc.set_threshold(*self.thresholds)

    def restore(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
