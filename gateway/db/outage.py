"""While the database is down: a 503 with Retry-After instead of a 500, one log line per outage.

    outage = Outage(retry_after=5, registry=registry)
    install_outage_handlers(app, outage)      # in Gateway.build(), after the app's own handlers
    with outage.watching(): ...               # engine events: when an outage starts and ends

A request whose database connection fails (refused, lost, the pool exhausted) answers

    503  Retry-After: 5
    {"detail": "The database cannot be reached, so this request was not served; ...",
     "cause": "database_unreachable"}

through the app's exception handlers: the gateway's handler goes in only for the exception
classes the legacy app handles neither itself nor through a base class, so the app's own
answers win. Anything else (a constraint, a syntax error, a statement timeout) keeps its
normal behaviour. The process logs one line when an outage starts and one when a new
connection succeeds again, with the outage's duration and how many 503s it answered.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, ExceptionContext

from gateway.db.checkout import watch_checkouts
from gateway.db.errors import Cause, database_unavailable
from gateway.exceptions import first_line
from gateway.logging import log_event

__all__ = ["Outage", "install_outage_handlers"]


SETTLE_SECONDS = 1.0  # connections must keep succeeding this long for an outage to end


class Outage:
    """One process's view of the database: down since when, and how many 503s answered.

    outage = Outage(retry_after=5, registry=CollectorRegistry())
    outage.respond(Cause.UNREACHABLE, "Connection refused")  # the 503, counted; starts an outage
    outage.down                         # True until connections succeed for `settle` seconds

    A database that is starting up accepts some connections and refuses others; an outage
    ends only after `settle` seconds of checkouts with no failure, so it logs two lines, not
    one pair per flap. Its duration runs until the first success of that streak.
    """

    def __init__(
        self,
        *,
        retry_after: int = 5,
        registry: CollectorRegistry | None = None,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        self.retry_after = retry_after
        self.settle = settle
        self._lock = threading.Lock()
        self._since: float | None = None
        self._ok_since: float | None = None
        self._answered = 0
        self._responses: Counter | None = None
        self._gauge: Gauge | None = None
        if registry is not None:
            self._responses = Counter(
                "gateway_db_unavailable_responses",
                "Requests answered 503 because the database connection failed, by cause.",
                ["cause"],
                registry=registry,
            )
            self._gauge = Gauge(
                "gateway_db_outage",
                "1 while this process sees the database as unreachable (max over workers).",
                multiprocess_mode="livemax",
                registry=registry,
            )
            self._gauge.set(0)

    @property
    def down(self) -> bool:
        """Whether an outage is on: a connection failed and none has succeeded since."""
        return self._since is not None

    def respond(self, cause: Cause, reason: str) -> JSONResponse:
        """The 503 for `cause` (counted), with Retry-After; `reason` goes to the log only."""
        if cause is not Cause.POOL_TIMEOUT:  # an exhausted pool is load, not an outage
            self.failed(reason)
        with self._lock:
            self._answered += 1
        if self._responses is not None:
            self._responses.labels(cause.value).inc()
        return JSONResponse(
            {"detail": cause.sentence(self.retry_after), "cause": cause.value},
            status_code=503,
            headers={"Retry-After": str(self.retry_after)},
        )

    def failed(self, reason: str) -> None:
        """A connection failed: log the start of an outage, unless one is on already."""
        with self._lock:
            self._ok_since = None
            if self._since is not None:
                return
            self._since, self._answered = time.monotonic(), 0
        if self._gauge is not None:
            self._gauge.set(1)
        log_event(
            "database unavailable: answering 503 with Retry-After until a connection succeeds",
            level=logging.WARNING,
            reason=reason,
            retry_after=self.retry_after,
            pid=os.getpid(),
        )

    def succeeded(self) -> None:
        """A connection was checked out: after `settle` s of these, the outage has ended."""
        if self._since is None:  # the common case, checked without the lock
            return
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                return
            if self._ok_since is None:
                self._ok_since = now
            if now - self._ok_since < self.settle:
                return
            seconds, answered = self._ok_since - self._since, self._answered
            self._since = self._ok_since = None
        if self._gauge is not None:
            self._gauge.set(0)
        log_event(
            "database available again",
            down_seconds=round(seconds, 3),
            answered_503=answered,
            pid=os.getpid(),
        )

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Follow every engine of the process (the legacy app's own too) while inside."""
        event.listen(Engine, "handle_error", self._on_error)
        try:
            with watch_checkouts(self.succeeded):  # the gateway's one checkout listener
                yield
        finally:
            if event.contains(Engine, "handle_error", self._on_error):
                event.remove(Engine, "handle_error", self._on_error)

    def _on_error(self, context: ExceptionContext) -> None:
        # Only a failed connect: a pooled connection found dead after a restart (by a part
        # without pre-ping) is replaced by its pool, and a request it fails answers 503,
        # which starts the outage through respond().
        if context.connection is not None or getattr(context, "is_pre_ping", False):
            return
        error = context.sqlalchemy_exception or context.original_exception
        if database_unavailable(error) is Cause.UNREACHABLE:
            self.failed(first_line(context.original_exception))


def install_outage_handlers(app: FastAPI, outage: Outage) -> list[type[Exception]]:
    """Answer database outages with `outage.respond` through `app`'s exception handlers.

    Call it after the legacy app's handlers are copied in: a class the app handles, itself
    or through a base class other than Exception, keeps the app's handler. Returns the
    classes that got the gateway's handler.
    """

    async def answer(_request: Request, error: Exception) -> JSONResponse:
        cause = database_unavailable(error)
        if cause is None:
            raise error  # not an outage: on to the 500 the app would have answered
        return outage.respond(cause, first_line(error))

    installed = []
    for kind in _handled_classes():
        covered = [k for k in kind.__mro__ if k in app.exception_handlers]
        if any(k not in (Exception, BaseException) for k in covered):
            continue
        app.add_exception_handler(kind, answer)
        installed.append(kind)
    return installed


def _handled_classes() -> list[type[Exception]]:
    """SQLAlchemy's errors, OSError (raw connect errors) and the drivers' own connection
    errors, for apps that call a driver directly; drivers not installed are skipped."""
    kinds: list[type[Exception]] = [exc.SQLAlchemyError, OSError]
    wanted = {
        "psycopg": ("OperationalError",),
        "psycopg2": ("OperationalError",),
        "asyncpg": (
            "PostgresConnectionError",
            "CannotConnectNowError",
            "ConnectionDoesNotExistError",
        ),
        "sqlite3": ("OperationalError",),
    }
    for module_name, names in wanted.items():
        module = sys.modules.get(module_name)  # only drivers something imported already
        for name in names:
            kind = getattr(module, name, None) if module is not None else None
            if isinstance(kind, type) and issubclass(kind, Exception):
                kinds.append(kind)
    return kinds
