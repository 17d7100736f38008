"""The requests `gateway translate --check` sends a route, generated from the app's
OpenAPI schema: per parameter a value that finds a row (taken from the tables), one that
finds none, and the default; per JSON body one new object and one that repeats an existing
value (so unique constraints are exercised). Small and deterministic.

    operation = app.openapi()["paths"]["/users/{user_id}"]["get"]
    list(route_requests("GET", "/users/{user_id}", operation, {}, samples))[0]
    # Request(method="GET", path="/users/1", params={}, headers={"x-user": "1"}, body=None)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_REQUESTS", "Request", "route_requests"]

MAX_REQUESTS = 8
_OMITTED = object()


@dataclass(frozen=True)
class Request:
    """One request of a case, as httpx sends it."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        shown = f"{self.method} {self.path}{'?' + query if query else ''}"
        headers = ", ".join(f"{k}: {v}" for k, v in self.headers.items())
        return (
            shown
            + (f" [{headers}]" if headers else "")
            + (f" {self.body}" if self.body is not None else "")
        )


def route_requests(
    method: str,
    path: str,
    operation: dict[str, Any],
    components: dict[str, Any],
    samples: dict[str, list[Any]],
) -> Iterator[Request]:
    """At most MAX_REQUESTS requests for one operation of the OpenAPI schema."""
    parameters = operation.get("parameters", [])
    choices: list[list[Any]] = [_parameter_values(p, samples) for p in parameters]
    body_schema = _body_schema(operation, components)
    if body_schema is not None:
        choices.append([_body(body_schema, components, samples, index) for index in range(2)])
    for values in _spread(choices):
        request = Request(method, path, body=values[-1] if body_schema is not None else None)
        for parameter, value in zip(parameters, values, strict=False):
            if value is _OMITTED:
                continue
            where, name = parameter.get("in"), parameter["name"]
            if where == "path":
                request = _replace(request, path=request.path.replace(f"{{{name}}}", str(value)))
            elif where == "query":
                request.params[name] = value
            elif where == "header":
                request.headers[name] = str(value)
        yield request


def _spread(choices: list[list[Any]]) -> list[tuple[Any, ...]]:
    """MAX_REQUESTS combinations, fewest departures from the first values first: each
    parameter's other values are tried early, not only the last parameter's."""
    indices = itertools.islice(itertools.product(*(range(len(c)) for c in choices)), 5000)
    chosen = sorted(indices, key=lambda combo: (sum(combo), combo))[:MAX_REQUESTS]
    return [tuple(c[i] for c, i in zip(choices, combo, strict=True)) for combo in chosen]


def _replace(request: Request, **changes: Any) -> Request:
    return Request(**{**request.__dict__, **changes})


def _parameter_values(parameter: dict[str, Any], samples: dict[str, list[Any]]) -> list[Any]:
    schema = _plain_schema(parameter.get("schema", {}))
    name = parameter["name"].replace("-", "_")
    found = _values(name, schema.get("type"), samples)
    if not parameter.get("required", False):
        default = schema.get("default", _OMITTED)
        found = [default, *[v for v in found if v != default]]
    return list(dict.fromkeys(found))[:3] if found else [_OMITTED]


def _values(name: str, kind: Any, samples: dict[str, list[Any]]) -> list[Any]:
    keys = [name, name.split("_")[-1], "id"]
    pool = next((samples[k] for k in keys if samples.get(k)), [])
    if kind == "integer":
        return [*[v for v in pool if isinstance(v, int) and not isinstance(v, bool)][:2], 0]
    if kind == "number":
        return [1.5, 0]
    if kind == "string":
        return [*[v for v in pool if isinstance(v, str)][:2], "no-such-value"]
    if kind == "boolean":
        return [True, False]
    return []


def _plain_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`Optional[int]` is `anyOf: [{type: integer}, {type: null}]`: the integer."""
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return {**option, **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def _body_schema(operation: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return _resolved(schema, components) if schema is not None else None


def _resolved(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref", "")
    if reference.startswith("#/components/schemas/"):
        return dict(components.get("schemas", {}).get(reference.rsplit("/", 1)[1], {}))
    return schema


def _body(
    schema: dict[str, Any], components: dict[str, Any], samples: dict[str, list[Any]], index: int
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        kind = _plain_schema(_resolved(prop, components)).get("type")
        if kind == "integer":
            data[name] = [1, 2][index]
        elif kind == "boolean":
            data[name] = index == 0
        elif kind == "number":
            data[name] = 1.5
        elif name not in required:
            continue
        else:
            existing = [v for v in samples.get(name, []) if isinstance(v, str)]
            # The second body repeats an existing value, so unique constraints are exercised.
            data[name] = existing[0] if index == 1 and existing else f"made-{name}-{index}"
    return data
