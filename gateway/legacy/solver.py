"""Solving a legacy route's dependencies: the `async def` steps awaited on the loop
(`await_loop_steps`), FastAPI's `solve_dependencies` for the sync callables in the worker
thread (`Solver`). An `async def` step that takes sync dependencies (an auth dependency on a
sync `Session` generator) is awaited between two hand-offs: the first solves its sync
dependencies (`Solver.solve_early`), the second the rest, with the same per-request cache.

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
            solved = self._solved(sub, sub_values)
            if sub.name is not None:
                values[sub.name] = solved
        self._params(step.dependant, values, errors)
        return values, errors

    def solve_early(self, step: Step) -> None:
        """The first hand-off: the sync dependencies of the on-loop steps that take them."""
        for sub in step.steps:
            if sub.needs_thread:
                self._solve_loop_deps(sub)
            elif not sub.on_loop and sub.early_steps:
                self.solve_early(sub)

    def _solve_loop_deps(self, step: Step) -> None:
        for sub in step.steps:
            if not sub.on_loop:
                # Their trees take only the request (plan._request_only_sync): no errors.
                sub_values, _ = self.solve(sub)
                self.awaited[id(sub)] = self._solved(sub, sub_values)
            elif sub.needs_thread:
                self._solve_loop_deps(sub)

    def _solved(self, sub: Step, sub_values: dict[str, Any]) -> Any:
        cache = self.cache
        if sub.use_cache and sub.cache_key in cache:
            solved = cache[sub.cache_key]
        elif sub.enter is not None:
            stack = self.stacks[sub.function_scope]
            solved = stack.enter_context(sub.enter(**sub_values))
        else:
            solved = sub.call(**sub_values)
        if sub.cache_key not in cache:
            cache[sub.cache_key] = solved
        return solved

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
    step: Step,
    request: Request,
    cache: dict[Any, Any],
    awaited: dict[int, Any],
    *,
    after_thread: bool = False,
) -> None:
    """Await the tree's on-loop dependencies, in the order FastAPI's solver meets them:
    before the first hand-off those taking no sync dependency, after it the others."""
    for sub in step.steps:
        if sub.on_loop and (after_thread or not sub.needs_thread):
            await _await_step(sub, request, cache, awaited)
        elif sub.on_loop or (sub.early_steps if after_thread else sub.loop_steps):
            await await_loop_steps(sub, request, cache, awaited, after_thread=after_thread)


async def _await_step(
    step: Step, request: Request, cache: dict[Any, Any], awaited: dict[int, Any]
) -> Any:
    # fastapi.dependencies.utils.solve_dependencies for a request-only coroutine whose sync
    # dependencies the first hand-off solved (into `awaited`).
    if id(step) in awaited:
        return awaited[id(step)]
    values: dict[str, Any] = {}
    for sub in step.steps:
        solved = (
            await _await_step(sub, request, cache, awaited) if sub.on_loop else awaited[id(sub)]
        )
        if sub.name is not None:
            values[sub.name] = solved
    if step.use_cache and step.cache_key in cache:
        solved = cache[step.cache_key]
    else:
        dependant = step.dependant
        if dependant.http_connection_param_name:
            values[dependant.http_connection_param_name] = request
        if dependant.request_param_name:
            values[dependant.request_param_name] = request
        if dependant.security_scopes_param_name:
            scopes = SecurityScopes(scopes=oauth_scopes(dependant))
            values[dependant.security_scopes_param_name] = scopes
        solved = await step.call(**values)
    cache.setdefault(step.cache_key, solved)
    awaited[id(step)] = solved
    return solved


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
