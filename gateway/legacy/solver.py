"""Solving a legacy route's dependencies: the `async def` steps awaited on the loop first
(`await_loop_steps`), then FastAPI's `solve_dependencies` for the tree of sync callables in
the worker thread (`Solver`).

    solver = Solver(request, body, embed_body_fields, stacks, cache, awaited)
    values, errors = solver.solve(plan)      # in the hand-off's thread (gateway.legacy.fast_path)
"""

from __future__ import annotations

from collections.abc import Coroutine
from contextlib import ExitStack
from typing import Any, TypeVar

from fastapi.background import BackgroundTasks
from fastapi.dependencies.models import Dependant
from fastapi.security import SecurityScopes
from starlette.requests import Request
from starlette.responses import Response

from gateway._compat import body_to_args, oauth_scopes, params_to_args
from gateway.legacy.plan import Step

T = TypeVar("T")

__all__ = ["Solver", "await_loop_steps", "sub_response"]


class Solver:
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


async def await_loop_steps(
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
            await await_loop_steps(sub, request, cache, awaited)


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


def sub_response() -> Response:
    """The `Response` parameter routes set status, headers and cookies on (as FastAPI's)."""
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
