"""The migration report (owned by the metrics work; placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["report_router"]


def report_router(gateway: Gateway) -> APIRouter:
    """Routes mounted under settings.admin_prefix (GET /report)."""
    return APIRouter()
