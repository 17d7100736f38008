"""Declared settings fields and their reader: the gateway's settings without pydantic.

The gateway sits next to apps on pydantic 1 and 2, so its own settings depend on neither.
A settings class is a frozen dataclass whose fields are declared as pydantic's were:

    @dataclass(frozen=True)
    class Knobs:
        size: int = Field(default=20, ge=1, description="how many")

        @field_validator("size")
        @classmethod
        def _even(cls, value: int) -> int: ...

    values = read_fields(Knobs, {"size": "7"})   # {"size": 7}, or FieldErrors

Text (an environment variable's value) becomes the field's type with pydantic's lax rules
for str, int, float, bool and `X | None`; the messages are pydantic's, so they read the same.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Field",
    "FieldError",
    "FieldErrors",
    "FieldSpec",
    "environ_values",
    "field_validator",
    "read_fields",
]

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_VALIDATORS = "__field_validators__"


@dataclass(frozen=True)
class FieldSpec:
    """A field's bounds and description, kept in its dataclass metadata."""

    description: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None


@dataclass(frozen=True)
class FieldError:
    """One field whose value is invalid: its name, the value found and what was expected."""

    name: str
    value: Any
    message: str


class FieldErrors(ValueError):
    """Every invalid field of one read, in declaration order."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.name}={e.value!r}: {e.message}" for e in errors))
        self.errors = errors


def Field(
    default: Any,
    *,
    description: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    repr: bool = True,
) -> Any:
    """A dataclass field with bounds and a description: `size: int = Field(default=20, ge=1)`."""
    spec = FieldSpec(description, ge, gt, le, lt)
    return dataclasses.field(default=default, repr=repr, metadata={"spec": spec})


def field_validator(*names: str, mode: str = "after") -> Callable[[Any], Any]:
    """Mark a classmethod to check `names` after ("after") or before ("before") conversion.

    It returns the value to keep, or raises ValueError with what was expected.
    """
    if mode not in ("after", "before"):
        raise ValueError(f"field_validator mode must be 'after' or 'before', got {mode!r}")

    def mark(method: Any) -> Any:
        setattr(method.__func__, _VALIDATORS, (names, mode))
        return method

    return mark


def spec_of(field: dataclasses.Field[Any]) -> FieldSpec:
    """The field's FieldSpec (an empty one for a field declared with a plain default)."""
    spec = field.metadata.get("spec")
    return spec if isinstance(spec, FieldSpec) else FieldSpec()


def declared(cls: type) -> list[tuple[str, Any, Any, FieldSpec]]:
    """Each field of the dataclass `cls` as (name, type, default, FieldSpec), in order."""
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name], f.default, spec_of(f)) for f in dataclasses.fields(cls)]


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string"}
_BOUND_WORDS = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}


def describe_type(annotation: Any, spec: FieldSpec) -> str:
    """A field's type in words: `describe_type(int, FieldSpec(ge=1))` -> "integer, at least 1"."""
    optional = type(None) in typing.get_args(annotation)
    if optional:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    text = _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = [
        f"{word} {env_text(getattr(spec, bound))}"
        for bound, word in _BOUND_WORDS.items()
        if getattr(spec, bound) is not None
    ]
    return ", ".join([text, *bounds]) + (" or unset" if optional else "")


def env_text(value: Any) -> str:
    """`value` as the environment writes it: true, 20, 0.25, 30 (not 30.0), empty for None."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def read_fields(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of the dataclass `cls` converted and checked: defaults for the missing.

    Raises FieldErrors naming each invalid field. Names `cls` does not declare are ignored.
    """
    hints = typing.get_type_hints(cls)
    validators = _validators(cls)
    result: dict[str, Any] = {}
    errors: list[FieldError] = []
    for field in dataclasses.fields(cls):
        name = field.name
        value = values.get(name, field.default)
        try:
            for method in validators.get((name, "before"), ()):
                value = method(value)
            converted = _convert(value, hints[name])
            _check_bounds(converted, spec_of(field))
            for method in validators.get((name, "after"), ()):
                converted = method(converted)
        except ValueError as exc:
            errors.append(FieldError(name, value, str(exc)))
            continue
        result[name] = converted
    if errors:
        raise FieldErrors(errors)
    return result


def _validators(cls: type) -> dict[tuple[str, str], list[Callable[[Any], Any]]]:
    found: dict[tuple[str, str], list[Callable[[Any], Any]]] = {}
    for attribute, member in vars(cls).items():
        marked = getattr(getattr(member, "__func__", None), _VALIDATORS, None)
        if marked is not None:
            names, mode = marked
            for name in names:
                found.setdefault((name, mode), []).append(getattr(cls, attribute))
    return found


def _convert(value: Any, annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if type(None) in args:  # X | None
        if value is None:
            return None
        (annotation,) = (arg for arg in args if arg is not type(None))
    converter = _CONVERTERS.get(annotation)
    if converter is None:  # a declaration mistake, not a bad value: fail loudly
        raise TypeError(f"a field of type {annotation!r} cannot be read: use str, int, float, bool")
    return converter(value)


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            number = _float_or_none(text)
            if number is not None and number.is_integer():
                return int(number)
    raise ValueError("Input should be a valid integer, unable to parse string as an integer")


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    number = _float_or_none(value.strip()) if isinstance(value, str) else None
    if number is None:
        raise ValueError("Input should be a valid number, unable to parse string as a number")
    return number


def _float_or_none(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    raise ValueError("Input should be a valid boolean, unable to interpret input")


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
}


def _check_bounds(value: Any, spec: FieldSpec) -> None:
    if value is None or isinstance(value, (str, bool)):
        return
    checks = (
        (spec.ge, value >= (spec.ge or 0), "greater than or equal to"),
        (spec.gt, value > (spec.gt or 0), "greater than"),
        (spec.le, value <= (spec.le or 0), "less than or equal to"),
        (spec.lt, value < (spec.lt or 0), "less than"),
    )
    for bound, holds, words in checks:
        if bound is not None and not holds:
            raise ValueError(f"Input should be {words} {bound}")


def environ_values(cls: type, environ: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The `<prefix><FIELD>` variables of `environ` that name a field of `cls`, by field name."""
    names = {field.name for field in dataclasses.fields(cls)}
    return {
        name[len(prefix) :].lower(): value
        for name, value in environ.items()
        if name.startswith(prefix) and name[len(prefix) :].lower() in names
    }
