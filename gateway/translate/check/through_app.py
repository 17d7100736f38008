"""One request of `gateway translate --check` sent through an app, as TestClient sends it
(ASGI, the whole dependency chain), on one connection whose transaction is always rolled
back: the legacy app's session provider (`get_db`) and the twin's `get_async_session` are
overridden to give a session on it, so `db` and `current_user` share one session as they do
in production; what the twin's chain still takes from the legacy provider gets a session
of its own (a twin mixing two sessions fails as it would in production, and writes
nothing). Background tasks are recorded, not run: they may open sessions of their own.

    answer = await legacy_answer(app, request, get_db, sync_engine, metadata)
    answer = await twin_answer(app, request, get_db, sync_engine, async_engine, metadata)
    answer["status"], answer["body"], answer["tables"], answer["background"]
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest import mock

import httpx
from fastapi import FastAPI
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from starlette.background import BackgroundTasks

from gateway.db.database import get_async_session
from gateway.translate.check.compare import table_rows
from gateway.translate.check.requests import Request

__all__ = ["legacy_answer", "twin_answer"]


async def legacy_answer(
    app: FastAPI, request: Request, provider: Any, engine: Engine, metadata: MetaData | None
) -> dict[str, Any]:
    """The legacy app's answer to `request`, and the tables afterwards."""
    with _rolled_back(engine) as connection:
        session = Session(bind=connection, join_transaction_mode="create_savepoint")

        def provide() -> Iterator[Session]:
            try:
                yield session
            finally:
                session.close()  # as get_db does: what was not committed is discarded

        with _overridden(app, {provider: provide}):
            answer = await _send(app, request)
        session.close()
        answer["tables"] = table_rows(connection, metadata)
    return answer


async def twin_answer(
    app: FastAPI,
    request: Request,
    provider: Any,
    engine: Engine,
    async_engine: AsyncEngine,
    metadata: MetaData | None,
) -> dict[str, Any]:
    """The twin app's answer to `request`, and the tables afterwards."""
    async with async_engine.connect() as connection:
        outer = await connection.begin()
        try:
            if connection.dialect.name == "postgresql":
                await connection.execute(text(_LOCK_TIMEOUT))

            async def provide_async() -> AsyncIterator[AsyncSession]:
                session = AsyncSession(
                    bind=connection,
                    join_transaction_mode="create_savepoint",
                    expire_on_commit=False,
                )
                try:
                    yield session
                finally:
                    await session.close()

            with _rolled_back(engine) as other:
                # A second session: only a twin that still opens the legacy one reaches it.
                def provide_legacy() -> Iterator[Session]:
                    with Session(bind=other, join_transaction_mode="create_savepoint") as s:
                        yield s

                overrides = {get_async_session: provide_async, provider: provide_legacy}
                with _overridden(app, overrides):
                    answer = await _send(app, request)
            answer["tables"] = await connection.run_sync(lambda c: table_rows(c, metadata))
        finally:
            await outer.rollback()
    return answer


# A twin holding two sessions can wait on a lock its other session holds: fail, not hang.
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s'"


@contextlib.contextmanager
def _rolled_back(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        outer = connection.begin()
        try:
            if connection.dialect.name == "postgresql":
                connection.execute(text(_LOCK_TIMEOUT))
            yield connection
        finally:
            outer.rollback()


@contextlib.contextmanager
def _overridden(app: FastAPI, overrides: dict[Any, Any]) -> Iterator[None]:
    saved = dict(app.dependency_overrides)
    app.dependency_overrides.update({k: v for k, v in overrides.items() if k is not None})
    try:
        yield
    finally:
        app.dependency_overrides.clear()
        app.dependency_overrides.update(saved)


async def _send(app: FastAPI, request: Request) -> dict[str, Any]:
    queued: list[Any] = []

    def record(_tasks: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        queued.append((getattr(func, "__qualname__", repr(func)), args, kwargs))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with mock.patch.object(BackgroundTasks, "add_task", record):
        async with httpx.AsyncClient(transport=transport, base_url="http://check") as client:
            response = await client.request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                json=request.body,
            )
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body, "background": queued}
