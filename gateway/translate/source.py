"""Reading a legacy module for `gateway translate`: importing it by its dotted name (its
mapped classes are read, not guessed), resolving its names, and what a route's decorator
says. Which functions take a session is `translate_functions`'s concern.

    name, module = import_source(Path("app/crud.py"))      # ("app.crud", <module>)
    response_model(function_node, module)                   # UserOut
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import libcst as cst
from pydantic import BaseModel
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper

from gateway.exceptions import CommandError
from gateway.translate.chains import Untranslatable
from gateway.translate.models import model_in

__all__ = [
    "import_source",
    "is_mapped",
    "is_route",
    "mapped_class",
    "module_value",
    "resolve_expression",
    "response_model",
]

ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}


def import_source(path: Path) -> tuple[str, ModuleType]:
    """The module at `path`, imported by its dotted name (so fallbacks can import it)."""
    resolved = path.resolve()
    if not resolved.is_file():
        raise CommandError(f"Source {str(path)!r} is not a file; expected a Python module.")
    for entry in [Path.cwd(), *(Path(p) for p in sys.path if p)]:
        try:
            relative = resolved.relative_to(entry.resolve())
        except (ValueError, OSError):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        if parts and all(p.isidentifier() for p in parts):
            name = ".".join(parts)
            if str(entry.resolve()) not in {str(Path(p).resolve()) for p in sys.path if p}:
                sys.path.insert(0, str(entry.resolve()))
            try:
                return name, importlib.import_module(name)
            except Exception as exc:
                raise CommandError(
                    f"Cannot import {name!r} (from {str(path)!r}) to read its mapped classes: "
                    f"{type(exc).__name__}: {exc}".splitlines()[0]
                ) from None
    parts = list(resolved.with_suffix("").parts)
    for start in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[start:])
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and Path(spec.origin).resolve() == resolved:
            return name, importlib.import_module(name)
    raise CommandError(
        f"Source {str(path)!r} is not importable from the current directory or sys.path; "
        "run gateway translate from the directory its package is imported from."
    )


def resolve_expression(node: cst.BaseExpression, module: ModuleType) -> Any:
    """The value of a name or dotted name in the module's namespace, else None."""
    if isinstance(node, cst.Name):
        return module.__dict__.get(node.value)
    if isinstance(node, cst.Attribute):
        owner = resolve_expression(node.value, module)
        return getattr(owner, node.attr.value, None) if owner is not None else None
    return None


def module_value(module: ModuleType, name: str) -> Any:
    """A module-level name of the translated module; anything else is not translated."""
    if name not in module.__dict__:
        raise Untranslatable(f"{name!r} is not a module-level name of {module.__name__}")
    return module.__dict__[name]


def mapped_class(module: ModuleType, node: cst.BaseExpression) -> type | None:
    """The mapped class `node` names in the module, else None."""
    if isinstance(node, cst.Name):
        value = module.__dict__.get(node.value)
        if isinstance(value, type) and is_mapped(value):
            return value
    return None


def is_mapped(mapped: type) -> bool:
    """Whether `mapped` is an ORM-mapped class."""
    return isinstance(sa_inspect(mapped, raiseerr=False), Mapper)


def is_route(function: cst.FunctionDef) -> bool:
    """Whether a decorator registers `function` as a route (`@router.get(...)` and kin)."""
    for decorator in function.decorators:
        call = decorator.decorator
        if (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value in ROUTE_METHODS
        ):
            return True
    return False


def response_model(function: cst.FunctionDef, module: ModuleType) -> type[BaseModel] | None:
    """The pydantic model a route serializes its return value with (unwrapping list[...])."""
    for decorator in function.decorators:
        call = decorator.decorator
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
            continue
        for arg in call.args:
            if arg.keyword and arg.keyword.value == "response_model":
                code = cst.Module([]).code_for_node(arg.value)
                try:
                    value = eval(code, dict(module.__dict__))
                except Exception:
                    return None
                return model_in(value)
    if function.returns is not None:
        value = resolve_expression(function.returns.annotation, module)
        return model_in(value)
    return None
