"""The one place that knows FastAPI's, Starlette's and SQLAlchemy's internals and versions.

Modelled on `fastapi/_compat/`: this facade re-exports names from one submodule per version
family, and the rest of the gateway imports only from here.

- `versions`: the installed versions, as tuples;
- `starlette`: Starlette 0.27 (FastAPI 0.100) to 1.x;
- `dependencies`: FastAPI's dependency solving, 0.100-0.122 / 0.123-0.139 / 0.140+;
- `flat_routes` (FastAPI 0.100-0.136) and `nested_routes` (0.137+): each API route as a
  `RouteView`, the gateway's own view of a route;
- `body_limit`: FastAPI's request-body limit (0.164+), a no-op before;
- `fields`: whether a parameter field is required (pydantic 1 and 2);
- `pydantic`: pydantic 1.10 / 2.x (`Undefined`, `PYDANTIC_V1`);
- `sqlalchemy`: SQLAlchemy 1.4 / 2.0 / 2.1;
- `prometheus`: prometheus_client's registry, read for the generated metrics reference;
- `stdlib`: standard-library names new in Python 3.11 (`StrEnum`, `UTC`, `tomllib`,
  `timeout`, `wait_for`), with `py310` standing in for them on 3.10, and a private one used
  on hot paths.

    from gateway._compat import route_views
    for item in route_views(app.routes): ...   # RouteView for API routes, others as served
"""

from __future__ import annotations

from gateway._compat.body_limit import body_limit_error, with_body_limit
from gateway._compat.dependencies import (
    NO_BODY,
    Undefined,
    body_to_args,
    cache_key,
    concurrency_limit,
    dependency_scope,
    endpoint_context,
    is_async_gen,
    is_coroutine,
    is_gen,
    oauth_scopes,
    override_dependant,
    params_to_args,
    request_validation_error,
    response_validation_error,
)
from gateway._compat.fields import is_required
from gateway._compat.prometheus import registered_label_names
from gateway._compat.pydantic import PYDANTIC_V1, prepare_response_content
from gateway._compat.route_view import RouteView
from gateway._compat.sqlalchemy import (
    SYNC_POSTGRES_DRIVER,
    Engine,
    async_session_factory,
    autobegins,
    lazy_load_of,
    pool_capacity,
    time_pool_checkout,
)
from gateway._compat.starlette import get_route_path, handling_exceptions
from gateway._compat.stdlib import (
    UTC,
    StrEnum,
    code_qualname,
    running_loop,
    timeout,
    tomllib,
    wait_for,
)
from gateway._compat.versions import FASTAPI, PYDANTIC, SQLALCHEMY, STARLETTE

# FastAPI 0.137 keeps included routers nested instead of copying their routes.
if FASTAPI >= (0, 137, 0):
    from gateway._compat.nested_routes import route_views
else:  # pragma: no cover - FastAPI 0.100-0.136
    from gateway._compat.flat_routes import route_views

__all__ = [
    "FASTAPI",
    "NO_BODY",
    "PYDANTIC",
    "PYDANTIC_V1",
    "SQLALCHEMY",
    "STARLETTE",
    "SYNC_POSTGRES_DRIVER",
    "UTC",
    "Engine",
    "RouteView",
    "StrEnum",
    "Undefined",
    "async_session_factory",
    "autobegins",
    "body_limit_error",
    "body_to_args",
    "cache_key",
    "code_qualname",
    "concurrency_limit",
    "dependency_scope",
    "endpoint_context",
    "get_route_path",
    "handling_exceptions",
    "is_async_gen",
    "is_coroutine",
    "is_gen",
    "is_required",
    "lazy_load_of",
    "oauth_scopes",
    "override_dependant",
    "params_to_args",
    "pool_capacity",
    "prepare_response_content",
    "registered_label_names",
    "request_validation_error",
    "response_validation_error",
    "route_views",
    "running_loop",
    "time_pool_checkout",
    "timeout",
    "tomllib",
    "wait_for",
    "with_body_limit",
]
