"""Liveness and readiness (owned by the deployment work; placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["health_router"]


def health_router(gateway: Gateway) -> APIRouter:
    """Routes mounted under settings.admin_prefix (GET /live, GET /ready)."""
    return APIRouter()
