"""Whether a FastAPI parameter field is required, under pydantic 1 and 2.

pydantic 1's `ModelField` (what FastAPI uses with it) has a `required` attribute; FastAPI's
own `ModelField` under pydantic 2 asks its `FieldInfo` (`is_required()`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_required"]


def is_required(field: Any) -> bool:
    """True when a request must carry this field (no default): `is_required(view.body_field)`."""
    required = getattr(field, "required", None)  # pydantic 1
    if isinstance(required, bool):
        return required
    return bool(field.field_info.is_required())  # FastAPI's ModelField on pydantic 2
