"""`gateway report` (owned by the metrics work; placeholder)."""

from __future__ import annotations

__all__ = ["report_command"]


def report_command() -> None:
    """Print the migration ranking of a running gateway."""
    raise SystemExit("gateway report: not built yet")
