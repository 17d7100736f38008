"""pydantic 1.10 and 2.x: the few of its names the gateway's own code needs.

The gateway's settings and admin bodies use no pydantic; what is left is FastAPI's field
machinery, which speaks the app's pydantic (FastAPI 0.100-0.125 take either major).

- `Undefined`: the "no value" sentinel of fields (pydantic-core's in 2, `pydantic.fields`'
  in 1.10);
- `PYDANTIC_V1`: the app runs pydantic 1.10 (FastAPI 0.126 dropped it);
- `normalize_errors`, `prepare_response_content`: what FastAPI 0.100-0.125 do to errors
  and returned models on pydantic 1 only (private `fastapi._compat` / `fastapi.routing`);
- `response_validator`: a response model's validation from attributes (ORM objects), as
  FastAPI validates a route's answer (`TypeAdapter` in 2, `parse_obj_as` + `orm_mode` in 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway._compat.versions import PYDANTIC

__all__ = [
    "PYDANTIC_V1",
    "Undefined",
    "normalize_errors",
    "prepare_response_content",
    "response_validator",
]

PYDANTIC_V1 = PYDANTIC < (2, 0, 0)

if PYDANTIC_V1:  # pragma: no cover - pydantic 1.10 (the nox pydantic1 sessions)
    import pydantic as _pydantic
    from fastapi import _compat as _fastapi_compat
    from fastapi import routing as _fastapi_routing
    from pydantic import fields as _fields

    # Looked up by name: mypy checks against pydantic 2, which has none of them.
    Undefined: Any = getattr(_fields, "Undefined")  # noqa: B009
    _normalize_errors: Any = getattr(_fastapi_compat, "_normalize_errors")  # noqa: B009
    _prepare_response: Any = getattr(_fastapi_routing, "_prepare_response_content")  # noqa: B009
    _parse_obj_as: Any = getattr(_pydantic, "parse_obj_as")  # noqa: B009

    def response_validator(response_model: Any) -> Callable[[Any], Any]:
        """`validate(value)`: `value` as `response_model` (its `orm_mode` reads attributes)."""
        return lambda value: _parse_obj_as(response_model, value)

    def normalize_errors(errors: Sequence[Any]) -> list[Any]:
        """pydantic 1's ErrorWrappers as the dicts FastAPI's error bodies show (0.100-0.125)."""
        return list(_normalize_errors(errors))

    def prepare_response_content(content: Any, options: Mapping[str, Any]) -> Any:
        """A returned model as the dict FastAPI 0.100-0.125 validate on pydantic 1."""
        return _prepare_response(
            content,
            exclude_unset=options["exclude_unset"],
            exclude_defaults=options["exclude_defaults"],
            exclude_none=options["exclude_none"],
        )

else:
    from pydantic import TypeAdapter
    from pydantic_core import PydanticUndefined

    Undefined = PydanticUndefined

    def response_validator(response_model: Any) -> Callable[[Any], Any]:
        """`validate(value)`: `value` as `response_model`, read from attributes (ORM objects)."""
        adapter: TypeAdapter[Any] = TypeAdapter(response_model)
        return lambda value: adapter.validate_python(value, from_attributes=True)

    def normalize_errors(errors: Sequence[Any]) -> list[Any]:
        """pydantic 2's errors are FastAPI's error dicts already."""
        return list(errors)

    def prepare_response_content(content: Any, options: Mapping[str, Any]) -> Any:
        """pydantic 2 validates a returned model as it is."""
        return content
