"""How legacy (`def`) routes are served: all of a request's sync work in one thread hand-off.

Plain FastAPI runs a `def` route with a sync generator dependency and a response_model in
four thread hand-offs (enter the dependency, call the endpoint, validate the response, leave
the dependency). Between them the request holds its pooled connection while it waits for a
thread, which deadlocks once requests outnumber the pool (FastAPI #3205). Here the body is
read on the event loop, then ONE call through `gateway.concurrency.run_sync` solves the
dependencies, calls the endpoint, serializes through the response model and closes every
generator dependency, so the session is back in the pool before the thread is released.
The response is sent on the loop, background tasks after it, as Starlette does. A route
behind an `async def` dependency on sync ones (auth on a sync session) takes two hand-offs
(gateway.legacy.solver); a route class that wraps FastAPI's handler runs its handler around
this one (gateway.legacy.route_class).

    fast_path_blocker(view)           # view: a gateway._compat.RouteView; None, or why not
    app, reason = legacy_app_for(view)  # the ASGI app that serves it, and why not the fast path
"""

from __future__ import annotations

import email.message
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

import anyio
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import FastAPIError
from fastapi.routing import APIRoute
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway._compat import (
    NO_BODY,
    RouteView,
    body_limit_error,
    endpoint_context,
    handling_exceptions,
    prepare_response_content,
    request_validation_error,
    response_validation_error,
    with_body_limit,
)
from gateway.concurrency import LegacyThreads, ThreadTiming, run_sync
from gateway.legacy.plan import (
    Step,
    fast_path_blocker,
    keep_fastapi_handler,
    make_plan,
    tree_blocker,
)
from gateway.legacy.route_class import wrapped_handler
from gateway.legacy.solver import Solver, await_loop_steps, sub_response
from gateway.request_info import current_request

__all__ = ["LegacyApp", "fast_path_blocker", "keep_fastapi_handler", "legacy_app_for"]

log = logging.getLogger("gateway.legacy")

Handled = tuple[Response, ExitStack | None]  # the response, and what closes after sending it
Entered = tuple[ExitStack, ExitStack]  # the first hand-off's (request, function) scopes

# FastAPI's own words for a dependency that swallowed the endpoint's exception.
_NOT_AWAITED = (
    "Response not awaited. There's a high chance that the application code is raising an "
    "exception and a dependency with yield has a block with a bare except, or a block with "
    "except Exception, and is not raising the exception again. Read more about it in the "
    "docs: https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/"
    "#dependencies-with-yield-and-except"
)
_DEFERRED = "gateway.deferred_exit"  # scope key: a streamed response's open dependencies
_MAX_PLANS = 64  # distinct dependency_overrides states remembered per route (tests only)


def legacy_app_for(
    view: RouteView, threads: LegacyThreads | None = None
) -> tuple[ASGIApp, str | None]:
    """The ASGI app for one legacy API route, and why it is not the fast path (or None).

    app, reason = legacy_app_for(view, threads)   # view from gateway._compat.route_views

    `threads` limits how many fast-path requests run in threads at once (None: anyio's
    default limiter, FastAPI's threadpool).
    """
    blocker = fast_path_blocker(view)
    if blocker is not None:
        return view.app, blocker
    return LegacyApp(view, threads), None


class LegacyApp:
    """Serves one legacy route with a single thread hand-off per request.

    app = LegacyApp(view)             # what legacy_app_for returns when nothing blocks it
    await app(scope, receive, send)   # an ASGI app, like FastAPI's per-route one

    A request whose `dependency_overrides` bring an async dependency into the tree is
    served by FastAPI's own handler (`fallback`) instead.
    """

    def __init__(self, view: RouteView, threads: LegacyThreads | None = None) -> None:
        self.view = view
        self.threads = threads
        self.fallback: ASGIApp = view.app
        self.dependant: Dependant = view.dependant
        if view.dependant.call is None:
            raise ValueError(f"route {view.path!r} has no endpoint to call")
        self.call: Callable[..., Any] = view.dependant.call
        self.overrides_provider: Any = view.dependency_overrides_provider
        self.body_field: Any = view.body_field
        self.embed_body_fields = view.embed_body_fields
        self.strict_content_type = view.strict_content_type
        self.status_code = view.status_code
        self.response_field: Any = view.response_field
        # FastAPI dumps JSON straight from the model (pydantic's serialize_json) where it can.
        self.dump_json = (
            self.response_field is not None
            and view.default_response_class
            and hasattr(self.response_field, "serialize_json")
        )
        self.response_class = view.response_class
        self.serialize_options = view.response_options
        self.max_body_size = view.max_body_size
        self.base_app = self._app_for(make_plan(self.dependant, None))
        self._apps: dict[tuple[int, ...], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        overrides = getattr(self.overrides_provider, "dependency_overrides", None)
        app = self._overridden_app(overrides) if overrides else self.base_app
        await app(scope, receive, send)

    def _overridden_app(self, overrides: dict[Any, Any]) -> ASGIApp:
        # Keyed by identity; the cached plan holds the callables, so ids are not reused.
        key = tuple(id(x) for item in overrides.items() for x in item)
        app = self._apps.get(key)
        if app is None:
            plan = make_plan(self.dependant, overrides)
            app = self.fallback if tree_blocker(plan) else self._app_for(plan)
            if len(self._apps) >= _MAX_PLANS:
                self._apps.clear()
            self._apps[key] = app
        return app

    def _app_for(self, plan: Step) -> ASGIApp:
        handle = self._handler_for(plan)

        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive, send)

            async def respond(scope: Scope, receive: Receive, send: Send) -> None:
                response, deferred = await handle(request)
                if deferred is None:
                    await response(scope, receive, send)
                else:
                    await _send_then_close(response, deferred, scope, receive, send)

            # Same structure as fastapi.routing.request_response: app handlers apply.
            await handling_exceptions(respond, request)(scope, receive, send)

        return with_body_limit(serve, self.max_body_size)

    def _handler_for(self, plan: Step) -> Callable[[Request], Awaitable[Handled]]:
        route = self.view.original_route
        if type(route).get_route_handler is APIRoute.get_route_handler:
            return partial(self._handle, plan)  # no coroutine of its own per request

        async def inner(request: Request) -> Response:
            response, deferred = await self._handle(plan, request)
            if deferred is not None:
                request.scope[_DEFERRED] = deferred
            return response

        # The route class's own handler runs around the fast path's (gateway.legacy.route_class).
        outer = wrapped_handler(route, inner)
        if outer is None:
            raise ValueError(f"route class {type(route).__name__} does not wrap its handler")

        async def wrapped(request: Request) -> Handled:
            try:
                response = await outer(request)
            except BaseException as exc:
                deferred = request.scope.pop(_DEFERRED, None)
                if deferred is not None:
                    with anyio.CancelScope(shield=True):
                        await run_sync(deferred.__exit__, type(exc), exc, exc.__traceback__)
                raise
            return response, request.scope.pop(_DEFERRED, None)

        return wrapped

    async def _handle(self, plan: Step, request: Request) -> Handled:
        body = await self._read_body(request) if self.body_field is not None else NO_BODY
        awaited: dict[int, Any] = {}
        cache: dict[Any, Any] = {}
        if plan.loop_steps:
            await await_loop_steps(plan, request, cache, awaited)
        entered: Entered | None = None
        failure: Exception | None = None
        early: ThreadTiming | None = None
        if plan.early_steps:
            # An async dependency takes sync ones: solve those, await it, then the rest.
            opened, early = await run_sync(
                self._run_early, plan, request, cache, awaited, threads=self.threads
            )
            if isinstance(opened, Exception):
                raise opened
            entered = opened
            try:
                await await_loop_steps(plan, request, cache, awaited, after_thread=True)
            except Exception as exc:
                failure = exc  # raised in the hand-off, through the dependencies entered
            except BaseException as exc:  # cancelled: close what the first hand-off opened
                with anyio.CancelScope(shield=True):
                    await run_sync(_close_entered, entered, exc)
                raise
        outcome, timing = await run_sync(
            self._run, plan, request, body, cache, awaited, entered, failure, threads=self.threads
        )
        info = current_request.get()
        if info is not None:
            info.thread = timing if early is None else _sum(early, timing)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    # -- on the event loop -------------------------------------------------------------

    async def _read_body(self, request: Request) -> Any:
        # fastapi.routing.get_request_handler's body reading for JSON bodies, same errors.
        try:
            body_bytes = await request.body()
            if not body_bytes:
                return NO_BODY
            content_type = request.headers.get("content-type")
            if not content_type:
                return body_bytes if self.strict_content_type else await request.json()
            message = email.message.Message()
            message["content-type"] = content_type
            if message.get_content_maintype() == "application":
                subtype = message.get_content_subtype()
                if subtype == "json" or subtype.endswith("+json"):
                    return await request.json()
            return body_bytes
        except json.JSONDecodeError as e:
            error = {
                "type": "json_invalid",
                "loc": ("body", e.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": e.msg},
            }
            raise request_validation_error([error], e.doc, self._endpoint_ctx(request)) from e
        except HTTPException:
            raise
        except Exception as e:
            if limit := body_limit_error(e, request.scope):
                raise limit from e
            raise HTTPException(
                status_code=400, detail="There was an error parsing the body"
            ) from e

    def _endpoint_ctx(self, request: Request) -> Any:
        path = self.dependant.path
        if path:
            path = request.scope.get("root_path", "").rstrip("/") + path
        return endpoint_context(self.call, request.method, path)

    # -- in the worker thread ----------------------------------------------------------

    def _run_early(
        self, plan: Step, request: Request, cache: dict[Any, Any], awaited: dict[int, Any]
    ) -> Entered | Exception:
        try:
            with ExitStack() as request_stack, ExitStack() as function_stack:
                stacks = (request_stack, function_stack)
                solver = Solver(request, NO_BODY, self.embed_body_fields, stacks, cache, awaited)
                solver.solve_early(plan)
                return request_stack.pop_all(), function_stack.pop_all()
        except Exception as exc:
            return exc
        return FastAPIError(_NOT_AWAITED)  # a dependency swallowed the error

    def _run(
        self,
        plan: Step,
        request: Request,
        body: Any,
        cache: dict[Any, Any],
        awaited: dict[int, Any],
        entered: Entered | None = None,
        failure: Exception | None = None,
    ) -> Handled | Exception:
        # Errors come back as values so the hand-off's timing is recorded on every path.
        try:
            return self._run_in_stacks(plan, request, body, cache, awaited, entered, failure)
        except Exception as exc:
            return exc

    def _run_in_stacks(
        self,
        plan: Step,
        request: Request,
        body: Any,
        cache: dict[Any, Any],
        awaited: dict[int, Any],
        entered: Entered | None,
        failure: Exception | None,
    ) -> Handled:
        response: Response | None = None
        with ExitStack() as request_stack:
            with ExitStack() as function_stack:
                if entered is not None:  # the first hand-off's, closed after this one's
                    request_stack.push(entered[0])
                    function_stack.push(entered[1])
                if failure is not None:
                    raise failure
                stacks = (request_stack, function_stack)
                solver = Solver(request, body, self.embed_body_fields, stacks, cache, awaited)
                if plan.needs_response:
                    solver.response = sub_response()
                values, errors = solver.solve(plan)
                if errors:
                    raise request_validation_error(
                        errors, None if body is NO_BODY else body, self._endpoint_ctx(request)
                    )
                response = self._response(request, plan.call(**values), solver)
            if isinstance(response, StreamingResponse):
                # Its body may still read from a dependency: close those after sending.
                return response, request_stack.pop_all()
        if response is None:
            raise FastAPIError(_NOT_AWAITED)
        return response, None

    def _response(self, request: Request, raw: Any, solver: Solver) -> Response:
        # fastapi.routing.get_request_handler's non-streaming branch.
        if isinstance(raw, Response):
            if raw.background is None:
                raw.background = solver.background_tasks
            return raw
        sub = solver.response
        sub_status = sub.status_code if sub is not None else None
        status = sub_status or self.status_code
        args: dict[str, Any] = {"background": solver.background_tasks}
        if status is not None:
            args["status_code"] = status
        content = self._serialize(request, raw)
        response: Response
        if self.dump_json:
            response = Response(content=content, media_type="application/json", **args)
        else:
            response = self.response_class(content, **args)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        if sub is not None:
            response.headers.raw.extend(sub.headers.raw)
        return response

    def _serialize(self, request: Request, content: Any) -> Any:
        # fastapi.routing.serialize_response, run in this thread instead of a new one.
        field = self.response_field
        if field is None:
            return jsonable_encoder(content)
        content = prepare_response_content(content, self.serialize_options)  # pydantic 1
        value, errors = field.validate(content, {}, loc=("response",))
        if errors:
            if not isinstance(errors, list):  # FastAPI < 0.113 could return one error
                errors = [errors]
            raise response_validation_error(errors, content, self._endpoint_ctx(request))
        if self.dump_json:
            return field.serialize_json(value, **self.serialize_options)
        if hasattr(field, "serialize"):
            return field.serialize(value, **self.serialize_options)
        return jsonable_encoder(value, **self.serialize_options)  # pydantic 1


def _close_entered(entered: Entered, exc: BaseException) -> None:
    request_stack, function_stack = entered
    try:
        function_stack.__exit__(type(exc), exc, exc.__traceback__)
    finally:
        request_stack.__exit__(type(exc), exc, exc.__traceback__)


def _sum(first: ThreadTiming, second: ThreadTiming) -> ThreadTiming:
    return ThreadTiming(
        first.queued + second.queued, first.wall + second.wall, first.cpu + second.cpu
    )


async def _send_then_close(
    response: Response, deferred: ExitStack, scope: Scope, receive: Receive, send: Send
) -> None:
    """Send a streamed response, then leave the dependencies it may read from (in a thread)."""
    try:
        await response(scope, receive, send)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            suppressed, _ = await run_sync(deferred.__exit__, type(exc), exc, exc.__traceback__)
        if not suppressed:
            raise
        raise FastAPIError(_NOT_AWAITED) from exc
    with anyio.CancelScope(shield=True):
        await run_sync(deferred.close)
