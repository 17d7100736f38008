"""Shadow mode: legacy serves the client; async runs on the same request, rolled back, compared.

    runner = ShadowRunner(database, registry=registry)   # a Gateway makes one
    await runner.serve(entry, scope, receive, send)      # PathGroup, for a sampled request

The client always gets legacy's answer, status, headers and side effects. The async side
(the candidate) runs on a connection of its own whose outer transaction is always rolled back:
its AsyncDB session joins it with `join_transaction_mode="create_savepoint"`, so the route's
own commit() releases a savepoint. Reads run the candidate after legacy's response is sent
(the client does not wait); writes run it first, rolled back, then legacy for real, so both
see the same rows and neither waits on the other's locks. The candidate is bounded by a
timeout and a small pool; its background tasks are dropped; whatever it does or fails to do,
the client's answer does not change. Sequence values its inserts consumed are the one trace
it leaves.

Each comparison (gateway.shadow.compare) covers the status, the JSON body field by field, the
content-type and location headers, the committed writes (gateway.shadow.writeset) and the work.
Noise is learned: the first LEARN_RUNS comparisons of a route run the candidate twice, and
fields that differ between those two runs are not compared afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import event
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from starlette.types import Receive, Scope, Send

import gateway.shadow.messages as asgi
from gateway._compat import SQLALCHEMY, timeout
from gateway.db.database import Database, candidate_sessions
from gateway.db.events import install_engine_events
from gateway.request_info import RequestInfo, current_request
from gateway.routing.dispatch import RouteEntry
from gateway.routing.otel import record_twin
from gateway.shadow.compare import Comparison, Outcome, compare
from gateway.shadow.failures import Failure
from gateway.shadow.results import RouteShadow, ShadowResults, shadow_totals
from gateway.shadow.store import ShadowStore
from gateway.shadow.writeset import WriteCapture, install_session_events

__all__ = ["LEARN_RUNS", "SAFE_METHODS", "ShadowRunner", "keep_out_of_shadow", "shadow_totals"]

log = logging.getLogger("gateway.shadow")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LEARN_RUNS = 10  # comparisons per route that run the candidate twice to learn noise
_NO_SHADOW = "__gateway_no_shadow__"


def keep_out_of_shadow(endpoint: Any) -> Any:
    """Mark a migrated route whose effects reach beyond the database as never shadowed.

    @router.post("/orders")
    @keep_out_of_shadow          # it sends an email: a rolled-back run would still send it
    async def create_order(...): ...
    """
    setattr(endpoint, _NO_SHADOW, True)
    return endpoint


class ShadowRunner:
    """Runs the candidate of sampled requests in shadow mode and keeps what it found."""

    def __init__(
        self,
        database: Database,
        *,
        timeout: float = 2.0,
        max_body: int = 1_048_576,
        concurrency: int = 4,
        examples: int = 20,
        keep_bodies: bool = False,
        registry: CollectorRegistry = REGISTRY,
        store: ShadowStore | None = None,
        flush_interval: float = 2.0,
    ) -> None:
        """`store` shares counts and examples with the other workers and hosts."""
        self.database = database
        self.results = ShadowResults(
            store,
            examples=examples,
            flush_interval=flush_interval,
            registry=registry,
            keep_bodies=keep_bodies,
        )
        self._told_version = False
        self.timeout = timeout
        self.max_body = max_body
        self.keep_bodies = keep_bodies
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._queue = concurrency * 16  # reads waiting for a slot, beyond which they skip
        self._engine: AsyncEngine | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        install_engine_events()
        install_session_events()

    # -- the request ---------------------------------------------------------------------

    async def serve(self, entry: RouteEntry, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one sampled request: legacy to the client, the candidate compared."""
        legacy, candidate = entry.legacy, entry.async_
        if legacy is None or candidate is None:
            raise LookupError(f"{entry.key} is not paired; only paired routes are shadowed")
        route = self.results.route(entry.key, self.results.version_of(candidate.func))
        if SQLALCHEMY < (2, 0, 0):  # join_transaction_mode, which the rollback relies on
            if not self._told_version:
                log.warning(
                    "shadow: needs SQLAlchemy 2.0 or newer; %s is served by legacy "
                    "and not compared",
                    entry.key,
                )
                self._told_version = True
            self.results.count(route, scope, "skipped", "needs SQLAlchemy 2.0")
            await legacy.app(scope, receive, send)
            return
        body, complete = await asgi.read_body(receive, self.max_body)
        replayed = asgi.replay(body, receive)
        if not complete or getattr(candidate.func, _NO_SHADOW, False):
            self.results.count(
                route, scope, "skipped", "too large" if not complete else "opted out"
            )
            await legacy.app(scope, asgi.replay(body, receive, complete), send)
            return
        if scope["method"] in SAFE_METHODS:
            legacy_outcome, failure = await self._legacy(legacy.app, scope, replayed, send)
            if failure is not None:
                raise failure
            if len(self._tasks) >= self._queue:  # candidates queue off the client's path
                self.results.count(route, scope, "skipped", "busy")
                return
            later = self._read_later(entry, route, scope, body, legacy_outcome)
            task = asyncio.ensure_future(later)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        # A write waits for a free candidate slot no longer than the candidate may run.
        try:
            async with timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            self.results.count(route, scope, "skipped", "busy")
            await legacy.app(scope, replayed, send)
            return
        started = time.time_ns()
        try:
            outcome = await self._candidate(entry, scope, body)
        finally:
            self._slots.release()
        ended = time.time_ns()
        legacy_outcome, failure = await self._legacy(legacy.app, scope, replayed, send)
        judged = self._judge(route, scope, legacy_outcome, outcome)
        if record_twin is not None:  # OpenTelemetry: the twin's run as a span
            record_twin(entry.key, started, ended, *judged)
        if failure is not None:
            raise failure  # the client gets exactly what legacy alone gives

    async def _read_later(
        self, entry: RouteEntry, route: RouteShadow, scope: Scope, body: bytes, legacy: Outcome
    ) -> None:
        async with self._slots:
            started = time.time_ns()
            outcome = await self._candidate(entry, scope, body)
            ended = time.time_ns()
        judged = self._judge(route, scope, legacy, outcome)
        if record_twin is not None:  # OpenTelemetry: the twin's run as a span
            record_twin(entry.key, started, ended, *judged)

    async def _legacy(
        self, app: Any, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Outcome, Exception | None]:
        """Legacy, for real, to the client; its outcome and the exception it raised, if any."""
        info = current_request.get()
        token = None
        if info is None:  # metrics are off: the comparison still needs the counts
            token = current_request.set(info := RequestInfo(scope["method"], scope["path"]))
        info.writes = capture = WriteCapture()
        outcome = Outcome()
        failure: Exception | None = None
        try:
            await app(scope, receive, asgi.tee(send, outcome, self.max_body))
        except Exception as exc:
            failure = exc
            outcome.status = outcome.status or 500
            outcome.error = Failure.of(exc)
        finally:
            info.writes = None
            if token is not None:
                current_request.reset(token)
        _fill(outcome, capture)
        return outcome, failure

    async def _candidate(self, entry: RouteEntry, scope: Scope, body: bytes) -> Outcome | str:
        """The candidate's outcome, or why it was skipped ("timeout", "pool").

        While a route is learning its noise the candidate runs twice, each run rolled back
        to a savepoint, on one snapshot (REPEATABLE READ on PostgreSQL; SQLite's
        transactions are snapshots): what differs between the two runs is noise, not data
        that changed in between.
        """
        route = self.results.route(entry.key)
        learning = route.learned < LEARN_RUNS
        try:
            async with (
                timeout(self.timeout * (2 if learning else 1)),
                self._connection(snapshot=learning) as connection,
            ):
                started = time.perf_counter()
                first = await self._run_on(connection, entry, scope, body)
                self.results.metrics.latency.labels(entry.key, scope["method"]).observe(
                    time.perf_counter() - started
                )
                if learning and first.error is None:
                    second = await self._run_on(connection, entry, scope, body)
                    if second.error is None:
                        self._learn(route, first, second)
        except TimeoutError:
            return "timeout"
        except _PoolBusy:
            return "pool"
        return first

    def _learn(self, route: RouteShadow, first: Outcome, second: Outcome) -> None:
        route.learned += 1
        one, other = _json_or_none(first.body), _json_or_none(second.body)
        if one is not None and other is not None and route.noise.learn(one, other):
            log.info("shadow: %s: learned noise %s", route.key, sorted(route.noise.paths))

    async def _run_on(
        self, connection: AsyncConnection, entry: RouteEntry, scope: Scope, body: bytes
    ) -> Outcome:
        """One run of the candidate inside a savepoint of `connection`, rolled back."""
        endpoint = entry.async_
        if endpoint is None:
            raise LookupError(f"{entry.key} has no async implementation")
        child = dict(scope)
        child["endpoint"] = endpoint.func
        child["route"] = endpoint.context.original_route
        outcome = Outcome()
        capture = WriteCapture()
        token = current_request.set(RequestInfo(scope["method"], scope["path"], writes=capture))

        def sessions() -> AsyncSession:
            return AsyncSession(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )

        savepoint = await connection.begin_nested()
        session_token = candidate_sessions.set(sessions)
        try:
            await endpoint.app(child, asgi.replay(body, None), asgi.capture(outcome))
        except asgi.CandidateDone:
            pass
        except Exception as exc:
            outcome.error = Failure.of(exc, endpoint.func)
        finally:
            candidate_sessions.reset(session_token)
            current_request.reset(token)
            with anyio_shield():
                if savepoint.is_active:
                    await savepoint.rollback()
        _fill(outcome, capture)
        return outcome

    @contextlib.asynccontextmanager
    async def _connection(self, *, snapshot: bool) -> AsyncIterator[AsyncConnection]:
        """A connection of the candidates' pool in a transaction that is always rolled back."""
        try:
            connection: AsyncConnection = await self.engine.connect()
        except SQLAlchemyTimeout as exc:  # the candidates' own pool is exhausted
            raise _PoolBusy() from exc
        try:
            if snapshot and connection.dialect.name == "postgresql":
                await connection.execution_options(isolation_level="REPEATABLE READ")
            transaction = await connection.begin()
            try:
                yield connection
            finally:
                with anyio_shield():
                    await transaction.rollback()
        finally:
            with anyio_shield():
                await connection.close()

    # -- results -------------------------------------------------------------------------

    def _judge(
        self, route: RouteShadow, scope: Scope, legacy: Outcome, candidate: Outcome | str
    ) -> tuple[str, str]:
        """Count and keep the comparison; return its outcome and reason (as counted)."""
        if isinstance(candidate, str):
            self.results.count(route, scope, "skipped", candidate)
            return "skipped", candidate
        sides = (legacy, candidate)  # what the example leaves out (gateway.shadow.results)
        if candidate.error is not None and legacy.error is not None:
            # Both raised: the same if they raised the same kind of error.
            same = candidate.error.partition(":")[0] == legacy.error.partition(":")[0]
            self.results.count(route, scope, "same" if same else "different", "")
            if not same:
                errors = {"legacy": legacy.error, "async": candidate.error}
                self.results.example(route, scope, "different", {"errors": errors}, sides=sides)
            return "same" if same else "different", ""
        if candidate.error is not None:
            self.results.count(route, scope, "candidate_error", candidate.error)
            failed = {"error": candidate.error}
            self.results.example(route, scope, "candidate_error", failed, sides=sides)
            return "candidate_error", candidate.error
        verdict: Comparison = compare(legacy, candidate, route.noise)
        outcome = "same" if verdict.same else "different"
        self.results.count(route, scope, outcome, "")
        if not verdict.same:
            detail = verdict.as_dict()
            detail["work"] = verdict.work
            self.results.example(route, scope, outcome, detail, sides=sides)  # and logs it
        return outcome, ""

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        """The candidates' own small pool, apart from the application's."""
        if self._engine is None:
            url = self.database.async_engine.url
            args: dict[str, Any] = {"pool_timeout": 0.5, "pool_size": self._concurrency}
            if url.get_backend_name() == "sqlite":
                args = {}
            self._engine = create_async_engine(url, max_overflow=0, **args)
            if url.get_backend_name() == "sqlite":
                # pysqlite's own transaction handling ignores SAVEPOINT; SQLAlchemy's recipe.
                event.listen(self._engine.sync_engine, "connect", _sqlite_connect)
                event.listen(self._engine.sync_engine, "begin", _sqlite_begin)
        return self._engine

    def local_report(self) -> dict[str, Any]:
        """Every shadowed route as this worker alone saw it."""
        return self.results.local_report()

    async def report(self) -> dict[str, Any]:
        """What GET {prefix}/shadow answers (gateway.shadow.results.ShadowResults.report)."""
        return await self.results.report()

    async def flush(self) -> None:
        """Write this worker's results to the store now."""
        await self.results.flush()

    async def start(self) -> None:
        """Start sharing results through the store."""
        await self.results.start()

    async def settle(self) -> None:
        """Wait until every candidate still running after its response has been compared."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self.results.stop()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


class _PoolBusy(Exception):
    pass


def anyio_shield() -> Any:
    import anyio

    return anyio.CancelScope(shield=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def _fill(outcome: Outcome, capture: WriteCapture) -> None:
    outcome.writes = list(capture.committed)
    outcome.uncommitted = capture.discarded + len(capture.pending)
    outcome.generated = list(capture.generated)
    outcome.statements = capture.statements
    outcome.rows_fetched = capture.rows_fetched
    outcome.unlimited_selects = capture.unlimited_selects


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
