"""How legacy (`def`) routes are served: all of a request's sync work in one thread hand-off.

Plain FastAPI runs a `def` route with a sync generator dependency and a response_model in
four thread hand-offs (enter the dependency, call the endpoint, validate the response, leave
the dependency). Between them the request holds its pooled connection while it waits for a
thread, which deadlocks once requests outnumber the pool (FastAPI #3205). Here the body is
read on the event loop, then ONE call through `gateway.concurrency.run_sync` solves the
dependencies, calls the endpoint, serializes through the response model and closes every
generator dependency, so the session is back in the pool before the thread is released.
The response is sent on the loop, background tasks after it, as Starlette does.

    fast_path_blocker(view)           # view: a gateway.compat.RouteView; None, or why not
    app, reason = legacy_app_for(view)  # the ASGI app that serves it, and why not the fast path
"""

from __future__ import annotations

import email.message
import json
import logging
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from typing import Any, TypeVar

import anyio
from fastapi.background import BackgroundTasks
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import FastAPIError
from fastapi.security import SecurityScopes
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.compat import (
    NO_BODY,
    RouteView,
    body_limit_error,
    body_to_args,
    endpoint_context,
    handling_exceptions,
    oauth_scopes,
    params_to_args,
    request_validation_error,
    response_validation_error,
    with_body_limit,
)
from gateway.concurrency import LegacyThreads, run_sync
from gateway.legacy_plan import (
    Step,
    fast_path_blocker,
    keep_fastapi_handler,
    make_plan,
    tree_blocker,
)
from gateway.request_info import current_request

__all__ = ["LegacyApp", "fast_path_blocker", "keep_fastapi_handler", "legacy_app_for"]

T = TypeVar("T")
log = logging.getLogger("gateway.legacy")

# FastAPI's own words for a dependency that swallowed the endpoint's exception.
_NOT_AWAITED = (
    "Response not awaited. There's a high chance that the application code is raising an "
    "exception and a dependency with yield has a block with a bare except, or a block with "
    "except Exception, and is not raising the exception again. Read more about it in the "
    "docs: https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/"
    "#dependencies-with-yield-and-except"
)
_MAX_PLANS = 64  # distinct dependency_overrides states remembered per route (tests only)


def legacy_app_for(
    view: RouteView, threads: LegacyThreads | None = None
) -> tuple[ASGIApp, str | None]:
    """The ASGI app for one legacy API route, and why it is not the fast path (or None).

    app, reason = legacy_app_for(view, threads)   # view from gateway.compat.route_views

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
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive, send)

            async def respond(scope: Scope, receive: Receive, send: Send) -> None:
                response, deferred = await self._handle(plan, request)
                if deferred is None:
                    await response(scope, receive, send)
                else:
                    await _send_then_close(response, deferred, scope, receive, send)

            # Same structure as fastapi.routing.request_response: app handlers apply.
            await handling_exceptions(respond, request)(scope, receive, send)

        return with_body_limit(serve, self.max_body_size)

    async def _handle(self, plan: Step, request: Request) -> tuple[Response, ExitStack | None]:
        body = await self._read_body(request) if self.body_field is not None else NO_BODY
        awaited: dict[int, Any] = {}
        cache: dict[Any, Any] = {}
        if plan.loop_steps:
            await _await_loop_steps(plan, request, cache, awaited)
        outcome, timing = await run_sync(
            self._run, plan, request, body, cache, awaited, threads=self.threads
        )
        info = current_request.get()
        if info is not None:
            info.thread = timing
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

    def _run(
        self,
        plan: Step,
        request: Request,
        body: Any,
        cache: dict[Any, Any],
        awaited: dict[int, Any],
    ) -> tuple[Response, ExitStack | None] | Exception:
        # Errors come back as values so the hand-off's timing is recorded on every path.
        try:
            return self._run_in_stacks(plan, request, body, cache, awaited)
        except Exception as exc:
            return exc

    def _run_in_stacks(
        self,
        plan: Step,
        request: Request,
        body: Any,
        cache: dict[Any, Any],
        awaited: dict[int, Any],
    ) -> tuple[Response, ExitStack | None]:
        response: Response | None = None
        with ExitStack() as request_stack:
            with ExitStack() as function_stack:
                stacks = (request_stack, function_stack)
                solver = _Solver(request, body, self.embed_body_fields, stacks, cache, awaited)
                if plan.needs_response:
                    solver.response = _sub_response()
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

    def _response(self, request: Request, raw: Any, solver: _Solver) -> Response:
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
        value, errors = field.validate(content, {}, loc=("response",))
        if errors:
            if not isinstance(errors, list):  # FastAPI < 0.113 could return one error
                errors = [errors]
            raise response_validation_error(errors, content, self._endpoint_ctx(request))
        serializer = field.serialize_json if self.dump_json else field.serialize
        return serializer(value, **self.serialize_options)


class _Solver:
    """fastapi.dependencies.utils.solve_dependencies for a tree of sync callables."""

    __slots__ = (
        "awaited",
        "background_tasks",
        "body",
        "cache",
        "embed_body_fields",
        "request",
        "response",
        "stacks",
    )

    def __init__(
        self,
        request: Request,
        body: Any,
        embed_body_fields: bool,
        stacks: tuple[ExitStack, ExitStack],
        cache: dict[Any, Any],
        awaited: dict[int, Any],
    ) -> None:
        self.request = request
        self.body = body
        self.embed_body_fields = embed_body_fields
        self.cache = cache  # FastAPI's per-request dependency cache, shared with the loop
        self.awaited = awaited  # values of the on-loop steps, by id(step)
        self.stacks = stacks  # (request scope, function scope), indexed by function_scope
        self.background_tasks: BackgroundTasks | None = None
        self.response: Response | None = None

    def solve(self, step: Step) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        cache = self.cache
        for sub in step.steps:
            if sub.on_loop:
                solved = self.awaited[id(sub)]
                if sub.name is not None:
                    values[sub.name] = solved
                continue
            sub_values, sub_errors = self.solve(sub)
            if sub_errors:
                errors.extend(sub_errors)
                continue
            if sub.use_cache and sub.cache_key in cache:
                solved = cache[sub.cache_key]
            elif sub.enter is not None:
                stack = self.stacks[sub.function_scope]
                solved = stack.enter_context(sub.enter(**sub_values))
            else:
                solved = sub.call(**sub_values)
            if sub.name is not None:
                values[sub.name] = solved
            if sub.cache_key not in cache:
                cache[sub.cache_key] = solved
        self._params(step.dependant, values, errors)
        return values, errors

    def _params(self, dependant: Dependant, values: dict[str, Any], errors: list[Any]) -> None:
        request = self.request
        for fields, source in (
            (dependant.path_params, "path_params"),
            (dependant.query_params, "query_params"),
            (dependant.header_params, "headers"),
            (dependant.cookie_params, "cookies"),
        ):
            if fields:
                found, wrong = params_to_args(fields, getattr(request, source))
                values.update(found)
                errors += wrong
        if dependant.body_params:
            found, wrong = _complete(
                body_to_args(dependant.body_params, self.body, self.embed_body_fields)
            )
            values.update(found)
            errors.extend(wrong)
        if dependant.http_connection_param_name:
            values[dependant.http_connection_param_name] = request
        if dependant.request_param_name:
            values[dependant.request_param_name] = request
        if dependant.background_tasks_param_name:
            if self.background_tasks is None:
                self.background_tasks = BackgroundTasks()
            values[dependant.background_tasks_param_name] = self.background_tasks
        if dependant.response_param_name:
            values[dependant.response_param_name] = self.response
        if dependant.security_scopes_param_name:
            scopes = SecurityScopes(scopes=oauth_scopes(dependant))
            values[dependant.security_scopes_param_name] = scopes


async def _await_loop_steps(
    step: Step, request: Request, cache: dict[Any, Any], awaited: dict[int, Any]
) -> None:
    """Await the tree's on-loop dependencies, in the order FastAPI's solver meets them."""
    for sub in step.steps:
        if sub.on_loop:
            values = await _await_values(sub, request, cache)
            if sub.use_cache and sub.cache_key in cache:
                awaited[id(sub)] = cache[sub.cache_key]
            else:
                awaited[id(sub)] = await sub.call(**values)
            cache.setdefault(sub.cache_key, awaited[id(sub)])
        elif sub.loop_steps:
            await _await_loop_steps(sub, request, cache, awaited)


async def _await_values(step: Step, request: Request, cache: dict[Any, Any]) -> dict[str, Any]:
    # fastapi.dependencies.utils.solve_dependencies for a tree of request-only coroutines.
    values: dict[str, Any] = {}
    for sub in step.steps:
        sub_values = await _await_values(sub, request, cache)
        if sub.use_cache and sub.cache_key in cache:
            solved = cache[sub.cache_key]
        else:
            solved = await sub.call(**sub_values)
        if sub.name is not None:
            values[sub.name] = solved
        cache.setdefault(sub.cache_key, solved)
    dependant = step.dependant
    if dependant.http_connection_param_name:
        values[dependant.http_connection_param_name] = request
    if dependant.request_param_name:
        values[dependant.request_param_name] = request
    if dependant.security_scopes_param_name:
        scopes = SecurityScopes(scopes=oauth_scopes(dependant))
        values[dependant.security_scopes_param_name] = scopes
    return values


def _sub_response() -> Response:
    # The `Response` parameter routes set status, headers and cookies on (as FastAPI's).
    response = Response()
    del response.headers["content-length"]
    response.status_code = None  # type: ignore[assignment]
    return response


def _complete(coroutine: Coroutine[Any, Any, T]) -> T:
    """Finish a coroutine that never suspends: request_body_to_args on a JSON body."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("request_body_to_args suspended; the fast path takes JSON bodies only")


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
