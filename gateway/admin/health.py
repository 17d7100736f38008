"""Liveness and readiness, under the admin prefix, for load balancers and orchestrators.

GET /_gateway/live    200 {"status": "alive"} whenever the process answers at all
GET /_gateway/ready   200 {"status": "ready", ...}, or 503 naming each failing part:
                      {"status": "unready", "failing": ["async_engine"], "checks": {...}}

Both are `async def` and never take a worker thread, so a saturated threadpool cannot make
them hang. Readiness pings the database through the async engine (bounded by a timeout),
reports the sync engine's connection failures of the last FAILURE_MEMORY seconds (watched
through engine events, so no blocking I/O on the event loop), says whether the flag store
(gateway.flags.store) is reachable, and asks every check registered with `add_check`:

    add_check(gateway, "cache", cache_health)   # async () -> None | "what is wrong"

The router gets what it pings, not the gateway: `health_router(database, checks, follower)`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, ExceptionContext, make_url

from gateway.exceptions import first_line

if TYPE_CHECKING:
    from gateway.db.database import Database
    from gateway.flags.follower import FlagFollower

__all__ = [
    "CHECK_TIMEOUT",
    "FAILURE_MEMORY",
    "Check",
    "EngineWatch",
    "HealthChecks",
    "add_check",
    "health_router",
]

CHECK_TIMEOUT = 2.0  # seconds one readiness check may take before it counts as failing
FAILURE_MEMORY = 15.0  # seconds a sync engine failure counts, so readiness can recover idle

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: returns None when fine, else one line saying what is wrong."""


class HealthChecks(dict[str, Check]):
    """The readiness checks an application added, by name (a Gateway owns one)."""


class _HasChecks(Protocol):
    @property
    def checks(self) -> HealthChecks: ...


def add_check(gateway: _HasChecks, name: str, check: Check) -> None:
    """Make GET {prefix}/ready also run `check`; a failure is reported under `name`.

    add_check(gw, "cache", cache_health)   # before or after build()
    """
    gateway.checks[name] = check


class EngineWatch:
    """The last connection outcome of sync engines, kept by engine events (no I/O of its own).

    watch = EngineWatch(engine); ...; watch.problem()  # None, or the last failure's line
    watch = EngineWatch(Engine)   # every sync engine of the process: the legacy app's own too
    watch.close()                 # stop listening
    """

    def __init__(self, engine: Engine | type[Engine]) -> None:
        self.failure: str | None = None
        self.failed_at = 0.0
        self._listening: list[tuple[Any, str, Callable[..., None]]] = [
            (engine, "handle_error", self._on_error),
            # A new DBAPI connection (not every checkout): nothing added to a request's path.
            (engine, "connect", self._on_success),
        ]
        for target, name, listener in self._listening:
            event.listen(target, name, listener)

    def close(self) -> None:
        for target, name, listener in self._listening:
            if event.contains(target, name, listener):
                event.remove(target, name, listener)

    def _on_error(self, context: ExceptionContext) -> None:
        # SQLAlchemy 1.4's ExceptionContext has the engine, not the dialect.
        dialect = getattr(context, "dialect", None) or getattr(context.engine, "dialect", None)
        if dialect is not None and dialect.is_async:  # the async engines have a check of their own
            return
        if context.is_disconnect or context.connection is None:
            self.failure = first_line(context.original_exception)
            self.failed_at = time.monotonic()

    def _on_success(self, _dbapi_connection: Any, _record: Any) -> None:
        if self.failure is not None:
            self.failure = None

    def problem(self) -> str | None:
        ago = time.monotonic() - self.failed_at
        if self.failure is None or ago > FAILURE_MEMORY:
            return None
        return f"last connection attempt failed {ago:.0f} s ago: {self.failure}"


def health_router(
    database: Database,
    checks: HealthChecks,
    follower: FlagFollower | None = None,
    watch: EngineWatch | None = None,
) -> APIRouter:
    """Routes mounted under settings.admin_prefix (GET /live, GET /ready).

    `watch` reports sync engine failures (default: the gateway's own sync engine only).
    """
    router = APIRouter()
    watch = watch if watch is not None else EngineWatch(database.sync_engine)
    password = make_url(database.url).password

    def mask(message: str) -> str:
        return message.replace(str(password), "***") if password else message

    async def async_engine() -> str | None:
        async with database.async_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return None

    async def sync_engine() -> str | None:
        return watch.problem()

    async def flag_store() -> str | None:
        if follower is not None and follower.up is False:
            return "unreachable; serving the last known flags until it returns"
        return None

    async def run(check: Check) -> str | None:
        try:
            with anyio.fail_after(CHECK_TIMEOUT):
                return await check()
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT:g} s"
        except Exception as exc:
            return first_line(exc)

    @router.get("/live", name="gateway_live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/ready", name="gateway_ready")
    async def ready() -> JSONResponse:
        named: dict[str, Check] = {"async_engine": async_engine, "sync_engine": sync_engine}
        if follower is not None:
            named["flag_store"] = flag_store
        named.update(checks)
        results = {name: await run(check) for name, check in named.items()}
        failing = [name for name, problem in results.items() if problem is not None]
        body: dict[str, Any] = {
            "status": "unready" if failing else "ready",
            "checks": {name: mask(problem or "ok") for name, problem in results.items()},
        }
        if failing:
            body["failing"] = failing
            body["detail"] = "; ".join(f"{n}: {body['checks'][n]}" for n in failing)
        return JSONResponse(body, status_code=503 if failing else 200)

    return router
