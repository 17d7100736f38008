"""Database time per request, and the sync engine caught on the event loop thread.

Engine events are installed once per process on the `Engine` class, so every engine counts
(the gateway's two and any the legacy app creates itself). Each statement is added to the
request in flight via `gateway.context.current_request`, which reaches worker threads and
SQLAlchemy's async greenlets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import Engine, event

from gateway.context import current_request

__all__ = ["install_engine_events", "watch_pool"]

_STARTED = "gateway_statement_started"
_installed = False


def _before(
    conn: Any, _cursor: Any, _statement: Any, _params: Any, _context: Any, _many: Any
) -> None:
    if current_request.get() is not None:
        conn.info[_STARTED] = time.perf_counter()


def _after(
    conn: Any, _cursor: Any, _statement: Any, _params: Any, _context: Any, _many: Any
) -> None:
    info = current_request.get()
    if info is None:
        return
    started = conn.info.pop(_STARTED, None)
    if started is None:
        return
    elapsed = time.perf_counter() - started
    info.db_seconds += elapsed
    info.db_statements += 1
    # A sync driver with a running loop in this thread: the whole loop waited for it.
    if not conn.dialect.is_async and asyncio._get_running_loop() is not None:
        info.loop_blocking_seconds += elapsed


def install_engine_events() -> None:
    """Listen on every Engine in the process (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Engine, "before_cursor_execute", _before)
    event.listen(Engine, "after_cursor_execute", _after)
    _installed = True


def watch_pool(engine: Engine, histogram: Any) -> None:
    """Time every checkout from `engine`'s pool into `histogram` (a labelled child).

    The pool has no "before checkout" event, so the pool's own `_do_get` (waiting for a
    free connection, or opening a new one) is timed; sound for QueuePool and its async
    variant, whose waits both happen inside that call.
    """
    pool: Any = engine.pool
    original = getattr(pool, "_do_get", None)
    if original is None or getattr(original, "_gateway_timed", False):
        return

    def timed_get() -> Any:
        started = time.perf_counter()
        try:
            return original()
        finally:
            histogram.observe(time.perf_counter() - started)

    timed_get._gateway_timed = True  # type: ignore[attr-defined]
    pool._do_get = timed_get
