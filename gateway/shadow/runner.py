"""Shadow mode: legacy serves the client; async runs on the same request, rolled back, compared.

    runner = ShadowRunner(database, registry=registry)   # a Gateway makes one
    await runner.serve(entry, scope, receive, send)      # PathGroup, for a sampled request

The client always gets legacy's answer, status, headers and side effects. The async side
(the candidate) runs sealed (gateway.db.isolation) on a connection of the shadow's own pool
whose transaction is always rolled back (gateway.shadow.sandbox, gateway.shadow.twin); what
it tried to commit or open is reported as `escaped`. Reads run the candidate after legacy's
response is sent (the client does not wait), on a snapshot taken before legacy read, and a
difference is confirmed on a fresh snapshot before it is reported. Writes run it first,
rolled back, then legacy for real, so both see the same rows and neither waits on the
other's locks; the client waits for it at most the timeout in all. Whatever the candidate or
its connection does or fails to do, the client's answer does not change. Sequence values its
inserts consumed are the one trace it leaves.

Each comparison (gateway.shadow.compare) covers the status, the JSON body field by field, the
content-type and location headers, the committed writes (gateway.shadow.writeset) and the work.
Noise is learned: the first LEARN_RUNS comparisons of a route run the candidate twice, and
fields that differ between those two runs are not compared afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.types import Receive, Scope, Send

import gateway.shadow.messages as asgi
from gateway._compat import SQLALCHEMY, timeout
from gateway.db.database import Database
from gateway.db.events import install_engine_events
from gateway.db.isolation import Seal, install_isolation
from gateway.request_info import RequestInfo, current_request
from gateway.routing.dispatch import RouteEntry
from gateway.routing.otel import record_twin
from gateway.shadow.compare import Comparison, Noise, Outcome, compare
from gateway.shadow.failures import Failure
from gateway.shadow.results import RouteShadow, ShadowResults, shadow_totals
from gateway.shadow.sandbox import Sandbox
from gateway.shadow.store import ShadowStore
from gateway.shadow.twin import LEARN_RUNS, SAFE_METHODS, TwinRunner
from gateway.shadow.writeset import WriteCapture, install_session_events

__all__ = ["LEARN_RUNS", "SAFE_METHODS", "ShadowRunner", "keep_out_of_shadow", "shadow_totals"]

log = logging.getLogger("gateway.shadow")

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
        self.sandbox = Sandbox(database.async_engine.url, concurrency=concurrency)
        self.twins = TwinRunner(self.sandbox, self.results, self._late)
        self._tasks: set[asyncio.Task[None]] = set()
        install_engine_events()
        install_session_events()
        install_isolation()

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
            await self._serve_read(entry, route, scope, body, replayed, send)
        else:
            await self._serve_write(entry, route, scope, body, replayed, send)

    async def _serve_read(
        self,
        entry: RouteEntry,
        route: RouteShadow,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
    ) -> None:
        """Legacy first, to the client; the candidate after, off the client's path, on a
        snapshot pinned before legacy read (when a slot is free) so that a difference can
        be told from a write that landed in between (see _compare_read)."""
        pinned = await self._pin()
        legacy_outcome, failure = await self._legacy(entry, scope, receive, send)
        if failure is not None or (pinned is None and len(self._tasks) >= self._queue):
            if pinned is not None:
                self._spawn(self._unpin(pinned))
            if failure is not None:
                raise failure
            self.results.count(route, scope, "skipped", "busy")
            return
        self._spawn(self._read_later(entry, route, scope, body, legacy_outcome, pinned))

    async def _serve_write(
        self,
        entry: RouteEntry,
        route: RouteShadow,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
    ) -> None:
        """The candidate first, rolled back, then legacy for real: the client waits for the
        candidate at most `timeout` in all (a free slot, its runs, learning included, and
        its rollback)."""
        deadline = time.monotonic() + self.timeout
        try:
            async with timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            self.results.count(route, scope, "skipped", "busy")
            await self._legacy_alone(entry, scope, receive, send)
            return
        started = time.time_ns()
        try:
            outcome, seal = await self.twins.run(entry, route, scope, body, deadline=deadline)
        finally:
            self._slots.release()
        ended = time.time_ns()
        legacy_outcome, failure = await self._legacy(entry, scope, receive, send)
        judged = self._judge(route, scope, legacy_outcome, outcome, seal)
        if record_twin is not None:  # OpenTelemetry: the twin's run as a span
            record_twin(entry.key, started, ended, *judged)
        if failure is not None:
            raise failure  # the client gets exactly what legacy alone gives

    async def _legacy_alone(
        self, entry: RouteEntry, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if entry.legacy is None:
            raise LookupError(f"{entry.key} has no legacy implementation")
        await entry.legacy.app(scope, receive, send)

    async def _pin(self) -> AsyncConnection | None:
        """A slot and a connection whose snapshot is taken now, if a slot is free now."""
        if self._slots.locked():
            return None
        await self._slots.acquire()
        try:
            async with timeout(self.timeout):
                return await self.sandbox.open(snapshot=True, pin=True)
        except Exception:  # busy, or the database is down: legacy answers all the same
            self._slots.release()
            return None

    async def _unpin(self, pinned: AsyncConnection) -> None:
        try:
            await self.sandbox.discard(pinned, within=self.timeout)
        finally:
            self._slots.release()

    async def _read_later(
        self,
        entry: RouteEntry,
        route: RouteShadow,
        scope: Scope,
        body: bytes,
        legacy: Outcome,
        pinned: AsyncConnection | None,
    ) -> None:
        if pinned is None:
            await self._slots.acquire()
        started = time.time_ns()
        try:
            judged = await self._compare_read(entry, route, scope, body, legacy, pinned)
        finally:
            self._slots.release()
        if record_twin is not None:  # OpenTelemetry: the twin's run(s) as a span
            record_twin(entry.key, started, time.time_ns(), *judged)

    async def _compare_read(
        self,
        entry: RouteEntry,
        route: RouteShadow,
        scope: Scope,
        body: bytes,
        legacy: Outcome,
        pinned: AsyncConnection | None,
    ) -> tuple[str, str]:
        """A difference on a read is confirmed before it is reported.

        The pinned snapshot was taken before legacy read, a fresh one is taken after it
        answered: legacy saw the data as of some moment in between. A candidate that
        matches legacy on either snapshot is the same; one that differs from legacy on both
        while both snapshots agree is different; otherwise the data changed under the
        comparison and it is skipped ("unconfirmed"), neither same nor different. A read
        that found every slot busy has no snapshot from before legacy: its differences
        cannot be confirmed and are skipped too."""
        deadline = time.monotonic() + self.timeout
        first, seal = await self.twins.run(entry, route, scope, body, deadline=deadline, on=pinned)
        if not isinstance(first, Outcome) or not _unconfirmed(legacy, first, seal, route.noise):
            return self._judge(route, scope, legacy, first, seal)
        deadline = time.monotonic() + self.timeout
        fresh, fresh_seal = await self.twins.run(
            entry, route, scope, body, deadline=deadline, learn=False
        )
        seal.closed = fresh_seal.closed = True
        if isinstance(fresh, Outcome):
            if fresh_seal.attempts or compare(legacy, fresh, route.noise).same:
                return self._judge(route, scope, legacy, fresh, fresh_seal)
            if pinned is not None and _answer(first) == _answer(fresh):
                return self._judge(route, scope, legacy, first, seal)
        # The data changed in between, or no snapshot from before legacy read.
        self.results.count(route, scope, "skipped", "unconfirmed")
        return "skipped", "unconfirmed"

    async def _legacy(
        self, entry: RouteEntry, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Outcome, Exception | None]:
        """Legacy, for real, to the client; its outcome and the exception it raised, if any."""
        if entry.legacy is None:
            raise LookupError(f"{entry.key} has no legacy implementation")
        info = current_request.get()
        token = None
        if info is None:  # metrics are off: the comparison still needs the counts
            token = current_request.set(info := RequestInfo(scope["method"], scope["path"]))
        info.writes = capture = WriteCapture()
        outcome = Outcome()
        failure: Exception | None = None
        try:
            await entry.legacy.app(scope, receive, asgi.tee(send, outcome, self.max_body))
        except Exception as exc:
            failure = exc
            outcome.status = outcome.status or 500
            outcome.error = Failure.of(exc)
        finally:
            info.writes = None
            if token is not None:
                current_request.reset(token)
        capture.fill(outcome)
        return outcome, failure

    def _late(self, route: RouteShadow, scope: Scope, what: str) -> None:
        """An attempt by something the twin left running after its run was compared."""
        self.results.count(route, scope, "escaped", "")
        self.results.example(route, scope, "escaped", {"escaped": [what], "late": True})
        log.warning("shadow: %s %s: refused %s", scope["method"], scope["path"], what)

    def _judge(
        self,
        route: RouteShadow,
        scope: Scope,
        legacy: Outcome,
        candidate: Outcome | str,
        seal: Seal,
    ) -> tuple[str, str]:
        """Count and keep the comparison; return its outcome and reason (as counted)."""
        seal.closed = True
        if seal.attempts:  # whatever it answered, it tried to get out: that comes first
            self.results.count(route, scope, "escaped", "")
            self.results.example(route, scope, "escaped", {"escaped": list(seal.attempts)})
            log.warning(
                "shadow: %s %s: refused %s", scope["method"], scope["path"], seal.attempts[0]
            )
            return "escaped", seal.attempts[0]
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
        outcome = verdict.outcome
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
        return self.sandbox.engine

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
        await self.sandbox.dispose()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _unconfirmed(legacy: Outcome, candidate: Outcome, seal: Seal, noise: Noise) -> bool:
    """A read whose answer differs: data that changed in between may explain it. Errors,
    escapes and differences in writes or work alone are judged as found."""
    if seal.attempts or candidate.error is not None or legacy.error is not None:
        return False
    verdict = compare(legacy, candidate, noise)
    return verdict.status is not None or bool(verdict.fields)


def _answer(outcome: Outcome) -> tuple[int, bytes]:
    return outcome.status, outcome.body
