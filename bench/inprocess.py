"""Driving an ASGI app in-process (no sockets, no client), for the CPU-cost harnesses.

    statuses = await lookups(app, 4000, concurrency=200)   # {status: count} of non-200s
    clock = CollectorClock(); gc.callbacks.append(clock)    # time in collections

bench.layer_cost, bench.gc_cost and bench.metrics_cost build their requests here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["CollectorClock", "cpu_per_request", "http_scope", "lookups"]

BODY = {"type": "http.request", "body": b"", "more_body": False}


def http_scope(path: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    """The scope of a plain `GET path` (with `headers` besides host) as uvicorn passes it."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 1), "server": ("bench", 80), "state": {},
    }  # fmt: skip


async def receive() -> dict[str, Any]:
    return BODY


async def _expect_200(message: dict[str, Any]) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise RuntimeError(f"expected 200, got {message['status']}")


async def cpu_per_request(
    app: Any, requests: int, scope: Callable[[int], dict[str, Any]], warm_up: int = 200
) -> float:
    """CPU seconds per request over `requests` sequential requests `scope(i)`, after
    `warm_up` of them; each must answer 200."""
    for i in range(warm_up):
        await app(scope(i), receive, _expect_200)
    started = time.process_time()
    for i in range(requests):
        await app(scope(i), receive, _expect_200)
    return (time.process_time() - started) / requests


async def lookups(app: Any, requests: int, concurrency: int, users: int = 10_000) -> dict[int, int]:
    """`requests` GET /users/{random id} by `concurrency` tasks; the non-200 answers by
    status."""
    failed: dict[int, int] = {}
    left = requests

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            failed[message["status"]] = failed.get(message["status"], 0) + 1

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await app(http_scope(f"/users/{random.randint(1, users)}"), receive, send)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


class CollectorClock:
    """Wall time spent in collections and the oldest generation's count, from gc.callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        if info["generation"] == 2:
            self.full += 1
