"""What the gateway knows about the request in flight, for metrics and logs.

The metrics middleware makes one `RequestInfo` per request and sets it in the
`current_request` context variable; the dispatcher, the legacy fast path, worker threads and
SQLAlchemy's events all reach it there, and only there.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from gateway.concurrency import ThreadTiming
from gateway.modes import Implementation

__all__ = ["UNMATCHED", "RequestInfo", "current_request"]

UNMATCHED = "(unmatched)"


@dataclass(slots=True)
class RequestInfo:
    """Per-request facts: which route and implementation, and where time went."""

    method: str = ""  # the request's method
    request_path: str = ""  # the request's path (not a template)
    route: str = UNMATCHED  # the route key, e.g. "GET /users/{user_id}"
    path: str = UNMATCHED  # the full path template
    implementation: Implementation | None = None
    thread: ThreadTiming | None = None
    db_seconds: float = 0.0
    db_statements: int = 0
    loop_blocking_seconds: float = 0.0  # sync engine used on the event loop thread
    loop_blocker: str | None = None  # the `async def` that ran it ("module.qualname")
    lazy_loads: list[str] | None = None  # relationships a legacy request loaded lazily
    writes: Any = None  # a gateway.shadow.writeset.WriteCapture while gateway.shadow compares sides


current_request: ContextVar[RequestInfo | None] = ContextVar("gateway_request", default=None)
