"""Process-level preparation for serving (worker processes, multiprocess metrics)."""

from __future__ import annotations

__all__ = ["prepare_serving"]


def prepare_serving(app_path: str, *, workers: int) -> None:
    """Check the app imports and builds before uvicorn starts workers."""
    from gateway.cli import build_app

    build_app(app_path)
