"""`gateway translate`: a legacy Query-style module in, its async twin out (SQLAlchemy 2.0+).

    result = translate_file(Path("legacy_routes/users.py"))
    Path("users_translated.py").write_text(result.code)
    for fallback in result.fallbacks: print(fallback)   # users.py:42: reason

Every top-level function that takes a `Session` becomes `async def` taking an AsyncSession
(`AsyncDB` in routes); each `db.query(...)` chain becomes `select()` code through the table
in `gateway.translate_chains`; session I/O and calls of helpers that became async get
`await`; relationships read after a query (in the function, or by its route's
`response_model`) get `selectinload`. What is not certain is not guessed: the site runs the
original code through `await db.run_sync(...)`, or the whole function calls the original,
with a `# gateway-translate: fallback: <reason>` comment. Everything else is kept as written:
libcst edits only the nodes it translates.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider
from pydantic import BaseModel
from sqlalchemy.orm import Session

from gateway.compat import SQLALCHEMY
from gateway.exceptions import CommandError
from gateway.translate_chains import Chain, Untranslatable, read_chain, relationship_target
from gateway.translate_models import relationship_paths

__all__ = ["Fallback", "Translation", "translate_file", "translate_files"]

MARK = "gateway-translate: fallback"
AWAITED = {
    "commit", "rollback", "flush", "refresh", "merge", "delete", "execute", "scalar",
    "scalars", "close", "get_one", "get",
}  # fmt: skip
SYNC_SESSION = {"add", "add_all", "expunge", "expunge_all", "expire", "expire_all", "is_modified"}
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}
RESULT_TERMINALS = {"first", "one", "one_or_none", "get", "all", "scalar"}


@dataclass(frozen=True)
class Fallback:
    """One site the translator did not translate: where, which function, and why."""

    path: str
    line: int
    function: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.function}: {self.reason}"


@dataclass
class Translation:
    """The translated module's code and what became of each function."""

    source: Path
    module: str
    code: str
    translated: list[str] = field(default_factory=list)  # functions now async
    fallbacks: list[Fallback] = field(default_factory=list)

    @property
    def fallback_functions(self) -> set[str]:
        return {f.function for f in self.fallbacks}


def translate_file(
    source: Path, *, async_helpers: dict[str, set[str]] | None = None
) -> Translation:
    """Translate one module; `async_helpers` maps other translated modules (dotted names)
    to the functions that became async there, so calls of them get `await` too."""
    return translate_files([source], async_helpers=async_helpers)[0]


def translate_files(
    sources: list[Path], *, async_helpers: dict[str, set[str]] | None = None
) -> list[Translation]:
    """Translate modules together: a helper made async in one is awaited in the others."""
    _require_sqlalchemy_2()
    loaded = [(path, *_import(path)) for path in sources]
    helpers = dict(async_helpers or {})
    trees = {}
    for path, name, module in loaded:
        tree = cst.parse_module(path.read_text())
        trees[name] = tree
        helpers[name] = _session_functions(tree, module)
    # A function that awaits a translated helper is async itself: repeat until nothing grows.
    grew = True
    while grew:
        grew = False
        for _path, name, module in loaded:
            callers = _callers_of(trees[name], module, helpers)
            if not callers <= helpers[name]:
                helpers[name] |= callers
                grew = True
    return [
        _ModuleTranslator(path, name, module, trees[name], helpers).run()
        for path, name, module in loaded
    ]


def _require_sqlalchemy_2() -> None:
    if SQLALCHEMY < (2, 0, 0):
        found = ".".join(map(str, SQLALCHEMY))
        raise CommandError(
            f"gateway translate needs SQLAlchemy 2.0 or newer (found {found}); "
            "the gateway itself runs on 1.4, but the translation table is 2.0's select() API. "
            "Translate in an environment with SQLAlchemy 2.x."
        )


def _import(path: Path) -> tuple[str, ModuleType]:
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


def _session_parameter(function: cst.FunctionDef, module: ModuleType) -> cst.Param | None:
    for param in [*function.params.params, *function.params.kwonly_params]:
        if param.annotation is None:
            continue
        annotation = param.annotation.annotation
        value = _resolve_expression(annotation, module)
        if isinstance(value, type) and issubclass(value, Session):
            return param
    return None


def _resolve_expression(node: cst.BaseExpression, module: ModuleType) -> Any:
    """The value of a name or dotted name in the module's namespace, else None."""
    if isinstance(node, cst.Name):
        return module.__dict__.get(node.value)
    if isinstance(node, cst.Attribute):
        owner = _resolve_expression(node.value, module)
        return getattr(owner, node.attr.value, None) if owner is not None else None
    return None


def _session_functions(tree: cst.Module, module: ModuleType) -> set[str]:
    return {
        statement.name.value
        for statement in tree.body
        if isinstance(statement, cst.FunctionDef) and _session_parameter(statement, module)
    }


def _callers_of(tree: cst.Module, module: ModuleType, helpers: dict[str, set[str]]) -> set[str]:
    found = set()
    for statement in tree.body:
        if isinstance(statement, cst.FunctionDef) and not statement.asynchronous:
            finder = _AsyncCallFinder(module, helpers)
            statement.body.visit(finder)
            if finder.found:
                found.add(statement.name.value)
    return found


def async_callee(call: cst.Call, module: ModuleType, helpers: dict[str, set[str]]) -> bool:
    """Whether `call` calls a function that the translation makes async."""
    func = call.func
    if isinstance(func, cst.Name):
        if func.value in helpers.get(module.__name__, set()):
            return True
        value = module.__dict__.get(func.value)
        origin = getattr(value, "__module__", None)
        return origin in helpers and getattr(value, "__name__", None) in helpers[origin]
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        owner = module.__dict__.get(func.value.value)
        if isinstance(owner, ModuleType) and owner.__name__ in helpers:
            return func.attr.value in helpers[owner.__name__]
    return False


class _AsyncCallFinder(cst.CSTVisitor):
    def __init__(self, module: ModuleType, helpers: dict[str, set[str]]) -> None:
        self.module, self.helpers, self.found = module, helpers, False

    def visit_Call(self, node: cst.Call) -> None:
        if async_callee(node, self.module, self.helpers):
            self.found = True


@dataclass
class _Result:
    """A local name holding ORM objects: which query loaded them, their class, the path."""

    chain: Chain | None
    mapped: type
    path: tuple[str, ...] = ()
    many: bool = False


Edit = Callable[[cst.CSTNode], cst.CSTNode]


class _FunctionReader(cst.CSTVisitor):
    """Reads one function: the edits its translation makes, what it falls back on, and the
    relationships it reads after its queries."""

    METADATA_DEPENDENCIES = (ParentNodeProvider, PositionProvider)

    def __init__(self, owner: _ModuleTranslator, function: cst.FunctionDef, session: str) -> None:
        self.owner = owner
        self.function = function
        self.session = session
        self.edits: dict[cst.CSTNode, Edit] = {}
        self.problems: list[tuple[cst.CSTNode, str]] = []
        self.sites: list[tuple[cst.CSTNode, str]] = []
        self.variables: dict[str, Chain] = {}
        self.results: dict[str, _Result] = {}
        self.ambiguous: set[str] = set()
        self.reads: list[tuple[Chain | None, tuple[str, ...], str]] = []
        self.returned: list[Chain] = []
        self.handled: set[int] = set()
        self.chains: list[Chain] = []
        self.orm_names: set[str] = set()  # locals holding ORM objects
        self.expired = False  # a rollback() or expire_all() happened above, in source order

    # -- helpers ------------------------------------------------------------------------

    def code(self, node: cst.CSTNode) -> str:
        return self.owner.tree.code_for_node(node)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.get_metadata(ParentNodeProvider, node, None)

    def chain_of(self, node: cst.BaseExpression) -> Chain | None:
        chain = read_chain(
            node,
            session=self.session,
            resolve=self.owner.resolve,
            code=self.code,
            variables=self.variables,
            nested=self._exists_entity,
        )
        if chain is not None:
            self._check_arguments(chain, node)
            self.chains.append(chain)
        return chain

    def _exists_entity(self, node: cst.BaseExpression) -> Any:
        """`db.query(<query>.exists())`: the inner query's EXISTS, as a column."""
        from gateway.translate_chains import Entity

        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            return None
        if node.func.attr.value != "exists":
            return None
        inner = self.chain_of(node)
        if inner is None or inner.terminal is None or inner.terminal.name != "exists":
            return None
        return Entity(inner.render_exists(), "column")

    def _check_arguments(self, chain: Chain, node: cst.BaseExpression) -> None:
        """Chain arguments are copied as source: they must not need translating themselves."""
        for step in [*chain.steps, *([chain.terminal] if chain.terminal else [])]:
            words = set(_names(step.args))
            if self.session in words or words & set(self.variables) - {chain.base_code}:
                raise Untranslatable(f"a query argument uses the session or a query: {step.args}")
        finder = _AsyncCallFinder(self.owner.module, self.owner.helpers)
        node.visit(finder)
        if finder.found:
            raise Untranslatable("a query argument calls a helper that became async")

    def replace(self, node: cst.CSTNode, code: Callable[[], str]) -> None:
        def edit(_updated: cst.CSTNode) -> cst.CSTNode:
            return self.parenthesized(node, cst.parse_expression(code()))

        self.edits[node] = edit

    def parenthesized(self, node: cst.CSTNode, new: cst.BaseExpression) -> cst.BaseExpression:
        parent = self.parent(node)
        needs = (
            isinstance(parent, cst.Attribute | cst.Subscript)
            and getattr(parent, "value", None) is node
        ) or (isinstance(parent, cst.Call) and parent.func is node)
        if needs and isinstance(new, cst.Await):
            return new.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return new

    def await_call(self, node: cst.Call) -> None:
        def edit(updated: cst.CSTNode) -> cst.CSTNode:
            if not isinstance(updated, cst.BaseExpression):  # pragma: no cover
                return updated
            return self.parenthesized(node, cst.Await(expression=updated))

        self.edits[node] = edit

    def fall_back(self, node: cst.BaseExpression, reason: str) -> None:
        """Run the original expression on the sync session: certain, if nothing in it changed."""
        words = set(_names(self.code(node)))
        finder = _AsyncCallFinder(self.owner.module, self.owner.helpers)
        node.visit(finder)
        if finder.found or words & (set(self.variables) | self.ambiguous):
            self.problems.append((node, reason))
            return
        db = self.session
        self.sites.append((node, reason))
        self.replace(node, lambda: f"await {db}.run_sync(lambda {db}: {self.code(node)})")

    # -- statements -----------------------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return self._nested(node)

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return self._nested(node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        return self._nested(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return self._nested(node)

    def _nested(self, node: cst.CSTNode) -> bool:
        words = set(_names(self.code(node)))
        if self.session in words or words & set(self.variables):
            self.problems.append((node, "the session is used inside a nested scope"))
        return False

    def visit_Yield(self, node: cst.Yield) -> bool:
        self.problems.append((node, "a generator: its async version would be an async generator"))
        return False

    def visit_With(self, node: cst.With) -> bool | None:
        for item in node.items:
            if self.session in set(_names(self.code(item.item))):
                self.problems.append((node, "a `with` block on the session or its transaction"))
                return False
        return None

    def visit_Assign(self, node: cst.Assign) -> bool | None:
        if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return None
        name = node.targets[0].target.value
        value = node.value
        try:
            chain = self.chain_of(value)
        except Untranslatable as exc:
            if self._is_query_builder(value):
                self.problems.append((node, f"query object {name!r}: {exc}"))
                return False
            self.fall_back(value, str(exc))
            self._forget(name)
            return False
        if chain is None:
            self._track_constructed(name, value)
            return None
        if chain.terminal is None:
            if name in self.results or (name in self.variables and chain.base_code != name):
                self.problems.append((node, f"{name!r} holds a query and other values"))
            self.variables[name] = chain
            self.replace(value, lambda: chain.statement())
            return False
        self._terminal(value, chain)
        self._record_result(name, chain)
        self.orm_names.add(name)
        return False

    def _is_query_builder(self, value: cst.BaseExpression) -> bool:
        code = self.code(value)
        return f"{self.session}.query(" in code and not any(
            code.rstrip().endswith(f".{t}()") for t in RESULT_TERMINALS
        )

    def _track_constructed(self, name: str, value: cst.BaseExpression) -> None:
        self._forget(name)
        if self._session_result(value):
            self.orm_names.add(name)
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
            mapped = self.owner.resolve(value.func.value)
            if isinstance(mapped, type) and relationship_paths_possible(mapped):
                self.results[name] = _Result(None, mapped)

    def _session_result(self, value: cst.BaseExpression) -> bool:
        while isinstance(value, cst.Await):
            value = value.expression
        return (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and _is_name(value.func.value, self.session)
        ) or (isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and (
            relationship_paths_possible_name(self.owner, value.func.value)))  # fmt: skip

    def _forget(self, name: str) -> None:
        if name in self.results or name in self.variables:
            self.ambiguous.add(name)
        self.results.pop(name, None)

    def _record_result(self, name: str, chain: Chain) -> None:
        terminal = chain.terminal.name if chain.terminal else ""
        if name in self.results or name in self.variables or name in self.ambiguous:
            self.ambiguous.add(name)
            self.results.pop(name, None)
            return
        if chain.single_entity and terminal in RESULT_TERMINALS and chain.primary.mapped:
            self.results[name] = _Result(chain, chain.primary.mapped, many=terminal == "all")

    def visit_Return(self, node: cst.Return) -> None:
        value = node.value
        if isinstance(value, cst.Name) and value.value in self.results:
            result = self.results[value.value]
            self.owner.returned(self, result)

    def visit_For(self, node: cst.For) -> bool | None:
        self._loop(node.target, node.iter)
        return None

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._comprehension(node.for_in)

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._comprehension(node.for_in)

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._comprehension(node.for_in)

    def _comprehension(self, for_in: cst.CompFor) -> None:
        # The element is visited before its `for`: name the loop variables first.
        current: cst.CompFor | None = for_in
        while current is not None:
            self._loop(current.target, current.iter)
            self.handled.add(id(current))
            current = current.inner_for_in

    def visit_CompFor(self, node: cst.CompFor) -> bool | None:
        if id(node) not in self.handled:
            self._loop(node.target, node.iter)
        return None

    def _loop(self, target: cst.BaseAssignTargetExpression, iterable: cst.BaseExpression) -> None:
        if not isinstance(target, cst.Name):
            return
        name = target.value
        if isinstance(iterable, cst.Name) and iterable.value in self.results:
            source = self.results[iterable.value]
            if source.many:
                self.results[name] = _Result(source.chain, source.mapped, source.path)
                return
        found = self._relationship_of(iterable)
        if found is not None:
            result, path, mapped = found
            self.results[name] = _Result(result.chain, mapped, path)
            return
        try:
            chain = self.chain_of(iterable)
        except Untranslatable as exc:
            self.fall_back(iterable, str(exc))
            return
        if chain is not None and chain.terminal is None:
            chain.terminal = _all_step(chain)
            self.replace(iterable, chain.render_terminal)
            if chain.single_entity and chain.primary.mapped:
                self.results[name] = _Result(chain, chain.primary.mapped)
            self.handled.add(id(iterable))

    # -- expressions ----------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> bool | None:
        if id(node) in self.handled or node in self.edits:
            return False
        try:
            chain = self.chain_of(node)
        except Untranslatable as exc:
            self.fall_back(node, str(exc))
            return False
        if chain is not None:
            if chain.terminal is None:
                self.problems.append((node, "a query object used as a value"))
            else:
                self._terminal(node, chain)
                if isinstance(self.parent(node), cst.Return):
                    self.owner.returned(self, _Result(chain, chain.primary.mapped or object))
            return False
        func = node.func
        if isinstance(func, cst.Attribute) and _is_name(func.value, self.session):
            return self._session_call(node, func.attr.value)
        if async_callee(node, self.owner.module, self.owner.helpers):
            self._mark_handled_session_args(node)
            self.await_call(node)
            return None
        if any(_is_name(arg.value, self.session) for arg in node.args):
            self.fall_back(node, f"{self.code(node.func)}() is not translated and gets the session")
            return False
        return None

    def _session_call(self, node: cst.Call, method: str) -> bool | None:
        self.handled.add(id(node.func.value))  # type: ignore[attr-defined]
        if method == "get" and len(node.args) == 2 and not any(a.keyword for a in node.args):
            entity = self.owner.resolve_name(node.args[0].value)
            if entity is not None:
                code = self.code(node.args[0].value)
                chain = _get_chain(self.session, code, entity, self.code(node.args[1]))
                self.chains.append(chain)
                self._terminal(node, chain)
                parent = self.parent(node)
                if isinstance(parent, cst.Return):
                    self.owner.returned(self, _Result(chain, entity))
                self._pending_get = chain
                return False
        if method in ("rollback", "expire_all", "expire"):
            # Expired attributes load on their next read: I/O an AsyncSession refuses.
            self.expired = True
        if method in AWAITED:
            self.await_call(node)
            return None
        if method in SYNC_SESSION:
            return None
        self.fall_back(node, f"Session.{method}() has no certain async translation")
        return False

    def _mark_handled_session_args(self, node: cst.Call) -> None:
        for arg in node.args:
            if _is_name(arg.value, self.session):
                self.handled.add(id(arg.value))

    def _terminal(self, node: cst.BaseExpression, chain: Chain) -> None:
        terminal = chain.terminal
        if terminal is not None and terminal.name == "exists":
            self.replace(node, chain.render_exists)
        else:
            self.replace(node, chain.render_terminal)
        try:
            if terminal is not None and terminal.name == "exists":
                chain.render_exists()
            else:
                chain.render_terminal()
        except Untranslatable as exc:
            del self.edits[node]
            self.fall_back(node, str(exc))

    def visit_Subscript(self, node: cst.Subscript) -> bool | None:
        try:
            chain = self.chain_of(node.value)
        except Untranslatable as exc:
            self.fall_back(node, str(exc))
            return False
        if chain is None:
            return None
        bounds = _literal_slice(node)
        if chain.terminal is not None or bounds is None:
            self.fall_back(node, "a query indexed or sliced by anything but literal bounds")
            return False
        start, stop = bounds

        def render() -> str:
            return chain.render_slice(start, stop)

        self.replace(node, render)
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool | None:
        if self.expired and isinstance(node.value, cst.Name) and node.value.value in self.orm_names:
            self.problems.append(
                (node, f"{self.code(node)} is read after the session expired it (rollback/expire)")
            )
        found = self._relationship_of(node)
        if found is not None:
            result, path, _mapped = found
            self.reads.append((result.chain, path, self.code(node)))
            if result.chain is None:
                self.problems.append(
                    (node, f"relationship {self.code(node)} is read on an object no query loaded")
                )
        return None

    def _relationship_of(
        self, node: cst.BaseExpression
    ) -> tuple[_Result, tuple[str, ...], type] | None:
        """(result, path, class) when `node` is `var.rel[.rel2...]` of a known result."""
        hops: list[str] = []
        current = node
        while isinstance(current, cst.Attribute):
            hops.insert(0, current.attr.value)
            current = current.value
        if not isinstance(current, cst.Name) or current.value not in self.results or not hops:
            return None
        result = self.results[current.value]
        if result.many:
            return None
        mapped: type = result.mapped
        path = result.path
        for hop in hops:
            target = relationship_target(mapped, hop)
            if target is None:
                break
            path, mapped = (*path, hop), target
        if path == result.path:
            return None
        return result, path, mapped

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) in self.handled:
            return
        if node.value == self.session:
            parent = self.parent(node)
            self.problems.append(
                (parent or node, f"the session is used as {self.code(parent or node)!r}")
            )
        elif node.value in self.variables:
            self.problems.append((node, f"query object {node.value!r} is used as a value"))


def relationship_paths_possible_name(owner: _ModuleTranslator, name: str) -> bool:
    value = owner.module.__dict__.get(name)
    return isinstance(value, type) and relationship_paths_possible(value)


def relationship_paths_possible(mapped: type) -> bool:
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import Mapper

    return isinstance(sa_inspect(mapped, raiseerr=False), Mapper)


def _get_chain(session: str, entity_code: str, entity: type, ident: str) -> Chain:
    from gateway.translate_chains import Entity, Step

    chain = Chain(session, [Entity(entity_code, "entity", entity)], [])
    chain.terminal = Step("get", ident, cst.Call(func=cst.Name("get")))
    return chain


def _all_step(chain: Chain) -> Any:
    from gateway.translate_chains import Step

    return Step("all", "", cst.Call(func=cst.Name("all")))


def _literal_slice(node: cst.Subscript) -> tuple[int, int | None] | None:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Slice):
        return None
    part = node.slice[0].slice
    if part.step is not None:
        return None
    lower = part.lower
    upper = part.upper
    start = int(lower.value) if isinstance(lower, cst.Integer) else (0 if lower is None else None)
    stop = int(upper.value) if isinstance(upper, cst.Integer) else None
    if start is None or (upper is not None and stop is None):
        return None
    if stop is not None and stop <= start:
        return None  # the Query returns [] without a statement
    return start, stop


def _is_name(node: cst.CSTNode, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _names(code: str) -> list[str]:
    import re

    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code)


class _Applier(cst.CSTTransformer):
    """Applies the readers' edits bottom-up and adds the fallback comments."""

    def __init__(self, edits: dict[cst.CSTNode, Edit], comments: dict[cst.CSTNode, list[str]]):
        self.edits = edits
        self.comments = comments

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> Any:
        if original in self.edits:
            updated = self.edits[original](updated)
        if original in self.comments and isinstance(
            updated, cst.SimpleStatementLine | cst.BaseCompoundStatement
        ):
            lines = [
                cst.EmptyLine(comment=cst.Comment(f"# {MARK}: {c}"))
                for c in self.comments[original]
            ]
            updated = updated.with_changes(leading_lines=[*updated.leading_lines, *lines])
        return updated


class _ModuleTranslator:
    def __init__(
        self,
        path: Path,
        name: str,
        module: ModuleType,
        tree: cst.Module,
        helpers: dict[str, set[str]],
    ) -> None:
        self.path, self.name, self.module = path, name, module
        self.wrapper = MetadataWrapper(tree)
        self.tree = self.wrapper.module
        self.helpers = helpers
        self.result = Translation(path, name, "")
        self.needed: set[str] = set()
        self.positions = self.wrapper.resolve(PositionProvider)
        self.parents = self.wrapper.resolve(ParentNodeProvider)
        self._returns: list[tuple[_FunctionReader, _Result]] = []

    def resolve(self, name: str) -> Any:
        if name not in self.module.__dict__:
            raise Untranslatable(f"{name!r} is not a module-level name of {self.name}")
        return self.module.__dict__[name]

    def resolve_name(self, node: cst.BaseExpression) -> type | None:
        if isinstance(node, cst.Name):
            value = self.module.__dict__.get(node.value)
            if isinstance(value, type) and relationship_paths_possible(value):
                return value
        return None

    def returned(self, reader: _FunctionReader, result: _Result) -> None:
        self._returns.append((reader, result))

    def line(self, node: cst.CSTNode) -> int:
        return int(self.positions[node].start.line)

    def run(self) -> Translation:
        edits: dict[cst.CSTNode, Edit] = {}
        comments: dict[cst.CSTNode, list[str]] = {}
        for statement in self.tree.body:
            if not isinstance(statement, cst.FunctionDef) or statement.asynchronous:
                continue
            name = statement.name.value
            if name not in self.helpers[self.name]:
                continue
            self.result.translated.append(name)
            edits[statement] = self._function(statement, edits, comments)
        code = self._with_imports(self.tree.visit(_Applier(edits, comments)))
        self.result.code = code.code
        return self.result

    def _function(
        self,
        function: cst.FunctionDef,
        edits: dict[cst.CSTNode, Edit],
        comments: dict[cst.CSTNode, list[str]],
    ) -> Edit:
        param = _session_parameter(function, self.module)
        session = param.name.value if param else self._session_from_calls(function)
        reader = _FunctionReader(self, function, session)
        self._returns = []
        reader.metadata = {  # share the module's resolved metadata with the reader
            ParentNodeProvider: self.parents,
            PositionProvider: self.positions,
        }
        function.body.visit(reader)
        self._eager_loads(reader, function)
        name = function.name.value
        if param is None and session == "":
            reader.problems.append((function, "awaits a helper but has no session to run it"))
        if reader.problems:
            node, reason = reader.problems[0]
            self.result.fallbacks.append(Fallback(str(self.path), self.line(node), name, reason))
            return self._whole_fallback(function, param, reason)
        for node, reason in reader.sites:
            self.result.fallbacks.append(Fallback(str(self.path), self.line(node), name, reason))
            statement = self._statement_of(node)
            comments.setdefault(statement, []).append(reason)
        self._note_imports(reader)
        edits.update(reader.edits)
        route = _is_route(function)

        def edit(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.FunctionDef)
            return self._signature(updated, param, route)

        return edit

    def _session_from_calls(self, function: cst.FunctionDef) -> str:
        return ""

    def _statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(
            current, cst.SimpleStatementLine | cst.BaseCompoundStatement
        ):
            current = self.parents.get(current)
        return current or node

    def _eager_loads(self, reader: _FunctionReader, function: cst.FunctionDef) -> None:
        needed: dict[int, tuple[Chain, set[tuple[str, ...]]]] = {}
        for chain, path, _code in reader.reads:
            if chain is not None:
                needed.setdefault(id(chain), (chain, set()))[1].add(path)
        model = _response_model(function, self.module)
        for owner, result in self._returns:
            if owner is not reader or result.chain is None or model is None:
                continue
            for path in relationship_paths(model, result.mapped):
                needed.setdefault(id(result.chain), (result.chain, set()))[1].add(
                    (*result.path, *path)
                )
        for chain, paths in needed.values():
            maximal = {p for p in paths if not any(q != p and q[: len(p)] == p for q in paths)}
            for path in sorted(maximal):
                if path in chain.loaded or any(q[: len(path)] == path for q in chain.loaded):
                    continue
                if chain.unknown_options or any(path[: len(q)] == q for q in chain.loaded):
                    reader.problems.append(
                        (function, f"relationship path {'.'.join(path)} needs an eager load "
                         "next to loader options the translator cannot combine with certainty")
                    )  # fmt: skip
                    continue
                option = self._selectinload(chain, path)
                if option is None:
                    reader.problems.append(
                        (function, f"relationship path {'.'.join(path)} crosses a class the "
                         "module does not import")
                    )  # fmt: skip
                    continue
                chain.eager.append(option)

    def _selectinload(self, chain: Chain, path: tuple[str, ...]) -> str | None:
        mapped = chain.primary.mapped
        if mapped is None:
            return None
        parts = []
        for hop in path:
            owner = self._name_of(mapped)
            if owner is None:
                return None
            parts.append(f"selectinload({owner}.{hop})")
            target = relationship_target(mapped, hop)
            if target is None:
                return None
            mapped = target
        self.needed.add("selectinload")
        return ".".join(parts)

    def _name_of(self, mapped: type) -> str | None:
        for key, value in self.module.__dict__.items():
            if value is mapped and not key.startswith("__"):
                return key
        return None

    def _note_imports(self, reader: _FunctionReader) -> None:
        for chain in reader.chains:
            if chain.terminal is None or chain.terminal.name != "get":
                self.needed.add("select")
            terminal = chain.terminal.name if chain.terminal else ""
            if terminal == "count":
                self.needed.add("func")
            if terminal == "exists":
                self.needed.add("literal_column")
            if terminal == "update":
                self.needed.add("sa_update")
            if terminal == "delete":
                self.needed.add("sa_delete")
        self.needed.add("queries")

    def _whole_fallback(
        self, function: cst.FunctionDef, param: cst.Param | None, reason: str
    ) -> Edit:
        session = param.name.value if param else "db"
        args = _call_arguments(function)
        self.needed.add("legacy")
        call = f"_legacy.{function.name.value}({args})"
        statement = cst.parse_statement(
            f"return await {session}.run_sync(lambda {session}: {call})\n"
        ).with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(f"# {MARK}: {reason}"))])
        body: list[Any] = []
        if function.get_docstring(clean=False) is not None:
            body.append(function.body.body[0])
        body.append(statement)
        route = _is_route(function)

        def edit(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.FunctionDef)
            renamed = updated.with_changes(body=updated.body.with_changes(body=body))
            return self._signature(renamed, param, route)

        return edit

    def _signature(
        self, function: cst.FunctionDef, param: cst.Param | None, route: bool
    ) -> cst.FunctionDef:
        function = function.with_changes(asynchronous=cst.Asynchronous())
        if param is None:
            return function
        name = param.name.value
        params = function.params
        positional = list(params.params)
        kwonly = list(params.kwonly_params)
        where = "params" if any(p.name.value == name for p in positional) else "kwonly"
        current = positional if where == "params" else kwonly
        index = next(i for i, p in enumerate(current) if p.name.value == name)
        old = current[index]
        if route and old.default is not None:
            self.needed.add("AsyncDB")
            new = old.with_changes(
                annotation=cst.Annotation(cst.Name("AsyncDB")),
                default=None,
                equal=cst.MaybeSentinel.DEFAULT,
            )
            current[index] = new
            earlier_default = any(p.default is not None for p in positional[:index])
            if where == "params" and earlier_default:
                # A parameter without a default cannot follow ones with defaults; FastAPI
                # calls endpoints by keyword, so the route's parameters become keyword-only.
                kwonly = [*positional, *kwonly]
                positional = []
                return function.with_changes(
                    params=params.with_changes(
                        params=positional, kwonly_params=kwonly, star_arg=cst.ParamStar()
                    )
                )
        elif old.default is not None:
            self.needed.add("get_async_session")
            new = old.with_changes(
                annotation=cst.Annotation(cst.Name("AsyncSession")),
                default=cst.parse_expression("Depends(get_async_session)"),
            )
            self.needed.add("AsyncSession")
            current[index] = new
        else:
            self.needed.add("AsyncSession")
            current[index] = old.with_changes(annotation=cst.Annotation(cst.Name("AsyncSession")))
        if where == "params":
            positional = current
        else:
            kwonly = current
        return function.with_changes(
            params=params.with_changes(params=positional, kwonly_params=kwonly)
        )

    def _with_imports(self, tree: cst.Module) -> cst.Module:
        lines = []
        sqlalchemy_names = sorted(
            n for n in ("func", "literal_column", "select") if n in self.needed
        )
        writes = [f"{n[3:]} as {n}" for n in ("sa_delete", "sa_update") if n in self.needed]
        for name in [*sqlalchemy_names, "queries", "AsyncDB", "AsyncSession", "selectinload"]:
            self._check_free(name)
        if sqlalchemy_names or writes:
            lines.append(f"from sqlalchemy import {', '.join(sqlalchemy_names + writes)}")
        if "selectinload" in self.needed:
            lines.append("from sqlalchemy.orm import selectinload")
        if "AsyncSession" in self.needed:
            lines.append("from sqlalchemy.ext.asyncio import AsyncSession")
        gateway_names = [n for n in ("AsyncDB", "get_async_session", "queries") if n in self.needed]
        if gateway_names:
            lines.append(f"from gateway import {', '.join(gateway_names)}")
        if "legacy" in self.needed:
            lines.append(f"import {self.name} as _legacy")
        if not lines:
            return tree
        new = list(cst.parse_module("\n".join(lines) + "\n").body)
        body = list(tree.body)
        last_import = -1
        for index, statement in enumerate(body):
            if isinstance(statement, cst.SimpleStatementLine) and all(
                isinstance(s, cst.Import | cst.ImportFrom) for s in statement.body
            ):
                last_import = index
            elif index > 0 and last_import >= 0:
                break
        at = last_import + 1 if last_import >= 0 else (1 if tree.get_docstring() else 0)
        return tree.with_changes(body=[*body[:at], *new, *body[at:]])

    def _check_free(self, name: str) -> None:
        if name not in self.needed or name not in self.module.__dict__:
            return
        value = self.module.__dict__[name]
        origin = getattr(value, "__module__", "") or ""
        if not (
            origin.startswith(("sqlalchemy", "gateway"))
            or getattr(value, "__name__", "").startswith("gateway")
        ):
            raise CommandError(
                f"{self.path}: the module already defines {name!r} ({value!r}); the "
                f"translation needs that name for its own import. Rename it and translate again."
            )


def _call_arguments(function: cst.FunctionDef) -> str:
    params = function.params
    parts = [p.name.value for p in params.params]
    if isinstance(params.star_arg, cst.Param):
        parts.append(f"*{params.star_arg.name.value}")
    parts += [f"{p.name.value}={p.name.value}" for p in params.kwonly_params]
    if params.star_kwarg is not None:
        parts.append(f"**{params.star_kwarg.name.value}")
    return ", ".join(parts)


def _is_route(function: cst.FunctionDef) -> bool:
    for decorator in function.decorators:
        call = decorator.decorator
        if (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value in ROUTE_METHODS
        ):
            return True
    return False


def _response_model(function: cst.FunctionDef, module: ModuleType) -> type[BaseModel] | None:
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
                return _model_in(value)
    if function.returns is not None:
        value = _resolve_expression(function.returns.annotation, module)
        return _model_in(value)
    return None


def _model_in(value: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(value, type) and issubclass(value, BaseModel):
        return value
    for arg in typing.get_args(value):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
