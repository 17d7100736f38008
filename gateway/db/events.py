"""Database time per request, the sync engine caught on the event loop thread, and the
relationships a legacy request loads lazily.

Dialect events are installed once per process through the `Engine` class, so every engine
counts (the gateway's two and any the legacy app creates itself). Each statement is added to the
request in flight via `gateway.request_info.current_request`, which reaches worker threads and
SQLAlchemy's async greenlets.
"""

from __future__ import annotations

import inspect
import time
from types import FrameType
from typing import Any

from sqlalchemy import event

from gateway._compat import (
    Engine,
    autobegins,
    code_qualname,
    lazy_load_of,
    running_loop,
    time_pool_checkout,
)
from gateway.modes import Implementation
from gateway.request_info import RequestInfo, current_request

__all__ = ["install_engine_events", "watch_pool"]

_installed = False
_LEGACY = Implementation.LEGACY


def _timed(info: RequestInfo, execute: Any, context: Any, *args: Any) -> bool:
    """Run the dialect's own execute, adding its time to the request in flight."""
    started = time.perf_counter()
    try:
        execute(*args, context)
    finally:
        elapsed = time.perf_counter() - started
        info.db_seconds += elapsed
        info.db_statements += 1
        # A sync driver with a running loop in this thread: the whole loop waited.
        if not context.dialect.is_async and running_loop() is not None:
            info.loop_blocking_seconds += elapsed
            if info.loop_blocker is None:
                info.loop_blocker = _async_caller(inspect.currentframe())
    if info.implementation is _LEGACY:  # what its async twin must eager-load
        relationship = lazy_load_of(context)
        if relationship is not None:
            if info.lazy_loads is None:
                info.lazy_loads = []
            info.lazy_loads.append(relationship)
    if info.writes is not None:  # shadow mode compares what each side wrote
        info.writes.record(context, args[0])
    return True  # executed here: SQLAlchemy skips its own call


def _async_caller(frame: FrameType | None) -> str | None:
    """The innermost `async def` on the stack: the coroutine that made this sync call on the
    loop (the route or dependency to fix, whichever route the request was dispatched to).
    Walked only when the loop was blocked, never on the ordinary path."""
    while frame is not None:
        if frame.f_code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR):
            return f"{frame.f_globals.get('__name__', '?')}.{code_qualname(frame.f_code)}"
        frame = frame.f_back
    return None


def _counted(context: Any) -> RequestInfo | None:
    """The request a statement counts for: none outside requests, and none for the
    dialect's first-connect queries (server version and the like: SQLAlchemy runs them on
    a connection that may not autobegin while the pool opens it; that time is in the pool
    wait already)."""
    info = current_request.get()
    if info is None or not autobegins(context.root_connection):
        return None
    return info


def _do_execute(cursor: Any, statement: Any, parameters: Any, context: Any) -> bool:
    info = _counted(context)
    if info is None:
        return False
    return _timed(info, context.dialect.do_execute, context, cursor, statement, parameters)


def _do_execute_no_params(cursor: Any, statement: Any, context: Any) -> bool:
    info = _counted(context)
    if info is None:
        return False
    return _timed(info, context.dialect.do_execute_no_params, context, cursor, statement)


def _do_executemany(cursor: Any, statement: Any, parameters: Any, context: Any) -> bool:
    info = _counted(context)
    if info is None:
        return False
    return _timed(info, context.dialect.do_executemany, context, cursor, statement, parameters)


def install_engine_events() -> None:
    """Listen on every dialect in the process (idempotent).

    Dialect-level `do_execute*` events, not the connection-level cursor events: with
    those, SQLAlchemy joins a dispatcher onto every new Connection (once per session,
    so once per request), which cost more than the measurement itself.
    """
    global _installed
    if _installed:
        return
    event.listen(Engine, "do_execute", _do_execute)
    event.listen(Engine, "do_execute_no_params", _do_execute_no_params)
    event.listen(Engine, "do_executemany", _do_executemany)
    _installed = True


def watch_pool(engine: Engine, histogram: Any) -> None:
    """Time every checkout from `engine`'s pool into `histogram` (a labelled child).

    Sound for QueuePool and its async variant, whose waits both happen inside the timed
    call (see `gateway._compat.time_pool_checkout`).
    """
    time_pool_checkout(engine.pool, histogram.observe)
