"""The admin JSON API under /_gateway (owned by the flags work; placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["admin_router"]


def admin_router(gateway: Gateway) -> APIRouter:
    """Routes mounted under settings.admin_prefix."""
    return APIRouter()
