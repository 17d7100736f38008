"""Which legacy routes the one-hand-off path can serve, and the plan it follows (pure).

At build time each legacy route's dependency tree is turned into a `Step` tree once: what
FastAPI would otherwise look up again on every request (overrides, cache keys, which
dependencies are generators, which `async def` dependencies are awaited on the loop). An
`async def` dependency that takes only the request and other such dependencies is awaited
before the hand-off; one that also takes sync dependencies taking only the request (an auth
dependency on a sync `Session` generator) is awaited after a first hand-off that solves
those. `fast_path_blocker` says why a route must keep FastAPI's handler.

    fast_path_blocker(view)    # view: a gateway._compat.RouteView; None, or why not
    make_plan(view.dependant, app.dependency_overrides)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from gateway._compat import (
    RouteView,
    cache_key,
    concurrency_limit,
    dependency_scope,
    is_async_gen,
    is_coroutine,
    is_gen,
    override_dependant,
)
from gateway.legacy.route_class import route_class_refusal
from gateway.naming import qualified_name

__all__ = [
    "Step",
    "fast_path_blocker",
    "keep_fastapi_handler",
    "make_plan",
    "tree_blocker",
]

F = TypeVar("F", bound=Callable[..., Any])


def keep_fastapi_handler(endpoint: F) -> F:
    """Serve this legacy route with FastAPI's own handler, not the one-hand-off fast path.

    For a route that needs FastAPI's closing order: its `yield` dependencies stay open
    until the response is sent and its background tasks have run.

    @router.get("/report")
    @keep_fastapi_handler
    def report(db: Session = Depends(get_db)): ...
    """
    endpoint.__gateway_keep_fastapi_handler__ = True  # type: ignore[attr-defined]
    return endpoint


def fast_path_blocker(view: RouteView) -> str | None:
    """Why the fast path cannot serve this route, or None when it can (decided at build).

    fast_path_blocker(gw.entries["GET /users/{user_id}"].legacy.context)  # -> None
    """
    route = view.original_route
    if not isinstance(route, APIRoute):
        return f"{type(route).__name__} is not an APIRoute"
    if type(route).get_route_handler is not APIRoute.get_route_handler:
        refusal = route_class_refusal(route)
        if refusal is not None:
            return refusal
    dependant: Dependant | None = view.dependant
    if dependant is None or dependant.call is None:
        return "the route has no dependant"
    call = dependant.call
    if getattr(call, "__gateway_keep_fastapi_handler__", False):
        return "the endpoint is marked with gateway.legacy.keep_fastapi_handler"
    if is_gen(dependant) or is_async_gen(dependant):
        return "the endpoint is a generator (a streamed response)"
    if is_coroutine(dependant):
        return "the endpoint is 'async def': FastAPI runs it on the event loop"
    body_field = view.body_field
    if body_field is not None and isinstance(body_field.field_info, params.Form):
        return "the body is a form or has files"
    return tree_blocker(make_plan(dependant, None))


def tree_blocker(step: Step) -> str | None:
    """Why a solved dependency tree needs FastAPI's async solver, or None (pure)."""
    for found in _walk(step):
        if found.on_loop:
            continue  # awaited on the loop before the hand-off
        dependant = found.dependant
        if is_async_gen(dependant):
            return f"{_name(found.call)} is an async dependency with yield"
        if is_coroutine(dependant):
            return (
                f"{_name(found.call)} is async and takes request parameters, a Response, "
                "BackgroundTasks, or sync dependencies that take more than the request"
            )
        if concurrency_limit(dependant) is not None:
            return f"{_name(found.call)} has a concurrency limit"
        if dependant.websocket_param_name is not None:
            return f"{_name(found.call)} takes a WebSocket"
    return None


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """One callable to solve, with what FastAPI would look up again on every request."""

    dependant: Dependant  # the overriding dependant if overridden: its params and sub-steps
    call: Callable[..., Any]
    steps: tuple[Step, ...]
    name: str | None = None
    cache_key: Any = None  # from the original dependant, as FastAPI keys its cache
    use_cache: bool = True
    enter: Callable[..., Any] | None = None  # contextmanager(call) for `yield` dependencies
    function_scope: bool = False
    needs_response: bool = False  # somewhere in the tree takes a `Response` parameter
    # An `async def` without yield whose tree takes only Request / SecurityScopes (e.g. the
    # fastapi.security schemes): awaited on the loop before the hand-off.
    on_loop: bool = False
    loop_steps: bool = False  # some step in this tree is on_loop
    # An on_loop step with sync dependencies (taking only the request) in its tree: those
    # are solved in a first hand-off, then it is awaited.
    needs_thread: bool = False
    early_steps: bool = False  # some step in this tree needs_thread


def make_plan(dependant: Dependant, overrides: Mapping[Any, Any] | None) -> Step:
    """The Step tree of `dependant` with `overrides` (an app's dependency_overrides) applied."""
    if dependant.call is None:
        raise ValueError(f"dependant {dependant.name!r} has no call to plan")
    steps = tuple(_sub_step(sub, overrides) for sub in dependant.dependencies)
    return Step(
        dependant,
        dependant.call,
        steps,
        needs_response=bool(dependant.response_param_name) or any(s.needs_response for s in steps),
        loop_steps=any(s.on_loop or s.loop_steps for s in steps),
        early_steps=any(s.needs_thread or s.early_steps for s in steps),
    )


def _sub_step(sub: Dependant, overrides: Mapping[Any, Any] | None) -> Step:
    use = sub
    if overrides and sub.call in overrides:
        # As FastAPI's solve_dependencies does per request, once per overrides state here.
        use = override_dependant(sub, overrides[sub.call])
    step = make_plan(use, overrides)
    generator = is_gen(use)
    on_loop = (
        is_coroutine(use)
        and not is_async_gen(use)
        and _takes_only_the_request(use)
        and all(s.on_loop or _request_only_sync(s) for s in step.steps)
    )
    return Step(
        use,
        step.call,
        step.steps,
        name=sub.name,
        cache_key=cache_key(sub),
        use_cache=sub.use_cache,
        enter=contextmanager(step.call) if generator else None,
        function_scope=dependency_scope(sub) == "function",
        needs_response=step.needs_response,
        on_loop=on_loop,
        loop_steps=step.loop_steps,
        needs_thread=on_loop and any(not s.on_loop or s.needs_thread for s in step.steps),
        early_steps=step.early_steps,
    )


def _request_only_sync(step: Step) -> bool:
    """A sync dependency whose whole tree takes only the request: it cannot fail validation."""
    dependant = step.dependant
    return (
        not is_coroutine(dependant)
        and not is_async_gen(dependant)
        and _takes_only_the_request(dependant)
        and all(_request_only_sync(s) for s in step.steps)
    )


def _takes_only_the_request(dependant: Dependant) -> bool:
    return not (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.background_tasks_param_name
        or dependant.response_param_name
        or dependant.websocket_param_name
        or concurrency_limit(dependant) is not None
    )


def _walk(step: Step) -> Iterator[Step]:
    yield step
    for sub in step.steps:
        yield from _walk(sub)


def _name(call: Callable[..., Any]) -> str:
    return qualified_name(call)
