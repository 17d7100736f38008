"""RouteView: the one shape of an API route the gateway reads, whatever FastAPI built it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

__all__ = ["RouteView", "view_of"]


@dataclass(eq=False)
class RouteView:
    """An API route as served at its full path, read from a flat APIRoute or a route context.

    view.path, view.methods, view.endpoint        # "/users/{user_id}", {"GET"}, read_user
    await view.app(scope, receive, send)          # FastAPI's own handler for the route
    """

    original_route: APIRoute  # the route object the app's author declared
    path: str
    path_regex: Any
    path_format: str
    param_convertors: dict[str, Any]
    name: str
    methods: set[str]
    endpoint: Callable[..., Any]
    dependant: Dependant
    body_field: Any  # a FastAPI ModelField, or None
    response_field: Any  # a FastAPI ModelField, or None
    status_code: int | None
    response_class: type[Response]
    default_response_class: bool  # response_class was left to FastAPI's default
    response_options: dict[str, Any]  # response_model_include/exclude/by_alias/exclude_*
    dependency_overrides_provider: Any
    embed_body_fields: bool
    strict_content_type: bool
    max_body_size: int | None
    app: ASGIApp  # the route's own ASGI app, without the method check
    openapi_route: Any  # what fastapi.openapi.utils.get_openapi takes for this one route
    source: Any = field(repr=False)  # the APIRoute or FastAPI's route context read from

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Starlette's url_path_for on the route as served (prefixes included)."""
        return self.source.url_path_for(name, **path_params)


def _value(setting: Any) -> Any:
    return setting.value if isinstance(setting, DefaultPlaceholder) else setting


def view_of(source: Any, original: APIRoute, app: ASGIApp, openapi_route: Any) -> RouteView:
    """Read a RouteView from an APIRoute or a route context (they share FastAPI's names)."""
    response_class = source.response_class
    return RouteView(
        original_route=original,
        path=source.path,
        path_regex=source.path_regex,
        path_format=source.path_format,
        param_convertors=source.param_convertors,
        name=source.name or "",
        methods=set(source.methods or ()),
        endpoint=source.endpoint,
        dependant=source.dependant,
        body_field=source.body_field,
        response_field=source.response_field,
        status_code=source.status_code,
        response_class=_value(response_class),
        default_response_class=isinstance(response_class, DefaultPlaceholder),
        response_options={
            "include": source.response_model_include,
            "exclude": source.response_model_exclude,
            "by_alias": source.response_model_by_alias,
            "exclude_unset": source.response_model_exclude_unset,
            "exclude_defaults": source.response_model_exclude_defaults,
            "exclude_none": source.response_model_exclude_none,
        },
        dependency_overrides_provider=source.dependency_overrides_provider,
        # 0.113+; before, FastAPI embedded a lone body parameter by itself.
        embed_body_fields=bool(getattr(source, "_embed_body_fields", False)),
        # 0.132+ (strict JSON content type); before, a body without one was parsed as JSON.
        strict_content_type=bool(_value(getattr(source, "strict_content_type", False))),
        # 0.164+ (per-route body limit); no limit before.
        max_body_size=getattr(source, "max_body_size", None),
        app=app,
        openapi_route=openapi_route,
        source=source,
    )


def is_plain(route: BaseRoute) -> bool:
    """Not an API route: a mount, a websocket, a plain Starlette route."""
    return not isinstance(route, APIRoute)
