"""OpenTelemetry: which implementation served a request, on the span that is active for it.

    tag_span("GET /users/{user_id}", Implementation.ASYNC, flag)   # from the dispatch
    record_twin("GET /users/{user_id}", started_ns, ended_ns, "same", "")   # from shadow

With OpenTelemetry installed (`pip install 'gateway[otel]'`) and a span recording for the
request (the ASGI or FastAPI instrumentation's server span), the dispatch sets on it:

    gateway.route            the route key, "GET /users/{user_id}"
    gateway.implementation   legacy or async: the side that served the request
    gateway.mode             the route's mode (legacy, async, canary, shadow); a route with
                             one implementation only: that implementation

and, in shadow, each run of the async twin is a child span `gateway.shadow` (from its start
to the end of its run) with `gateway.shadow.outcome` (same, different, candidate_error,
skipped) and, for a skip, `gateway.shadow.reason`; a twin's error sets the span's status
to ERROR with the exception's type only (its message may hold a user's data).

Without OpenTelemetry both names are None, nothing of it is imported, and the dispatch pays
one `is not None` per request. Installed but with no span recording (no SDK, or a request
outside any trace), a request pays one context lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from gateway.modes import Implementation

if TYPE_CHECKING:
    from gateway.flags.table import Flag

__all__ = ["record_twin", "tag_span"]

TagSpan = Callable[[str, Implementation, "Flag | None"], None]
RecordTwin = Callable[[str, int, int, str, str], None]


def _hooks() -> tuple[TagSpan | None, RecordTwin | None]:
    if find_spec("opentelemetry") is None or find_spec("opentelemetry.trace") is None:
        return None, None
    from opentelemetry import trace

    from gateway._version import __version__

    current_span = trace.get_current_span
    # A proxy until the application sets its tracer provider, then that provider's tracer.
    tracer = trace.get_tracer("gateway", __version__)
    error = trace.StatusCode.ERROR

    def tag(key: str, implementation: Implementation, flag: Flag | None) -> None:
        span = current_span()
        if span.is_recording():
            span.set_attributes(
                {
                    "gateway.route": key,
                    "gateway.implementation": implementation.value,
                    "gateway.mode": flag.mode.value if flag is not None else implementation.value,
                }
            )

    def twin(key: str, started_ns: int, ended_ns: int, outcome: str, reason: str) -> None:
        # Inside a traced request only; its span may have ended (a read's twin runs after
        # the response), and the twin's span is still its child, in the same trace.
        if not current_span().get_span_context().is_valid:
            return
        attributes: dict[str, Any] = {
            "gateway.route": key,
            "gateway.implementation": Implementation.ASYNC.value,
            "gateway.mode": "shadow",
            "gateway.shadow.outcome": outcome,
        }
        if outcome == "skipped":
            attributes["gateway.shadow.reason"] = reason
        span = tracer.start_span("gateway.shadow", attributes=attributes, start_time=started_ns)
        if outcome == "candidate_error":
            span.set_status(error, reason.partition(":")[0])
        span.end(end_time=ended_ns)

    return tag, twin


tag_span, record_twin = _hooks()
