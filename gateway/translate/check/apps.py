"""Where `gateway translate --check` finds the apps a route is sent through: the legacy app
(given as `package.main:app`, or found in the route module's packages: an `app` or a
`create_app()`), and the same app imported from the translated package, whose routers
import the twins.

    legacy_app, twin_app = apps_for(legacy_module, translated_module, "corpus.main:app")
    route_of(legacy_app, legacy_module.read_user)    # ("GET", "/users/{user_id}")
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from types import ModuleType
from typing import Any

from fastapi import FastAPI, params

from gateway._compat import RouteView, route_views

__all__ = [
    "AppNotFound",
    "apps_for",
    "counterpart",
    "dependency_parameters",
    "route_of",
    "session_provider",
]


class AppNotFound(Exception):
    """No app, or no twin of it, to send a route through (the message says what was tried)."""


def apps_for(
    legacy: ModuleType, translated: ModuleType, spec: str | None
) -> tuple[FastAPI, FastAPI]:
    """The legacy app and the app built from the translated package."""
    if spec is not None:
        module_name, _, attribute = spec.partition(":")
        candidates = [(module_name, attribute or "app")]
    else:
        parts = legacy.__name__.split(".")
        candidates = [
            (name, attribute)
            for end in range(len(parts) - 1, 0, -1)
            for name in (".".join(parts[:end]), ".".join(parts[:end]) + ".main")
            for attribute in ("app", "create_app")
        ]
    tried = []
    for module_name, attribute in candidates:
        legacy_app = _app_at(module_name, attribute)
        if legacy_app is None:
            tried.append(f"{module_name}:{attribute}")
            continue
        twin_name = counterpart(module_name, legacy.__name__, translated.__name__)
        twin_app = _app_at(twin_name, attribute) if twin_name else None
        if twin_app is None:
            raise AppNotFound(
                f"the legacy app is {module_name}:{attribute}, but the translated package has "
                f"no {twin_name or module_name}:{attribute}; translate the app's package "
                "with -o DIRECTORY (its __init__.py and main.py are copied there)"
            )
        return legacy_app, twin_app
    raise AppNotFound(
        f"no FastAPI app found at {', '.join(tried)}; give it with --app package.module:app"
    )


def _app_at(module_name: str, attribute: str) -> FastAPI | None:
    try:
        value = getattr(importlib.import_module(module_name), attribute, None)
    except ImportError:
        return None
    if callable(value) and not isinstance(value, FastAPI):
        try:
            value = value()
        except TypeError:  # a factory that needs arguments
            return None
    return value if isinstance(value, FastAPI) else None


def counterpart(module_name: str, source: str, target: str) -> str | None:
    """The module of `target`'s package tree that is `module_name` of `source`'s: with
    `tests.apps.corpus.api.users` translated as `corpus.api.users`, `tests.apps.corpus`
    is `corpus` (the prefix the translation dropped is replaced); None when unrelated."""
    if module_name == source:
        return target
    source_parts, target_parts = source.split("."), target.split(".")
    shared = 0
    while shared < min(len(source_parts), len(target_parts)) and (
        source_parts[-1 - shared] == target_parts[-1 - shared]
    ):
        shared += 1
    source_prefix = source_parts[: len(source_parts) - shared]
    target_prefix = target_parts[: len(target_parts) - shared]
    parts = module_name.split(".")
    if not shared or parts[: len(source_prefix)] != source_prefix:
        return None
    return ".".join(target_prefix + parts[len(source_prefix) :]) or None


def route_of(app: FastAPI, endpoint: Callable[..., Any]) -> tuple[str, str] | None:
    """The (method, path) of the app's route whose endpoint is `endpoint`."""
    for route in route_views(app.routes):
        if isinstance(route, RouteView) and route.endpoint is endpoint:
            return sorted(route.methods or {"GET"})[0], route.path_format
    return None


def dependency_parameters(function: Callable[..., Any], session: str | None) -> dict[str, str]:
    """Parameters whose value a dependency provides (`current_user = Depends(...)`), but the
    session: {name: provider}. Their annotations are not trusted for generated values."""
    found = {}
    for name, param in inspect.signature(function).parameters.items():
        dependency = _dependency(param)
        if dependency is not None and name != session:
            found[name] = getattr(dependency.dependency, "__name__", repr(dependency.dependency))
    return found


def session_provider(function: Callable[..., Any], session: str | None) -> Any:
    """What the session parameter `Depends` on (the legacy `get_db`), or None."""
    param = inspect.signature(function).parameters.get(session or "")
    dependency = _dependency(param) if param is not None else None
    return dependency.dependency if dependency is not None else None


def _dependency(param: inspect.Parameter) -> params.Depends | None:
    if isinstance(param.default, params.Depends):
        return param.default
    if typing.get_origin(param.annotation) is typing.Annotated:
        for extra in typing.get_args(param.annotation)[1:]:
            if isinstance(extra, params.Depends):
                return extra
    return None
