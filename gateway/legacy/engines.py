"""The legacy app's own database, read from its code: the engine its routes reach.

    engines = legacy_engines(served_routes(app), app.dependency_overrides)  # [Engine(...)]
    pool_capacity(engines[0])                              # 15: pool_size + max_overflow

A legacy app opens its sessions through a dependency (`get_db`) that calls a `sessionmaker`
bound to an engine, or uses a module-level `Engine`. Both are found from the functions in
each route's dependency tree (through the app's `dependency_overrides`): the globals and
closure variables a function's code uses, then, when no function names one, every
module-level engine or session factory of the modules those functions live in. Nothing is
connected to: this only reads objects.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from gateway._compat import Engine, RouteView, pool_capacity, route_views
from gateway.concurrency import LegacyThreads
from gateway.logging import log_event
from gateway.routing.openapi import served_routes
from gateway.settings import Settings
from gateway.urls import mask_url

__all__ = ["legacy_concurrency", "legacy_engines", "size_legacy_threads"]

log = logging.getLogger("gateway.legacy")


def legacy_engines(
    routes: Sequence[BaseRoute], overrides: Mapping[Any, Any] | None = None
) -> list[Engine]:
    """The distinct sync engines the API routes' code reaches, most used first."""
    overrides = overrides or {}
    functions = [f for view in _views(routes) for f in _functions(view.dependant, overrides)]
    counts: dict[Engine, int] = {}
    for function in functions:
        for engine in _named_engines(function):
            counts[engine] = counts.get(engine, 0) + 1
    if not counts:  # no function names one: the module-level engines of their modules
        modules = {getattr(f, "__module__", None) for f in functions}
        for name in sorted(m for m in modules if m):
            for value in getattr(sys.modules.get(name), "__dict__", {}).values():
                found = _engine_of(value)
                if found is not None:
                    counts[found] = counts.get(found, 0) + 1
    return sorted(counts, key=lambda e: -counts[e])


def _views(routes: Sequence[BaseRoute]) -> Iterator[RouteView]:
    for view in route_views(routes):
        if isinstance(view, RouteView):
            yield view


def _functions(dependant: Dependant, overrides: Mapping[Any, Any]) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        call = overrides.get(dependant.call, dependant.call)
        found = inspect.unwrap(_plain(call))
        if inspect.isfunction(found):
            yield found
    for sub in dependant.dependencies:
        yield from _functions(sub, overrides)


def _plain(call: Any) -> Any:
    while hasattr(call, "func"):  # functools.partial
        call = call.func
    return call


def _named_engines(function: Any) -> Iterable[Engine]:
    try:
        used = inspect.getclosurevars(function)
    except (TypeError, ValueError):  # pragma: no cover - a function without plain code
        return
    for value in (*used.nonlocals.values(), *used.globals.values()):
        engine = _engine_of(value)
        if engine is not None:
            yield engine


def _engine_of(value: Any) -> Engine | None:
    """The sync engine behind an Engine, a sessionmaker or a scoped_session, else None."""
    if isinstance(value, Engine):
        return value
    factory = getattr(value, "session_factory", value)  # a scoped_session's sessionmaker
    kw = getattr(factory, "kw", None)
    bind = kw.get("bind") if isinstance(kw, dict) and callable(factory) else None
    return bind if isinstance(bind, Engine) else None


def legacy_concurrency(
    configured: int, fallback: int, capacity: int | None
) -> tuple[int, str | None]:
    """How many legacy requests may hold a thread at once, and a warning if any.

    `configured` is GATEWAY_LEGACY_CONCURRENCY (0: unset), `fallback` the gateway's own pool
    (pool_size + max_overflow), `capacity` the legacy engine's (None: not readable). A
    legacy request holds one of its app's connections, so more threads than that pool
    lends only wait in the pool, each holding a thread.
    """
    if capacity is None:
        return configured or fallback, None
    if not configured:
        return capacity, None
    if configured > capacity:
        return configured, (
            f"GATEWAY_LEGACY_CONCURRENCY={configured} exceeds the legacy app's engine pool "
            f"({capacity} connections: pool_size + max_overflow); the requests beyond it "
            f"wait in that pool holding a thread each. Expected at most {capacity}: unset it "
            "to follow the pool, or raise the legacy engine's pool"
        )
    return configured, None


def size_legacy_threads(
    threads: LegacyThreads, settings: Settings, legacy: FastAPI, notes: list[str]
) -> None:
    """Size `threads` from the legacy app's most used engine when its pool can be read
    (else GATEWAY_LEGACY_CONCURRENCY, else the gateway's pool); log a warning, and add it
    to `notes` (what `gateway routes` prints), when GATEWAY_LEGACY_CONCURRENCY exceeds it."""
    engines = legacy_engines(served_routes(legacy), legacy.dependency_overrides)
    capacity = pool_capacity(engines[0]) if engines else None
    threads.size, warning = legacy_concurrency(
        settings.legacy_concurrency, settings.pool_size + settings.max_overflow, capacity
    )
    if warning is not None:
        log.warning("%s", warning)
        notes.append(warning)
    elif capacity is not None and not settings.legacy_concurrency:
        log_event(
            "legacy concurrency from the legacy app's engine pool",
            legacy_concurrency=threads.size,
            engine=mask_url(engines[0].url),
        )
