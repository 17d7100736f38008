"""The rollout endpoints of the admin API (under settings.admin_prefix, bearer token to write).

PUT    /_gateway/rollouts/{route_key}   start: {"steps": [1, 5, 25, 50, 100], "hold": "10m"}
DELETE /_gateway/rollouts/{route_key}   stop where it is (the route keeps its flag)
GET    /_gateway/rollouts               every canary's judge state, plan and step

    curl -X PUT -H "Authorization: Bearer $TOKEN" -d '{"steps": "1,5,25,50,100", "hold": "10m"}' \\
         http://127.0.0.1:8000/_gateway/rollouts/GET%20%2Fusers%2F%7Buser_id%7D
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.admin.api import REASON_LIMIT, BodyError, read_json_object
from gateway.admin.auth import AdminAccess
from gateway.canary.judge import CanaryJudge
from gateway.canary.rollout import RolloutPlan
from gateway.exceptions import FlagError, UnknownRouteError, first_line

__all__ = ["parse_rollout_body", "rollout_router"]

_FIELDS = ("steps", "hold", "reason")


def parse_rollout_body(raw: bytes) -> tuple[RolloutPlan, str]:
    """The plan and reason of a PUT /rollouts body; BodyError naming the field (pure)."""
    data = read_json_object(raw, _FIELDS, '{"steps": [1, 5, 25, 50, 100], "hold": "10m"}')
    for name in ("steps", "hold"):
        if name not in data:
            raise BodyError(["body", name], f"Field required: {name}.", "missing")
    steps, hold, reason = data["steps"], data["hold"], data.get("reason", "")
    numbers = isinstance(steps, list) and all(
        isinstance(s, int | float) and not isinstance(s, bool) for s in steps
    )
    if not (numbers or isinstance(steps, str)):
        raise BodyError(
            ["body", "steps"],
            "steps must be a list of percentages or a string such as '1,5,25,50,100'.",
            "list_type",
        )
    if isinstance(hold, bool) or not isinstance(hold, int | float | str):
        raise BodyError(["body", "hold"], "hold must be seconds or a duration such as '10m'.",
                        "float_type")  # fmt: skip
    if not isinstance(reason, str) or len(reason) > REASON_LIMIT or not reason.isprintable():
        raise BodyError(
            ["body", "reason"],
            f"reason must be printable text on one line, at most {REASON_LIMIT} characters.",
            "string_type",
        )
    try:
        plan = RolloutPlan.parse(steps, hold)
    except (ValueError, OverflowError) as exc:
        field = "hold" if str(exc).startswith("hold") else "steps"
        raise BodyError(["body", field], str(exc), "value_error") from None
    return plan, reason


def rollout_router(judge: CanaryJudge, access: AdminAccess) -> APIRouter:
    """PUT, DELETE and GET /rollouts, mounted with the admin routes."""
    router = APIRouter(tags=["gateway admin"])
    reader = Depends(access.reader)
    writer = Depends(access.writer)

    @router.get("/rollouts")
    async def list_rollouts(_: str | None = reader) -> dict[str, Any]:
        """Every route the judge keeps a state for: judged, off, rolling out, rolled back."""
        return {"canaries": {k: s.as_dict() for k, s in sorted(judge.states.items())}}

    @router.put("/rollouts/{route_key:path}")
    async def start(route_key: str, request: Request, actor: str = writer) -> JSONResponse:
        """Start a rollout: the route goes to the first step now, the judge does the rest."""
        try:
            plan, reason = parse_rollout_body(await request.body())
        except BodyError as exc:
            return JSONResponse({"detail": [exc.as_dict()]}, status_code=422)
        try:
            change = await judge.start_rollout(route_key, plan, actor=actor, reason=reason)
        except UnknownRouteError as exc:
            return JSONResponse(
                {"detail": str(exc), "suggestions": exc.suggestions}, status_code=404
            )
        except FlagError as exc:
            detail = BodyError(["path", "route_key"], str(exc), "value_error").as_dict()
            return JSONResponse({"detail": [detail]}, status_code=422)
        except Exception as exc:
            return _unavailable(exc)
        return JSONResponse(
            {"change": change.as_dict(), "canary": judge.states[route_key].as_dict()}
        )

    @router.delete("/rollouts/{route_key:path}")
    async def stop(route_key: str, actor: str = writer) -> JSONResponse:
        """Stop a rollout where it is; the judge keeps judging the canary."""
        try:
            stopped = await judge.stop_rollout(route_key, actor=actor)
        except Exception as exc:
            return _unavailable(exc)
        if stopped is None:
            return JSONResponse(
                {"detail": f"No rollout of {route_key!r} is running; nothing was stopped."},
                status_code=404,
            )
        return JSONResponse({"canary": stopped.as_dict()})

    return router


def _unavailable(exc: Exception) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"The database is unreachable, so nothing was recorded "
            f"({first_line(exc)}); try again when it is back."
        },
        status_code=503,
    )
