"""Which functions of a legacy module `gateway translate` touches: those that take a sync
`Session` (top-level functions and methods of top-level classes, sync or `async def`), those
that call one of them (they await it now), and those that open a session of their own.

    for found in functions_of(tree, module):              # Function("CRUDBase.get", node, CRUDBase)
        session_parameter(found.node, module)              # the `db` parameter, or None

A session parameter is recognised by its annotation (`db: Session`), by its default
(`db=Depends(get_db)` where `get_db` yields a Session), or by its use in the body
(`db.query(...)`, `db.add(...)`, ...). Methods are named `Class.method` in the helper
table, and a call `crud.user.get(db, ...)` of a module-level instance, `self.get(...)`
or `super().create(...)` is found through the class's MRO.
"""

from __future__ import annotations

import inspect
import textwrap
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import libcst as cst
from sqlalchemy.orm import Session, sessionmaker

from gateway.translate.source import resolve_expression

__all__ = [
    "AsyncCallFinder",
    "Function",
    "async_callee",
    "callers_of",
    "calls_own_async_methods",
    "functions_of",
    "legacy_dependency",
    "model_attributes",
    "nested_session_functions",
    "opens_own_session",
    "session_functions",
    "session_parameter",
]

# Session methods whose call on an unannotated parameter says it is a session.
SESSION_USES = {
    "query", "add", "add_all", "commit", "rollback", "flush", "refresh", "execute",
    "scalar", "scalars", "merge", "delete", "expunge", "get",
}  # fmt: skip


@dataclass(frozen=True)
class Function:
    """A function of the module: its name in the helper table, its node, its class."""

    name: str  # "get_user" or "CRUDBase.get"
    node: cst.FunctionDef
    owner: type | None = None  # the class (the real one, from the module) of a method


def functions_of(tree: cst.Module, module: ModuleType) -> Iterator[Function]:
    """Top-level functions and the methods of top-level classes, in source order."""
    for statement in tree.body:
        if isinstance(statement, cst.FunctionDef):
            yield Function(statement.name.value, statement)
        elif isinstance(statement, cst.ClassDef):
            owner = module.__dict__.get(statement.name.value)
            if not isinstance(owner, type):
                continue
            for item in statement.body.body:
                if isinstance(item, cst.FunctionDef):
                    yield Function(f"{statement.name.value}.{item.name.value}", item, owner)


def session_parameter(function: cst.FunctionDef, module: ModuleType) -> cst.Param | None:
    """The parameter holding a sync Session: by annotation, by its `Depends(provider)`
    default, or (unannotated) by the session methods the body calls on it."""
    params = [*function.params.params, *function.params.kwonly_params]
    for param in params:
        if param.annotation is not None:
            value = resolve_expression(param.annotation.annotation, module)
            if isinstance(value, type) and issubclass(value, Session):
                return param
    for param in params:
        if param.annotation is None and _provides_session(param.default, module):
            return param
    # An `async def` may call an AsyncSession's methods: only `.query()` is the sync one's.
    used = _SessionUses({"query"} if function.asynchronous else SESSION_USES)
    function.body.visit(used)
    for param in params:
        if param.annotation is None and param.name.value in used.owners:
            return param
    return None


def _provides_session(default: cst.BaseExpression | None, module: ModuleType) -> bool:
    if not (isinstance(default, cst.Call) and default.args):
        return False
    if getattr(resolve_expression(default.func, module), "__name__", None) != "Depends":
        return False
    provider = resolve_expression(default.args[0].value, module)
    return callable(provider) and is_session_provider(provider)


def is_session_provider(provider: Any) -> bool:
    """Whether a dependency yields or returns a sync Session (`get_db` and kin)."""
    if inspect.iscoroutinefunction(provider) or inspect.isasyncgenfunction(provider):
        return False
    try:
        returns = typing.get_type_hints(provider).get("return")
    except Exception:
        returns = None
    if returns is not None:
        return any(
            isinstance(t, type) and issubclass(t, Session)
            for t in (returns, *typing.get_args(returns))
        )
    return _makes_session(provider)


def _makes_session(function: Any) -> bool:
    """Whether a function's code names a sessionmaker or Session class of its globals."""
    code = getattr(function, "__code__", None)
    scope = getattr(function, "__globals__", {})
    for name in code.co_names if code else ():
        value = scope.get(name)
        if isinstance(value, sessionmaker) or (
            isinstance(value, type) and issubclass(value, Session)
        ):
            return True
    return False


class _SessionUses(cst.CSTVisitor):
    def __init__(self, methods: set[str]) -> None:
        self.owners: set[str] = set()
        self.methods = methods

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.attr.value in self.methods
        ):
            self.owners.add(func.value.value)


def opens_own_session(function: Function, module: ModuleType) -> bool:
    """Whether a function without a session parameter opens one (`db = SessionLocal()`)."""
    finder = _SessionMakers(module)
    function.node.body.visit(finder)
    return finder.found


class _SessionMakers(cst.CSTVisitor):
    def __init__(self, module: ModuleType) -> None:
        self.module, self.found = module, False

    def visit_Call(self, node: cst.Call) -> None:
        value = resolve_expression(node.func, self.module)
        if isinstance(value, sessionmaker) or (
            isinstance(value, type) and issubclass(value, Session)
        ):
            self.found = True


def session_functions(tree: cst.Module, module: ModuleType) -> set[str]:
    """The functions and methods that take a sync session: each is translated."""
    return {f.name for f in functions_of(tree, module) if session_parameter(f.node, module)}


def nested_session_functions(tree: cst.Module, module: ModuleType) -> list[cst.FunctionDef]:
    """Functions taking a session that are nested in another function or class body: the
    translation does not reach them, and the summary says so."""
    reachable = {id(f.node) for f in functions_of(tree, module)}
    finder = _AllFunctions()
    tree.visit(finder)
    return [
        node
        for node in finder.found
        if id(node) not in reachable and session_parameter(node, module) is not None
    ]


class _AllFunctions(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.found.append(node)


def callers_of(
    tree: cst.Module, module: ModuleType, helpers: dict[str, set[str]], own: set[str]
) -> set[str]:
    """The functions that call one of `helpers` (so must await it); those in `own` open
    their own sync session and stay as they are."""
    found = set()
    for function in functions_of(tree, module):
        if function.name in own:
            continue
        finder = AsyncCallFinder(module, helpers, function.owner)
        function.node.body.visit(finder)
        if finder.found:
            found.add(function.name)
    return found


def async_callee(
    call: cst.Call, module: ModuleType, helpers: dict[str, set[str]], owner: type | None = None
) -> bool:
    """Whether `call` calls a function or method that the translation makes async; `owner`
    is the class whose method the call is in (for `self.x(...)` and `super().x(...)`)."""
    func = call.func
    if isinstance(func, cst.Name):
        if func.value in helpers.get(module.__name__, set()):
            return True
        value = module.__dict__.get(func.value)
        origin = getattr(value, "__module__", None)
        return origin in helpers and getattr(value, "__name__", None) in helpers[origin]
    if not isinstance(func, cst.Attribute):
        return False
    attribute = func.attr.value
    target = func.value
    if owner is not None and isinstance(target, cst.Name) and target.value == "self":
        return _method_is_async(owner.__mro__, attribute, helpers)
    if owner is not None and isinstance(target, cst.Call) and _is_super(target):
        return _method_is_async(owner.__mro__[1:], attribute, helpers)
    value = resolve_expression(target, module)
    if value is None:
        return False
    if isinstance(value, ModuleType):
        return value.__name__ in helpers and attribute in helpers[value.__name__]
    classes = value.__mro__ if isinstance(value, type) else type(value).__mro__
    return _method_is_async(classes, attribute, helpers)


def _is_super(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Name) and call.func.value == "super"


def _method_is_async(classes: tuple[type, ...], name: str, helpers: dict[str, set[str]]) -> bool:
    for cls in classes:
        if name in cls.__dict__:
            return f"{cls.__qualname__}.{name}" in helpers.get(cls.__module__, set())
    return False


def calls_own_async_methods(
    function: Function, module: ModuleType, helpers: dict[str, set[str]]
) -> bool:
    """Whether a method calls `self.x(...)` or `super().x(...)` that became async: its legacy
    original, run on the translated instance, would get coroutines back."""
    finder = AsyncCallFinder(module, helpers, function.owner, own_only=True)
    function.node.body.visit(finder)
    return finder.found


class AsyncCallFinder(cst.CSTVisitor):
    """`node.visit(finder)`; then `finder.found` says whether it calls an async helper."""

    def __init__(
        self,
        module: ModuleType,
        helpers: dict[str, set[str]],
        owner: type | None = None,
        *,
        own_only: bool = False,
    ) -> None:
        self.module, self.helpers, self.owner, self.found = module, helpers, owner, False
        self.own_only = own_only  # only calls of self's and super()'s methods

    def visit_Call(self, node: cst.Call) -> None:
        if self.own_only and not _on_self(node):
            return
        if async_callee(node, self.module, self.helpers, self.owner):
            self.found = True


def _on_self(call: cst.Call) -> bool:
    func = call.func
    if not isinstance(func, cst.Attribute):
        return False
    target = func.value
    return (isinstance(target, cst.Name) and target.value == "self") or (
        isinstance(target, cst.Call) and _is_super(target)
    )


def model_attributes(owner: type) -> set[str]:
    """The attributes holding a mapped class on instances of `owner`: `self.model = model`
    in an `__init__` (of the class or a base) whose `model` is annotated `type[...]`."""
    found: set[str] = set()
    for cls in owner.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None or not inspect.isfunction(init):
            continue
        try:
            node = cst.parse_module(textwrap.dedent(inspect.getsource(init))).body[0]
        except (OSError, TypeError, cst.ParserSyntaxError):
            continue
        if isinstance(node, cst.FunctionDef):
            found |= _type_assignments(node)
    return found


def _type_assignments(init: cst.FunctionDef) -> set[str]:
    typed = set()
    for param in init.params.params:
        annotation = param.annotation
        if annotation is None:
            continue
        code = cst.Module([]).code_for_node(annotation.annotation)
        if code.startswith(("type[", "Type[", "typing.Type[")):
            typed.add(param.name.value)
    found = set()
    for line in init.body.body:
        if not isinstance(line, cst.SimpleStatementLine):
            continue
        for small in line.body:
            if (
                isinstance(small, cst.Assign)
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Attribute)
                and isinstance(small.targets[0].target.value, cst.Name)
                and small.targets[0].target.value.value == "self"
                and isinstance(small.value, cst.Name)
                and small.value.value in typed
            ):
                found.add(small.targets[0].target.attr.value)
    return found


def legacy_dependency(
    function: cst.FunctionDef, module: ModuleType, helpers: dict[str, set[str]], packaged: bool
) -> str | None:
    """The dependency of a route whose chain would still open the legacy session in the
    twin (`current_user=Depends(get_current_user)` on `get_db`, from a module not
    translated with it), else None. Such a twin would run on two sessions."""
    for param in [*function.params.params, *function.params.kwonly_params]:
        default = param.default
        if not (isinstance(default, cst.Call) and default.args):
            continue
        if getattr(resolve_expression(default.func, module), "__name__", None) != "Depends":
            continue
        provider = resolve_expression(default.args[0].value, module)
        if (
            callable(provider)
            and not is_session_provider(provider)
            and _opens_legacy_session(provider, helpers, packaged, set())
        ):
            return cst.Module([]).code_for_node(default.args[0].value)
    return None


def _opens_legacy_session(
    dependency: Any, helpers: dict[str, set[str]], packaged: bool, seen: set[int]
) -> bool:
    if id(dependency) in seen:
        return False
    seen.add(id(dependency))
    # A dependency from a module translated in this run (and reached through the output
    # package) is its twin: its session parameter became get_async_session.
    twin = packaged and getattr(dependency, "__module__", None) in helpers
    try:
        parameters = inspect.signature(dependency).parameters.values()
    except (TypeError, ValueError):
        return False
    for parameter in parameters:
        inner = getattr(parameter.default, "dependency", None)
        if inner is None or not callable(inner):
            continue
        if is_session_provider(inner):
            if not twin:
                return True
        elif _opens_legacy_session(inner, helpers, packaged, seen):
            return True
    return False
