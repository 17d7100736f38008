"""The admin JSON API, mounted under settings.admin_prefix (default /_gateway).

GET  /_gateway/routes                 every route: implementations, mode, percent
PUT  /_gateway/routes/{route_key}     change one route's mode (bearer token required)
GET  /_gateway/history                the audit history, newest first
GET  /_gateway/report?window=5m       the migration report (gateway.report.ranking) over a window
GET  /_gateway/shadow                 what shadow mode found (bearer token required)
DELETE /_gateway/shadow/{route_key}   start a route's comparisons from 0 (bearer token required)

These handlers also run on the admin listener's own loop (gateway.admin.listener, with
GATEWAY_ADMIN_PORT): the flip and the history go through the follower's store for the
running loop, and what belongs to the app's loop (the shadow results, the report, the
judge's after_flip) is awaited there through `follower.on_own_loop`.

    curl -X PUT -H "Authorization: Bearer $TOKEN" \\
         -d '{"mode": "canary", "percent": 10, "reason": "try async"}' \\
         http://127.0.0.1:8000/_gateway/routes/GET%20%2Fusers%2F%7Buser_id%7D
"""

from __future__ import annotations

import json
import logging
import math
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from gateway.admin.auth import AdminAccess
from gateway.exceptions import FlagError, UnknownRouteError, first_line
from gateway.flags.follower import FlagFollower
from gateway.flags.store import FlagChange
from gateway.metrics.readings import parse_window
from gateway.modes import VALID_MODES

__all__ = [
    "REASON_LIMIT",
    "BodyError",
    "FlagBody",
    "ShadowResultsView",
    "admin_router",
    "parse_flag_body",
]

log = logging.getLogger("gateway.flags")


REASON_LIMIT = 500  # characters of a flip's reason kept in the history
_FIELDS = ("mode", "percent", "reason", "judge")
# Characters a reason may not hold: controls (a carriage return rewrites a terminal line),
# lone surrogates (not encodable), and the bidirectional overrides that reorder a line.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class FlagBody:
    """The body of PUT /routes/{route_key}: `{"mode": ..., "percent": ..., "reason": ...}`."""

    mode: str
    percent: float | None = None
    reason: str = ""
    judge: bool | None = None  # False: the canary judge leaves this canary alone


class BodyError(ValueError):
    """One refused field of an admin body: where, why, and the error type FastAPI would use."""

    def __init__(self, loc: list[str | int], msg: str, type_: str) -> None:
        super().__init__(msg)
        self.loc, self.msg, self.type = loc, msg, type_

    def as_dict(self) -> dict[str, Any]:
        # FastAPI's validation error shape, without the input: it may not even be JSON.
        return {"loc": self.loc, "msg": self.msg, "type": self.type}


def read_json_object(raw: bytes, fields: tuple[str, ...], example: str) -> dict[str, Any]:
    """An admin body as a JSON object holding only `fields`; BodyError otherwise (pure).

    `example` is shown when the body is not JSON at all.
    """
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BodyError(
            ["body"],
            f"The body is not valid JSON ({first_line(exc)}); expected an object such as "
            f"{example}.",
            "json_invalid",
        ) from None
    if not isinstance(data, dict):
        raise BodyError(
            ["body"],
            f"The body is a JSON {type(data).__name__}; expected an object with "
            f"{', '.join(fields)}.",
            "model_attributes_type",
        )
    for name in data:
        if name not in fields:
            raise BodyError(
                ["body", str(name)],
                f"Extra inputs are not permitted: {str(name)[:40]!r}; "
                f"expected only {', '.join(fields)}.",
                "extra_forbidden",
            )
    return data


def parse_flag_body(raw: bytes) -> FlagBody:
    """Read a flip's body strictly; raise BodyError naming the field (pure, no I/O).

    Strict types: a percent is a JSON number (not a string, not a boolean), finite, and
    -0 is 0; a mode is a string; a reason is at most REASON_LIMIT printable characters.
    """
    data = read_json_object(raw, _FIELDS, '{"mode": "canary", "percent": 10, "reason": "why"}')
    if "mode" not in data:
        raise BodyError(
            ["body", "mode"],
            f"Field required: mode, one of {', '.join(VALID_MODES)}.",
            "missing",
        )
    mode = data["mode"]
    if not isinstance(mode, str):
        raise BodyError(
            ["body", "mode"],
            f"mode must be a string such as 'canary', got a JSON {_json_type(mode)}.",
            "string_type",
        )
    judge = data.get("judge")
    if judge is not None and not isinstance(judge, bool):
        raise BodyError(
            ["body", "judge"],
            f"judge must be true or false, got a JSON {_json_type(judge)}.",
            "bool_type",
        )
    reason = _reason(data.get("reason", ""))
    return FlagBody(mode, _percent(data.get("percent")), reason, judge)


def _percent(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BodyError(
            ["body", "percent"],
            f"percent must be a valid number from 0 to 100, got a JSON {_json_type(value)}.",
            "float_type",
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BodyError(
            ["body", "percent"],
            f"percent must be a finite number from 0 to 100, got {number}.",
            "finite_number",
        )
    return number + 0.0  # -0.0 is stored and shown as 0


def _reason(value: Any) -> str:
    if not isinstance(value, str):
        raise BodyError(
            ["body", "reason"],
            f"reason must be a string, got a JSON {_json_type(value)}.",
            "string_type",
        )
    if len(value) > REASON_LIMIT:
        raise BodyError(
            ["body", "reason"],
            f"reason has {len(value)} characters; expected at most {REASON_LIMIT}.",
            "string_too_long",
        )
    for position, char in enumerate(value):
        if unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI:
            raise BodyError(
                ["body", "reason"],
                f"reason holds the control character U+{ord(char):04X} at "
                f"position {position}; expected printable text on one line.",
                "string_pattern",
            )
    return value


def _json_type(value: Any) -> str:
    names = {bool: "boolean", str: "string", int: "number", float: "number"}
    names.update({dict: "object", list: "array", type(None): "null"})
    return names.get(type(value), type(value).__name__)


class ShadowResultsView(Protocol):
    """What the admin API reads and resets of shadow mode (gateway.shadow.results)."""

    async def report(self) -> dict[str, Any]: ...

    async def reset(self, key: str) -> None: ...


Describe = Callable[[], list[dict[str, Any]]]
ReportMaker = Callable[[], dict[str, Any]]
WindowReport = Callable[[float], dict[str, Any]]  # the window in seconds -> the report


def admin_router(
    follower: FlagFollower,
    access: AdminAccess,
    describe: Describe,
    report: WindowReport | None = None,
    shadow: ShadowResultsView | None = None,
    after_flip: Callable[[FlagChange, bool | None], Awaitable[None]] | None = None,
) -> APIRouter:
    """Routes mounted under settings.admin_prefix.

    `describe()` lists the routes, `report(seconds)` makes the migration report over the
    last `seconds` (None: metrics are off, and GET /report answers 404 saying so).
    """
    router = APIRouter(tags=["gateway admin"])
    # Dependencies as defaults: annotations are strings here and cannot name locals.
    reader = Depends(access.reader)
    writer = Depends(access.writer)

    @router.get("/routes")
    async def list_routes(_: str | None = reader) -> dict[str, Any]:
        """Every route with its implementations, mode and percent, and the store's state."""
        return {"routes": describe(), "store": follower.status()}

    @router.put("/routes/{route_key:path}")
    async def set_route(route_key: str, request: Request, actor: str = writer) -> JSONResponse:
        """Change one paired route's mode; the store records it and every worker follows."""
        try:
            body = parse_flag_body(await request.body())
            if access.tokens.appears_in(body.reason):
                raise BodyError(
                    ["body", "reason"],
                    "reason holds an admin token; the history is readable by every operator, "
                    "so nothing was recorded: leave tokens out, and replace that one.",
                    "value_error",
                )
        except BodyError as exc:
            return JSONResponse({"detail": [exc.as_dict()]}, status_code=422)
        try:
            change = await follower.change(
                route_key, body.mode, body.percent, actor=actor, reason=body.reason
            )
        except UnknownRouteError as exc:
            return JSONResponse(
                {"detail": str(exc), "suggestions": exc.suggestions}, status_code=404
            )
        except FlagError as exc:
            return _unprocessable(exc, route_key, body)
        except Exception as exc:
            return _store_unavailable(exc)
        if after_flip is not None:  # the canary judge's switch for this flip
            try:
                await follower.on_own_loop(after_flip(change, body.judge))
            except Exception as exc:
                return _store_unavailable(exc)
        return JSONResponse(change.as_dict())

    @router.get("/history")
    async def history(
        # Query() as defaults, not Annotated: FastAPI 0.100 with pydantic 2.x refuses those.
        limit: int = Query(100, ge=1, le=1000),
        route: str | None = Query(None, description="only this route key"),
        _: str | None = reader,
    ) -> JSONResponse:
        """The newest `limit` flag changes first."""
        try:
            rows = await follower.history(limit=limit, route=route)
        except Exception as exc:
            return _store_unavailable(exc)
        return JSONResponse({"history": [row.as_dict() for row in rows]})

    # Shadow results tell what requests did: a token always, whatever reads need.
    confidential = Depends(access.confidential)

    @router.get("/shadow")
    async def shadow_results(_: str = confidential) -> dict[str, Any]:
        """What shadow mode found per route: counts, learned noise, recent differences."""
        if shadow is None:
            return {"routes": []}
        return await follower.on_own_loop(shadow.report())

    @router.delete("/shadow/{route_key:path}")
    async def reset_shadow(route_key: str, actor: str = writer) -> JSONResponse:
        """Start one route's comparisons again from 0, in every worker."""
        if shadow is None:
            raise HTTPException(status_code=404, detail="Shadow mode is off in this gateway.")
        paired = [row["key"] for row in describe() if row.get("paired")]
        if route_key not in paired:  # only paired routes are shadowed
            exc = UnknownRouteError(route_key, paired)
            detail = f"{exc} Only paired routes have shadow results."
            return JSONResponse({"detail": detail, "suggestions": exc.suggestions}, 404)
        try:
            await follower.on_own_loop(shadow.reset(route_key))
        except Exception as exc:
            return _store_unavailable(exc, "the shadow store")
        log.info("shadow results of %s reset by %s", route_key, actor)
        return JSONResponse({"route": route_key, "reset": True, "by": actor})

    @router.get("/report")
    async def migration_report(
        window: str | None = Query(None, description="300, 300s, 5m (default 5m)"),
        _: str | None = reader,
    ) -> Any:
        """The migration report over a recent window (async; never takes a worker thread)."""
        if report is None:
            raise HTTPException(
                status_code=404, detail="This app has no gateway metrics (GATEWAY_METRICS=false?)."
            )
        try:
            seconds = parse_window(window)
        except ValueError as exc:
            detail = BodyError(["query", "window"], str(exc), "value_error").as_dict()
            return JSONResponse({"detail": [detail]}, status_code=422)
        return await follower.on_own_loop(_call(report, seconds))

    return router


async def _call(report: WindowReport, seconds: float) -> dict[str, Any]:
    return report(seconds)


def _unprocessable(exc: FlagError, route_key: str, body: FlagBody) -> JSONResponse:
    # Same shape as FastAPI's own validation errors, so clients parse one format.
    loc: list[str | int] = ["body", exc.field]
    if exc.field == "route_key":
        loc = ["path", "route_key"]
    return JSONResponse({"detail": [BodyError(loc, str(exc), "value_error").as_dict()]}, 422)


def _store_unavailable(exc: Exception, store: str = "the flag store") -> JSONResponse:
    reason = first_line(exc)
    log.warning("admin request failed: %s unreachable (%s)", store, reason)
    return JSONResponse(
        {
            "detail": f"{store.capitalize()} is unreachable, so nothing was recorded ({reason}). "
            "Workers keep serving the last known flags; try again when the database is back."
        },
        status_code=503,
    )
