"""Per-route metrics (owned by the metrics work; placeholder keeps the app composable)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["install_metrics"]


def install_metrics(gateway: Gateway, app: FastAPI) -> None:
    """Wire metrics into a built app (middleware, /metrics, engine events)."""
