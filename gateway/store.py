"""Persistent flags and their propagation (owned by the flags work; placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["attach_store"]


def attach_store(gateway: Gateway) -> None:
    """Register startup/shutdown hooks that load, persist and follow flags."""
