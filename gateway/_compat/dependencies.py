"""FastAPI's dependency-solving internals, in the three shapes FastAPI 0.100-0.165 gave them.

- 0.100-0.122: plain `Dependant` attributes (`security_scopes`, `cache_key`) and the
  `is_*_callable(call)` functions in `fastapi.dependencies.utils`;
- 0.123-0.139: `Dependant` properties (`oauth_scopes`, `cache_key`, `is_gen_callable`, ...);
- 0.140+: private functions in `fastapi.dependencies.models` (`_get_oauth_scopes(dependant=)`).

The shape is chosen once, at import, by looking for the names rather than by version number,
so a point release that moves a name back and forth still finds it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import routing
from fastapi.dependencies import models, utils
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError, ResponseValidationError

from gateway._compat.pydantic import Undefined, normalize_errors
from gateway._compat.versions import FASTAPI

__all__ = [
    "NO_BODY",
    "Undefined",
    "body_to_args",
    "cache_key",
    "concurrency_limit",
    "dependency_scope",
    "endpoint_context",
    "is_async_gen",
    "is_coroutine",
    "is_gen",
    "oauth_scopes",
    "override_dependant",
    "params_to_args",
    "request_validation_error",
    "response_validation_error",
]

# Typed loosely on purpose: which of their names exist depends on the FastAPI version.
_models: Any = models
_utils: Any = utils
_routing: Any = routing

# What the body solver is given for a request without a body: Undefined since 0.151, None
# before (older request_body_to_args reads a non-None body as a mapping).
NO_BODY: Any = Undefined if FASTAPI >= (0, 151, 0) else None

if hasattr(_models, "_get_oauth_scopes"):  # 0.140+

    def oauth_scopes(dependant: Dependant) -> list[str]:
        """The OAuth scopes a dependency sees in its SecurityScopes (own and inherited)."""
        return list(_models._get_oauth_scopes(dependant=dependant))

    def cache_key(dependant: Dependant) -> Any:
        """The key FastAPI's per-request dependency cache uses for this dependant."""
        return _models._get_cache_key(dependant=dependant)

    def is_gen(dependant: Dependant) -> bool:
        """The dependant's call is a sync generator (`def ...: yield`)."""
        return bool(_models._is_gen_callable(dependant.call))

    def is_async_gen(dependant: Dependant) -> bool:
        """The dependant's call is an async generator (`async def ...: yield`)."""
        return bool(_models._is_async_gen_callable(dependant.call))

    def is_coroutine(dependant: Dependant) -> bool:
        """The dependant's call is a coroutine function (or a class with `async __call__`)."""
        return bool(_models._is_coroutine_callable(dependant.call))

elif hasattr(_models.Dependant, "oauth_scopes"):  # 0.123-0.139: the same, as Dependant properties

    def oauth_scopes(dependant: Dependant) -> list[str]:
        """The OAuth scopes a dependency sees in its SecurityScopes (own and inherited)."""
        return list(_loose(dependant).oauth_scopes)

    def cache_key(dependant: Dependant) -> Any:
        """The key FastAPI's per-request dependency cache uses for this dependant."""
        return _loose(dependant).cache_key

    def is_gen(dependant: Dependant) -> bool:
        """The dependant's call is a sync generator (`def ...: yield`)."""
        return bool(_loose(dependant).is_gen_callable)

    def is_async_gen(dependant: Dependant) -> bool:
        """The dependant's call is an async generator (`async def ...: yield`)."""
        return bool(_loose(dependant).is_async_gen_callable)

    def is_coroutine(dependant: Dependant) -> bool:
        """The dependant's call is a coroutine function (or a class with `async __call__`)."""
        return bool(_loose(dependant).is_coroutine_callable)

else:  # 0.100-0.122: attributes and module-level functions of the call

    def oauth_scopes(dependant: Dependant) -> list[str]:
        """The OAuth scopes a dependency sees in its SecurityScopes (own and inherited)."""
        return list(getattr(dependant, "security_scopes", None) or [])

    def cache_key(dependant: Dependant) -> Any:
        """The key FastAPI's per-request dependency cache uses for this dependant."""
        return _loose(dependant).cache_key

    def is_gen(dependant: Dependant) -> bool:
        """The dependant's call is a sync generator (`def ...: yield`)."""
        return bool(_utils.is_gen_callable(dependant.call))

    def is_async_gen(dependant: Dependant) -> bool:
        """The dependant's call is an async generator (`async def ...: yield`)."""
        return bool(_utils.is_async_gen_callable(dependant.call))

    def is_coroutine(dependant: Dependant) -> bool:
        """The dependant's call is a coroutine function (or a class with `async __call__`)."""
        return bool(_utils.is_coroutine_callable(dependant.call))


def _loose(dependant: Dependant) -> Any:
    return dependant


def dependency_scope(dependant: Dependant) -> str | None:
    """`Depends(scope=...)`: "function" closes a yield dependency before the response (0.121+)."""
    return getattr(dependant, "scope", None)


def concurrency_limit(dependant: Dependant) -> Any:
    """`Depends(concurrency=...)`, FastAPI's per-dependency limit (0.163+); None before."""
    return getattr(dependant, "concurrency", None)


_GET_DEPENDANT = set(inspect.signature(_utils.get_dependant).parameters)


def override_dependant(original: Dependant, call: Callable[..., Any]) -> Dependant:
    """The dependant FastAPI's solver builds for `dependency_overrides[original.call] = call`."""
    args: dict[str, Any] = {"path": original.path or "", "call": call, "name": original.name}
    if "parent_oauth_scopes" in _GET_DEPENDANT:  # 0.123+
        args["parent_oauth_scopes"] = oauth_scopes(original)
    else:  # 0.100-0.122
        args["security_scopes"] = getattr(original, "security_scopes", None)
    if "scope" in _GET_DEPENDANT:  # 0.121+
        args["scope"] = dependency_scope(original)
    if "concurrency" in _GET_DEPENDANT:  # 0.163+
        args["concurrency"] = concurrency_limit(original)
    return utils.get_dependant(**args)


def params_to_args(
    fields: Sequence[Any], received: Mapping[str, Any] | Any
) -> tuple[dict[str, Any], list[Any]]:
    """Validate path, query, header or cookie values against their fields (all versions)."""
    return utils.request_params_to_args(fields, received)


# 0.113+ takes whether a single body parameter is embedded; before, it worked it out itself.
_BODY_TAKES_EMBED = "embed_body_fields" in inspect.signature(_utils.request_body_to_args).parameters


def body_to_args(
    fields: list[Any], body: Any, embed: bool
) -> Coroutine[Any, Any, tuple[dict[str, Any], list[Any]]]:
    """FastAPI's body validation coroutine (it never suspends on a JSON body)."""
    if _BODY_TAKES_EMBED:
        return utils.request_body_to_args(
            body_fields=fields, received_body=body, embed_body_fields=embed
        )
    old: Coroutine[Any, Any, tuple[dict[str, Any], list[Any]]] = _utils.request_body_to_args(
        fields, body
    )
    return old


# 0.124+: where a validation error came from, shown in FastAPI's error logs.
_extract_endpoint_context: Any = getattr(_routing, "_extract_endpoint_context", None)


def endpoint_context(call: Callable[..., Any], method: str, path: str | None) -> Any:
    """FastAPI's EndpointContext for errors raised by `call` (None before 0.124)."""
    if _extract_endpoint_context is None:  # pragma: no cover - FastAPI < 0.124
        return None
    context = dict(_extract_endpoint_context(call))
    if path:
        context["path"] = f"{method} {path}"
    return context


def request_validation_error(errors: Sequence[Any], body: Any, context: Any) -> Exception:
    """RequestValidationError as that version raises it (`endpoint_ctx=` since 0.124)."""
    errors = normalize_errors(errors)
    if context is None:
        return RequestValidationError(errors, body=body)
    error: Any = RequestValidationError
    return error(errors, body=body, endpoint_ctx=context)  # type: ignore[no-any-return]


def response_validation_error(errors: Sequence[Any], body: Any, context: Any) -> Exception:
    """ResponseValidationError as that version raises it (`endpoint_ctx=` since 0.124)."""
    errors = normalize_errors(errors)
    if context is None:
        return ResponseValidationError(errors=errors, body=body)
    error: Any = ResponseValidationError
    return error(errors=errors, body=body, endpoint_ctx=context)  # type: ignore[no-any-return]
