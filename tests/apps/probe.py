"""A tiny gateway whose responses say which implementation and which worker served them.

Used by the flag, admin and CLI tests:
    gateway serve tests.apps.probe:create_probe_app --workers 4
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from gateway import Gateway, Settings

__all__ = [
    "ADMIN_TOKEN",
    "PROBE",
    "create_probe_app",
    "create_probe_gateway",
    "implementations_by_pid",
    "probe_settings",
]

ADMIN_TOKEN = "ops-token-0123456789abcdef"
OTHER_TOKEN = "bot-token-abcdef0123456789"
PROBE = "GET /probe"
OTHER = "GET /other/{item_id}"


def probe_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for a probe gateway: both admin tokens, small pools, a fast flag poll."""
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_tokens": f"ops={ADMIN_TOKEN},bot={OTHER_TOKEN}",
        "pool_size": 2,
        "max_overflow": 2,
        "flags_poll_interval": 0.2,
    }
    values.update(overrides)
    return Settings.from_environ({}, **values)


def create_probe_gateway(settings: Settings | None = None, **parts: Any) -> Gateway:
    """Paired GET /probe and GET /other/{item_id}, one route on each side only; not built.

    `parts` go to Gateway (e.g. store=MemoryFlagStore()).
    """
    legacy = APIRouter()
    migrated = APIRouter()

    @legacy.get("/probe")
    def probe() -> dict[str, object]:
        return {"implementation": "legacy", "pid": os.getpid()}

    @migrated.get("/probe")
    async def probe_async() -> dict[str, object]:
        return {"implementation": "async", "pid": os.getpid()}

    @legacy.get("/other/{item_id}")
    def other(item_id: int) -> dict[str, object]:
        return {"implementation": "legacy", "item": item_id}

    @migrated.get("/other/{item_id}")
    async def other_async(item_id: int) -> dict[str, object]:
        return {"implementation": "async", "item": item_id}

    @legacy.get("/legacy-only")
    def legacy_only() -> dict[str, str]:
        return {"implementation": "legacy"}

    @migrated.get("/async-only")
    async def async_only() -> dict[str, str]:
        return {"implementation": "async"}

    gateway = Gateway(settings, **parts)
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    return gateway


def create_probe_app() -> FastAPI:
    """The probe app from GATEWAY_* variables (an app factory for `gateway serve`)."""
    return create_probe_gateway().build()


async def implementations_by_pid(
    url: str,
    *,
    until: Callable[[dict[int, str]], bool],
    limit: float = 120.0,
    headers: dict[str, str] | None = None,
) -> dict[int, str]:
    """Probe with fresh connections until `until(seen)` holds; the limit only stops a hang.

    Every probe must answer 200; returns the last implementation seen per worker pid.
    """
    seen: dict[int, str] = {}
    deadline = time.monotonic() + limit
    while not until(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"not every worker answered as expected: {seen}")
        async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            probes = (client.get(f"{url}/probe", headers=headers) for _ in range(16))
            responses = await asyncio.gather(*probes)
        for response in responses:
            if response.status_code != 200:
                raise AssertionError(f"probe failed: {response.status_code} {response.text}")
            body = response.json()
            seen[body["pid"]] = body["implementation"]
    return seen
