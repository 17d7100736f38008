"""What a route checks and accepts, read once at build from FastAPI's own objects.

    facts = route_facts(view)                 # guards and inputs, from the dependant tree
    operations = openapi_operations(views)    # per (path, method): the OpenAPI operation

Guards are what refuses a request before the endpoint runs: every dependency declared in a
`dependencies=` list (the route's, its router's, an include's or the app's) and every
security scheme (`OAuth2PasswordBearer`, `APIKeyHeader`, ...) anywhere in the tree, with the
OAuth scopes it is asked for. Inputs are the path, query, header and cookie parameters of
the whole tree (FastAPI's flat view of it) and the request body. Types, bodies and response
models are compared on the OpenAPI operation, so no pydantic version's internals are read.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.security.base import SecurityBase

from gateway._compat import RouteView, is_required, oauth_scopes
from gateway.exceptions import first_line

__all__ = ["Guard", "Input", "RouteFacts", "call_name", "openapi_operations", "route_facts"]

log = logging.getLogger("gateway.routing")

_LOCATIONS = ("path", "query", "header", "cookie")


@dataclass(frozen=True)
class Guard:
    """A check a request passes before the endpoint runs.

    Guard("dependency", "verify_api_key", verify_api_key, declared=True)
    Guard("scheme", "OAuth2PasswordBearer", oauth2, via=("get_current_user",))
    """

    kind: str  # "dependency" (declared in a dependencies= list) or "scheme" (SecurityBase)
    name: str
    call: Any = field(compare=False, repr=False)
    via: tuple[str, ...] = ()  # the dependencies it is reached through, outermost first
    scopes: frozenset[str] = frozenset()
    declared: bool = False  # in the route's own dependencies= (route, router, include, app)

    def matches(self, other: Guard) -> bool:
        """The same check: the same callable, or one of the same kind and name (a twin's
        async rewrite of a dependency keeps its name; a scheme also its OpenAPI model)."""
        if self.call is other.call:
            return True
        if self.kind != other.kind or self.name != other.name:
            return False
        return self.kind != "scheme" or _same_model(self.call, other.call)


@dataclass(frozen=True)
class Input:
    """A parameter a request may or must carry: Input("query", "limit", required=False)."""

    location: str  # "path", "query", "header", "cookie" or "body"
    name: str  # as sent: a header's name has FastAPI's dashes; "" for the whole body
    required: bool
    via: tuple[str, ...] = ()  # the dependencies that ask for it, outermost first

    @property
    def label(self) -> str:
        return "the request body" if self.location == "body" else f"{self.location} {self.name!r}"


@dataclass(frozen=True)
class RouteFacts:
    """A route's guards, inputs, status code, whether it has a response model, and every
    dependency of its tree (a legacy guard is kept when the twin depends on it anywhere)."""

    guards: tuple[Guard, ...]
    inputs: dict[tuple[str, str], Input]
    status_code: int | None
    response_model: bool
    calls: tuple[Any, ...] = ()
    call_names: frozenset[str] = frozenset()


def call_name(call: Any) -> str:
    """How a dependency is named in messages and matched: a function's `__name__`, a
    callable instance's class name (`functools.partial` unwrapped)."""
    while isinstance(call, functools.partial):
        call = call.func
    name = getattr(call, "__name__", None)
    return name if isinstance(name, str) else type(call).__name__


def _scheme_name(call: SecurityBase) -> str:
    name = getattr(call, "scheme_name", None) or type(call).__name__
    model = getattr(call, "model", None)
    header = getattr(model, "name", None)  # APIKeyHeader/Query/Cookie: which key it reads
    return f"{name} {header!r}" if isinstance(header, str) and name != header else str(name)


def _same_model(one: Any, other: Any) -> bool:
    return type(one) is type(other) and getattr(one, "model", None) == getattr(other, "model", None)


def route_facts(view: RouteView) -> RouteFacts:
    """Read a route's guards and inputs from its dependant tree (at build, never per request)."""
    guards: dict[int, Guard] = {}
    inputs: dict[tuple[str, str], Input] = {}
    calls: dict[int, Any] = {}
    for dependant, via in _walk(view.dependant, ()):
        if via:
            calls[id(dependant.call)] = dependant.call
        for location in _LOCATIONS:
            for param in getattr(dependant, f"{location}_params"):
                found = Input(location, param.alias, is_required(param), via)
                known = inputs.get((location, param.alias))
                if known is None or (found.required and not known.required):
                    inputs[(location, param.alias)] = found
        for sub in dependant.dependencies:
            call = sub.call
            scopes = frozenset(oauth_scopes(sub))
            known_guard = guards.get(id(call))
            if known_guard is not None:  # met again: it is asked for the scopes of both
                guards[id(call)] = replace(known_guard, scopes=known_guard.scopes | scopes)
            elif isinstance(call, SecurityBase):
                guards[id(call)] = Guard("scheme", _scheme_name(call), call, via, scopes)
            elif sub.name is None:  # from a dependencies= list: run for its check alone
                guards[id(call)] = Guard("dependency", call_name(call), call, via, scopes, not via)
    if view.body_field is not None:
        inputs[("body", "")] = Input("body", "", is_required(view.body_field))
    return RouteFacts(
        guards=tuple(guards.values()),
        inputs=inputs,
        status_code=view.status_code,
        response_model=view.response_field is not None,
        calls=tuple(calls.values()),
        call_names=frozenset(call_name(call) for call in calls.values()),
    )


def _walk(
    dependant: Dependant, via: tuple[str, ...]
) -> Iterator[tuple[Dependant, tuple[str, ...]]]:
    yield dependant, via
    for sub in dependant.dependencies:
        yield from _walk(sub, (*via, call_name(sub.call)))


def openapi_operations(views: Iterable[RouteView]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each route's OpenAPI operation with every `$ref` resolved, by (path, METHOD).

    One `get_openapi` call for all the routes of one side; a route left out of the schema
    (`include_in_schema=False`) has no operation, and types are then not compared.
    """
    views = list(views)
    if not views:
        return {}
    try:
        with warnings.catch_warnings():  # duplicate operation ids: the app's own docs' business
            warnings.simplefilter("ignore")
            routes = [v.openapi_route for v in views]
            document = get_openapi(title="contract", version="0", routes=routes)
    except Exception as exc:  # an app can serve with a schema FastAPI cannot describe
        log.warning(
            "the pairing contract compares no types, bodies or response models: the OpenAPI "
            "document of these routes fails (%s: %s)",
            type(exc).__name__,
            first_line(exc),
        )
        return {}
    schemas = document.get("components", {}).get("schemas", {})
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            found[(path, method.upper())] = resolve(operation, schemas)
    return found


_NOT_CONTRACT = frozenset({"title", "description", "summary", "examples", "example", "tags",
                           "operationId"})  # fmt: skip
# Keys whose values are maps of names (a model's fields, a response per status code): a
# field called "title" is contract.
_NAMED = frozenset({"properties", "patternProperties", "$defs", "content", "responses"})


def resolve(
    node: Any, schemas: dict[str, Any], seen: tuple[str, ...] = (), named: bool = False
) -> Any:
    """`node` with `$ref`s to components replaced by the schemas they name and the words
    that are no contract (titles, descriptions, examples) left out; a recursive model keeps
    its `$ref` where it refers to itself."""
    if isinstance(node, list):
        return [resolve(item, schemas, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not named and isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in schemas:
            return {"$ref": name}
        return resolve(schemas[name], schemas, (*seen, name))
    return {
        k: resolve(v, schemas, seen, named=not named and k in _NAMED)
        for k, v in node.items()
        if named or k not in _NOT_CONTRACT
    }
