"""The objects `gateway translate --check` calls a translated method on: a module-level
instance (`user = CRUDUser(User)`) of the class or of a subclass that inherits the method,
and the legacy instance of the same name, so `crud.user.get(db, id=1)` runs on both sides.

    pairs = method_pairs(translated.CRUDBase, legacy_module, translated_module)
    pairs["get"]                      # (legacy user.get, translated user.get, {ModelType: User})
"""

from __future__ import annotations

import importlib
import sys
import typing
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gateway.translate.check.apps import counterpart

__all__ = ["method_pairs", "type_arguments"]

MethodPair = tuple[Callable[..., Any], Callable[..., Any], dict[Any, Any]]


def method_pairs(cls: type, legacy: ModuleType, translated: ModuleType) -> dict[str, MethodPair]:
    """For each method of `cls` (defined on it), the legacy and translated bound methods of
    a module-level instance that inherits it, with the instance's generic arguments."""
    found: dict[str, MethodPair] = {}
    methods = {name for name, value in vars(cls).items() if callable(value)}
    for module_name, attribute, instance in _instances(cls, translated):
        legacy_module = _legacy_module(module_name, legacy, translated)
        legacy_instance = getattr(legacy_module, attribute, None) if legacy_module else None
        if legacy_instance is None:
            continue
        for method in methods - set(found):
            if getattr(type(instance), method, None) is vars(cls)[method]:
                pair = getattr(legacy_instance, method, None), getattr(instance, method)
                if callable(pair[0]):
                    found[method] = (pair[0], pair[1], type_arguments(type(legacy_instance)))
    return found


def type_arguments(cls: type) -> dict[Any, Any]:
    """What each TypeVar of the generic bases stands for: `CRUDUser(CRUDBase[User, ...])`
    gives {ModelType: User, ...}."""
    found: dict[Any, Any] = {}
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            parameters = getattr(typing.get_origin(base), "__parameters__", ())
            for parameter, argument in zip(parameters, typing.get_args(base), strict=False):
                found.setdefault(parameter, argument)
    return found


def _instances(cls: type, translated: ModuleType) -> list[tuple[str, str, Any]]:
    top = translated.__name__.split(".")[0]
    package = sys.modules.get(top)
    if package is not None and hasattr(package, "__path__"):
        _import_all(package)
    found = []
    for module_name in sorted(n for n in list(sys.modules) if n.split(".")[0] == top):
        for attribute, value in list(vars(sys.modules[module_name]).items()):
            if isinstance(value, cls) and type(value).__module__.split(".")[0] == top:
                found.append((module_name, attribute, value))
    return found


def _import_all(package: ModuleType) -> None:
    """The package's modules, so instances defined next to the class's module are found."""
    import pkgutil

    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        try:
            importlib.import_module(info.name)
        except Exception:  # a module that cannot be imported holds no instance to check
            continue


def _legacy_module(
    module_name: str, legacy: ModuleType, translated: ModuleType
) -> ModuleType | None:
    name = counterpart(module_name, translated.__name__, legacy.__name__)
    return sys.modules.get(name) if name else None
