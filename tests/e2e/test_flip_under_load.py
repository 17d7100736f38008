"""Flipping a route back and forth while 200 clients call it fails no request."""

from __future__ import annotations

import anyio
import pytest

from example import SEED_USERS, create_gateway, prepare_database
from gateway import Settings
from tests.conftest import started_client

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

CLIENTS = 200
REQUESTS_PER_CLIENT = 5
KEY = "GET /users/{user_id}"


async def test_flips_under_200_concurrent_clients_fail_nothing(postgres_url):
    settings = Settings.from_environ(
        {}, database_url=postgres_url, pool_size=20, max_overflow=20, threadpool_size=40
    )
    gateway = create_gateway(settings)
    gateway.on_startup(lambda g: prepare_database(g, seed_count=len(SEED_USERS)))
    gateway.build()
    served: dict[str, int] = {"legacy_routes.users": 0, "async_routes.users": 0}
    inner = gateway.app

    async def recording(scope, receive, send):
        await inner(scope, receive, send)
        if scope["type"] == "http":
            served[scope["endpoint"].__module__] += 1

    results: list[tuple[int, object]] = []
    async for client in started_client(recording):
        done = anyio.Event()

        async def call(user: int) -> None:
            for _ in range(REQUESTS_PER_CLIENT):
                user_id = user % len(SEED_USERS) + 1
                response = await client.get(f"/users/{user_id}")
                results.append((response.status_code, response.json()["id"] == user_id))

        async def flip() -> None:
            modes = ["async", "legacy"]
            flips = 0
            while not done.is_set():
                gateway.modes.set_mode(KEY, modes[flips % 2])
                flips += 1
                await anyio.sleep(0)
            assert flips > 2

        async with anyio.create_task_group() as flipper:
            flipper.start_soon(flip)
            async with anyio.create_task_group() as clients:
                for user in range(CLIENTS):
                    clients.start_soon(call, user)
            done.set()
    assert len(results) == CLIENTS * REQUESTS_PER_CLIENT
    assert all(result == (200, True) for result in results)
    assert sum(served.values()) == len(results)
    assert served["legacy_routes.users"] > 0
    assert served["async_routes.users"] > 0
