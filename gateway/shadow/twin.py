"""One shadowed run of a twin: sealed, on a rolled-back connection, background tasks included.

    twins = TwinRunner(sandbox, results)
    outcome, seal = await twins.run(entry, route, scope, body, deadline=time.monotonic() + 2)
    # outcome: an Outcome, or why it was skipped ("timeout", "pool", "database (...)")
    # seal.attempts: what the twin tried that isolation refused (gateway.db.isolation)

The twin's AsyncDB sessions (and the gateway Database's, inside the run) join its connection
with `join_transaction_mode="create_savepoint"`, so its own commit() releases a savepoint. Its
background tasks run after its response, in the same transaction. Whatever it or its
connection does, `run` returns by the deadline and never raises.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.types import Scope

import gateway.shadow.messages as asgi
from gateway._compat import timeout
from gateway.db.database import candidate_sessions
from gateway.db.isolation import Seal, sealed
from gateway.request_info import RequestInfo, current_request
from gateway.routing.dispatch import RouteEntry
from gateway.shadow.compare import Outcome
from gateway.shadow.failures import Failure
from gateway.shadow.results import RouteShadow, ShadowResults
from gateway.shadow.sandbox import PoolBusy, Sandbox
from gateway.shadow.writeset import WriteCapture

__all__ = ["LEARN_RUNS", "SAFE_METHODS", "TwinRunner"]

log = logging.getLogger("gateway.shadow")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LEARN_RUNS = 10  # comparisons per route that run the candidate twice to learn noise


class TwinRunner:
    """Runs a route's twin in shadow; `on_late(route, scope, what)` hears of attempts made
    after the run was compared (by a task the twin left running)."""

    def __init__(
        self,
        sandbox: Sandbox,
        results: ShadowResults,
        on_late: Callable[[RouteShadow, Scope, str], None] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.results = results
        self.on_late = on_late

    async def run(
        self,
        entry: RouteEntry,
        route: RouteShadow,
        scope: Scope,
        body: bytes,
        *,
        deadline: float,
        on: AsyncConnection | None = None,
        learn: bool = True,
    ) -> tuple[Outcome | str, Seal]:
        """The twin's outcome (`route` learns its noise), or why it was skipped, and the
        seal it ran under; its
        connection (`on`, or one of the sandbox's) is discarded by `deadline`.

        While a route is learning its noise the twin runs twice, each run rolled back to a
        savepoint, on one snapshot (REPEATABLE READ on PostgreSQL; SQLite's transactions
        are snapshots): what differs between the two runs is noise, not data that changed in
        between. Both runs share the deadline.
        """
        learning = learn and route.learned < LEARN_RUNS
        read = scope["method"] in SAFE_METHODS
        late = self.on_late
        seal = Seal(
            read_only=read, on_late=(lambda what: late(route, scope, what)) if late else None
        )
        connection = on
        first: Outcome | None = None
        result: Outcome | str = "timeout"
        try:
            async with timeout(max(deadline - time.monotonic(), 0.001)):
                if connection is None:
                    connection = await self.sandbox.open(snapshot=learning)
                started = time.perf_counter()
                result = first = await self._run_on(connection, entry, scope, body, seal)
                self.results.metrics.latency.labels(entry.key, scope["method"]).observe(
                    time.perf_counter() - started
                )
                if learning and first.error is None and not seal.attempts:
                    second = await self._run_on(connection, entry, scope, body, seal)
                    if second.error is None:
                        self._learn(route, first, second)
        except TimeoutError:  # a learning run that ran out of time keeps the first
            result = first if first is not None else "timeout"
        except PoolBusy:
            result = "pool"
        except Exception as exc:  # the sandbox could not open: the database is down
            result = f"database ({type(exc).__name__})"
        finally:
            if connection is not None:
                await self.sandbox.discard(connection, within=deadline - time.monotonic())
        return result, seal

    def _learn(self, route: RouteShadow, first: Outcome, second: Outcome) -> None:
        route.learned += 1
        one, other = _json_or_none(first.body), _json_or_none(second.body)
        if one is not None and other is not None and route.noise.learn(one, other):
            log.info("shadow: %s: learned noise %s", route.key, sorted(route.noise.paths))

    async def _run_on(
        self,
        connection: AsyncConnection,
        entry: RouteEntry,
        scope: Scope,
        body: bytes,
        seal: Seal,
    ) -> Outcome:
        """One run inside a savepoint of `connection`, rolled back, under `seal`."""
        endpoint = entry.async_
        if endpoint is None:
            raise LookupError(f"{entry.key} has no async implementation")
        child = dict(scope)
        child["endpoint"] = endpoint.func
        child["route"] = endpoint.context.original_route
        outcome = Outcome(escapes=seal.attempts)
        capture = WriteCapture()
        token = current_request.set(RequestInfo(scope["method"], scope["path"], writes=capture))

        def sessions() -> AsyncSession:
            return AsyncSession(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )

        savepoint = await connection.begin_nested()
        session_token = candidate_sessions.set(sessions)
        try:
            with sealed(seal):
                await endpoint.app(child, asgi.replay(body, None), asgi.capture(outcome))
        except Exception as exc:
            outcome.error = Failure.of(exc, endpoint.func)
        finally:
            candidate_sessions.reset(session_token)
            current_request.reset(token)
        capture.fill(outcome)
        if savepoint.is_active and outcome.error is None:  # a clean start for a second run
            await savepoint.rollback()
        return outcome


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
