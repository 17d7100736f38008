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

Each comparison (gateway.compare) covers the status, the JSON body field by field, the
content-type and location headers, the committed writes (gateway.writeset) and the work.
Noise is learned: the first LEARN_RUNS comparisons of a route run the candidate twice, and
fields that differ between those two runs are not compared afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from sqlalchemy import event
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from starlette.types import Message, Receive, Scope, Send

from gateway.compare import COMPARED_HEADERS, Comparison, Noise, Outcome, compare
from gateway.compat import SQLALCHEMY
from gateway.database import Database, candidate_sessions
from gateway.db_events import install_engine_events
from gateway.exceptions import first_line
from gateway.request_info import RequestInfo, current_request
from gateway.routing import RouteEntry
from gateway.shadow_store import ShadowStore
from gateway.writeset import WriteCapture, install_session_events

__all__ = ["LEARN_RUNS", "SAFE_METHODS", "ShadowRunner", "keep_out_of_shadow", "shadow_totals"]

log = logging.getLogger("gateway.shadow")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LEARN_RUNS = 10  # comparisons per route that run the candidate twice to learn noise
OUTCOMES = ("same", "different", "candidate_error", "skipped")
_NO_SHADOW = "__gateway_no_shadow__"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def keep_out_of_shadow(endpoint: Any) -> Any:
    """Mark a migrated route whose effects reach beyond the database as never shadowed.

    @router.post("/orders")
    @keep_out_of_shadow          # it sends an email: a rolled-back run would still send it
    async def create_order(...): ...
    """
    setattr(endpoint, _NO_SHADOW, True)
    return endpoint


class _Done(BaseException):
    """Raised from the candidate's send after its last body chunk: skips background tasks.

    A BaseException, so no application exception handler takes it for an error."""


@dataclass
class RouteShadow:
    """What shadowing one route has found, in this worker."""

    key: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    examples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    noise: Noise = field(default_factory=Noise)
    learned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.key,
            "compared": self.counts["same"] + self.counts["different"],
            "same": self.counts["same"],
            "different": self.counts["different"],
            "candidate_errors": self.counts["candidate_error"],
            "skipped": self.counts["skipped"],
            "noise": sorted(self.noise.paths | {f"{p} (order)" for p in self.noise.unordered}),
            "examples": list(self.examples),
        }


class ShadowMetrics:
    """gateway_shadow_* in the gateway's registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.comparisons = Counter(
            "gateway_shadow_comparisons",
            "Shadowed requests by outcome: same, different, candidate_error, skipped.",
            ["route", "method", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "gateway_shadow_candidate_seconds",
            "Time the async candidate took on a shadowed request (rolled back).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


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
        self.store = store
        self.flush_interval = flush_interval
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._unsaved: deque[dict[str, Any]] = deque(maxlen=examples * 4)
        self._dirty = False
        self._told_version = False
        self._flusher: asyncio.Task[None] | None = None
        self.timeout = timeout
        self.max_body = max_body
        self.keep_bodies = keep_bodies
        self.examples = examples
        self.metrics = ShadowMetrics(registry)
        self.routes: dict[str, RouteShadow] = {}
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
        route = self.route(entry.key)
        if SQLALCHEMY < (2, 0, 0):  # join_transaction_mode, which the rollback relies on
            if not self._told_version:
                log.warning(
                    "shadow: needs SQLAlchemy 2.0 or newer; %s is served by legacy "
                    "and not compared",
                    entry.key,
                )
                self._told_version = True
            self._count(route, scope, "skipped", "needs SQLAlchemy 2.0")
            await legacy.app(scope, receive, send)
            return
        body, complete = await _read_body(receive, self.max_body)
        replay = _replay(body, receive)
        if not complete or getattr(candidate.func, _NO_SHADOW, False):
            self._count(route, scope, "skipped", "too large" if not complete else "opted out")
            await legacy.app(scope, _replay(body, receive, complete), send)
            return
        if scope["method"] in SAFE_METHODS:
            legacy_outcome, failure = await self._legacy(legacy.app, scope, replay, send)
            if failure is not None:
                raise failure
            if len(self._tasks) >= self._queue:  # candidates queue off the client's path
                self._count(route, scope, "skipped", "busy")
                return
            later = self._read_later(entry, route, scope, body, legacy_outcome)
            task = asyncio.ensure_future(later)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        # A write waits for a free candidate slot no longer than the candidate may run.
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            self._count(route, scope, "skipped", "busy")
            await legacy.app(scope, replay, send)
            return
        try:
            outcome = await self._candidate(entry, scope, body)
        finally:
            self._slots.release()
        legacy_outcome, failure = await self._legacy(legacy.app, scope, replay, send)
        self._judge(route, scope, legacy_outcome, outcome)
        if failure is not None:
            raise failure  # the client gets exactly what legacy alone gives

    async def _read_later(
        self, entry: RouteEntry, route: RouteShadow, scope: Scope, body: bytes, legacy: Outcome
    ) -> None:
        async with self._slots:
            outcome = await self._candidate(entry, scope, body)
        self._judge(route, scope, legacy, outcome)

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
            await app(scope, receive, _tee(send, outcome, self.max_body))
        except Exception as exc:
            failure = exc
            outcome.status = outcome.status or 500
            outcome.error = f"{type(exc).__name__}: {first_line(exc)}"
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
        route = self.route(entry.key)
        learning = route.learned < LEARN_RUNS
        try:
            async with (
                asyncio.timeout(self.timeout * (2 if learning else 1)),
                self._connection(snapshot=learning) as connection,
            ):
                started = time.perf_counter()
                first = await self._run_on(connection, entry, scope, body)
                self.metrics.latency.labels(entry.key, scope["method"]).observe(
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
            await endpoint.app(child, _replay(body, None), _capture(outcome))
        except _Done:
            pass
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {first_line(exc)}"
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

    def route(self, key: str) -> RouteShadow:
        found = self.routes.get(key)
        if found is None:
            found = self.routes[key] = RouteShadow(key, examples=deque(maxlen=self.examples))
        return found

    def _judge(
        self, route: RouteShadow, scope: Scope, legacy: Outcome, candidate: Outcome | str
    ) -> None:
        if isinstance(candidate, str):
            self._count(route, scope, "skipped", candidate)
            return
        if candidate.error is not None and legacy.error is not None:
            # Both raised: the same if they raised the same kind of error.
            same = candidate.error.partition(":")[0] == legacy.error.partition(":")[0]
            self._count(route, scope, "same" if same else "different", "")
            if not same:
                errors = {"legacy": legacy.error, "async": candidate.error}
                self._example(route, scope, "different", {"errors": errors})
            return
        if candidate.error is not None:
            self._count(route, scope, "candidate_error", candidate.error)
            self._example(route, scope, "candidate_error", {"error": candidate.error})
            return
        verdict: Comparison = compare(legacy, candidate, route.noise)
        outcome = "same" if verdict.same else "different"
        self._count(route, scope, outcome, "")
        if not verdict.same:
            detail = verdict.as_dict()
            detail["work"] = verdict.work
            if self.keep_bodies:
                detail["bodies"] = {"legacy": _text(legacy.body), "async": _text(candidate.body)}
            self._example(route, scope, outcome, detail)
            log.warning(
                "shadow: %s %s differs: %s",
                scope["method"],
                scope["path"],
                "; ".join(verdict.fields + verdict.writes + verdict.work)
                or f"status {verdict.status}",
            )

    def _count(self, route: RouteShadow, scope: Scope, outcome: str, why: str) -> None:
        self._dirty = True
        route.counts[outcome] += 1
        method, _, path = route.key.partition(" ")
        self.metrics.comparisons.labels(path, method, outcome).inc()
        if outcome == "skipped" and why:
            route.counts.setdefault(f"skipped_{why}", 0)
            route.counts[f"skipped_{why}"] += 1

    def _example(self, route: RouteShadow, scope: Scope, outcome: str, detail: Any) -> None:
        # Method and path only: no query string, headers, cookies or bodies unless asked.
        example = {
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "route": route.key,
            "method": scope["method"],
            "path": scope["path"],
            "outcome": outcome,
            **({"detail": detail} if isinstance(detail, dict) else {}),
        }
        route.examples.appendleft(example)
        self._unsaved.append(example)

    def local_report(self) -> dict[str, Any]:
        """Every shadowed route as this worker alone saw it."""
        return {"routes": [r.as_dict() for r in self.routes.values()], "scope": "this worker"}

    async def report(self) -> dict[str, Any]:
        """What GET {prefix}/shadow answers: every worker's and host's counts and examples
        (from the store), with the noise this worker learned; this worker's alone if the
        store cannot be read."""
        if self.store is None:
            return self.local_report()
        try:
            await self.flush()
            shared = await self.store.load()
        except Exception as exc:
            found = self.local_report()
            found["scope"] = f"this worker (the shadow store is unreachable: {first_line(exc)})"
            return found
        rows = []
        for key in sorted(set(shared) | set(self.routes)):
            row = self.route(key).as_dict()
            counts = shared.get(key, {}).get("counts", {})
            row.update(
                compared=counts.get("same", 0) + counts.get("different", 0),
                same=counts.get("same", 0),
                different=counts.get("different", 0),
                candidate_errors=counts.get("candidate_error", 0),
                skipped=counts.get("skipped", 0),
                examples=shared.get(key, {}).get("examples", [])[: self.examples],
            )
            rows.append(row)
        return {"routes": rows, "scope": "every worker"}

    async def flush(self) -> None:
        """Write this worker's totals and new examples to the store (if anything changed)."""
        if self.store is None or not self._dirty:
            return
        examples = list(self._unsaved)
        counts = {key: dict(route.counts) for key, route in self.routes.items()}
        self._dirty = False
        try:
            await self.store.save(self.worker, counts, examples)
        except BaseException:
            self._dirty = True
            raise
        for example in examples:
            with contextlib.suppress(ValueError):
                self._unsaved.remove(example)

    async def start(self) -> None:
        """Prepare the store and write to it every flush_interval (on the event loop)."""
        if self.store is None:
            return
        try:
            await self.store.prepare()
        except Exception as exc:
            log.warning(
                "shadow: the shadow store is unreachable (%s); results stay per worker",
                first_line(exc),
            )
        self._flusher = asyncio.ensure_future(self._flush_every())

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next flush tries again; the counts are kept
                log.warning("shadow: could not write results (%s)", first_line(exc))

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
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(BaseException):
                await self._flusher
            self._flusher = None
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.flush()
            await self.store.aclose()
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


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole request body if it is at most `limit` bytes: (body, True); else what was
    read so far and False (the rest is still to be received)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replay(body: bytes, then: Receive | None, complete: bool = True) -> Receive:
    """A receive that gives `body` first, then defers to `then` (or waits forever)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        if then is None:
            await asyncio.Event().wait()  # the candidate never sees a disconnect
        assert then is not None
        return await then()

    return receive


def _tee(send: Send, outcome: Outcome, limit: int) -> Send:
    """Send to the client, keeping a copy of the status, headers and (bounded) body."""
    chunks: list[bytes] = []

    async def tee(message: Message) -> None:
        if message["type"] == "http.response.start":
            outcome.status = message["status"]
            outcome.headers = _headers(message.get("headers", []))
        elif message["type"] == "http.response.body":
            if sum(map(len, chunks)) <= limit:
                chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                outcome.body = b"".join(chunks)
        await send(message)

    return tee


def _capture(outcome: Outcome) -> Send:
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        if message["type"] == "http.response.start":
            outcome.status = message["status"]
            outcome.headers = _headers(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                outcome.body = b"".join(chunks)
                raise _Done()

    return capture


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    wanted = {name.encode() for name in COMPARED_HEADERS}
    return {k.decode().lower(): v.decode("latin-1") for k, v in raw if k.lower() in wanted}


def _fill(outcome: Outcome, capture: WriteCapture) -> None:
    outcome.writes = list(capture.committed)
    outcome.uncommitted = capture.discarded + len(capture.pending)
    outcome.generated = list(capture.generated)
    outcome.statements = capture.statements
    outcome.rows_fetched = capture.rows_fetched
    outcome.unlimited_selects = capture.unlimited_selects


def _json_or_none(body: bytes) -> Any:
    import json

    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _text(body: bytes) -> str:
    return body[:4096].decode("utf-8", "replace")


def shadow_totals(registry: CollectorRegistry) -> list[dict[str, Any]]:
    """Per shadowed route, the comparisons the metrics counted (one worker or a host's all)."""
    found: dict[str, dict[str, int]] = {}
    for family in registry.collect():
        if family.name != "gateway_shadow_comparisons":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = f"{sample.labels['method']} {sample.labels['route']}"
                counts = found.setdefault(key, dict.fromkeys(OUTCOMES, 0))
                counts[sample.labels["outcome"]] += int(sample.value)
    return [
        {"route": key, "compared": c["same"] + c["different"], **c}
        for key, c in sorted(found.items())
    ]
