"""The function reader of `gateway translate`: one function's statements, read in source
order, say what its translation edits. Each `db.query(...)` chain becomes `select()` code,
session I/O and calls of helpers that became async get `await`, and the locals holding ORM
objects are followed, so the relationships read from them get eager loads.

    reader = FunctionReader(tree, module, helpers, session="db")
    function.body.visit(reader)
    reader.edits, reader.sites, reader.problems   # edits, fallback sites, whole-function fallbacks
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import libcst as cst

from gateway.translate.chains import Chain, Entity, Step, Untranslatable
from gateway.translate.edits import QueryEdits, is_name, names
from gateway.translate.functions import async_callee
from gateway.translate.loads import Read, Result
from gateway.translate.models import relationship_target
from gateway.translate.source import is_mapped, mapped_class

__all__ = ["FunctionReader"]

AWAITED = {
    "commit", "rollback", "flush", "refresh", "merge", "delete", "execute", "scalar",
    "scalars", "close", "get_one", "get",
}  # fmt: skip
SYNC_SESSION = {"add", "add_all", "expunge", "expunge_all", "expire", "expire_all", "is_modified"}
RESULT_TERMINALS = {"first", "one", "one_or_none", "get", "all", "scalar"}


class FunctionReader(QueryEdits):
    """Reads one function: the edits its translation makes, what it falls back on, and the
    relationships it reads after its queries."""

    def __init__(
        self,
        tree: cst.Module,
        module: ModuleType,
        helpers: dict[str, set[str]],
        session: str,
        owner: type | None = None,
    ) -> None:
        super().__init__(tree, module, helpers, session, owner)
        self.results: dict[str, Result] = {}
        self.reads: list[Read] = []
        self.returns: list[Result] = []  # results the function returns
        self.handled: set[int] = set()
        self.orm_names: set[str] = set()  # locals holding ORM objects
        self.expired = False  # a rollback() or expire_all() happened above, in source order

    # -- statements -----------------------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return self._nested(node)

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return self._nested(node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        # Read in place (`sorted(t.name for t in post.tags)`) unless it would need an await.
        words = set(names(self.code(node)))
        if self.session in words or words & set(self.variables):
            return self._nested(node)
        self._comprehension(node.for_in)
        return True

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return self._nested(node)

    def _nested(self, node: cst.CSTNode) -> bool:
        words = set(names(self.code(node)))
        if self.session in words or words & set(self.variables):
            self.problems.append((node, "the session is used inside a nested scope"))
        return False

    def visit_Yield(self, node: cst.Yield) -> bool:
        self.problems.append((node, "a generator: its async version would be an async generator"))
        return False

    def visit_With(self, node: cst.With) -> bool | None:
        for item in node.items:
            if self.session in set(names(self.code(item.item))):
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
            self._track_expression(name, value)
            return None
        if chain.terminal is None:
            if name in self.results or (name in self.variables and chain.base_code != name):
                self.problems.append((node, f"{name!r} holds a query and other values"))
            self.variables[name] = chain
            self.replace(value, lambda: chain.statement())
            return False
        self.terminal(value, chain)
        self._record_result(name, chain)
        self.orm_names.add(name)
        return False

    def _track_expression(self, name: str, value: cst.BaseExpression) -> None:
        """A local holding a SQL expression (`votes = func.count(...).label(...)`) may be
        selected by a query: remember what it is built from."""
        self.expressions.pop(name, None)
        root = value
        while isinstance(root, cst.Call | cst.Attribute):
            root = root.func if isinstance(root, cst.Call) else root.value
        if isinstance(root, cst.Name) and root.value in self.module.__dict__:
            found = self.module.__dict__[root.value]
            origin = getattr(found, "__module__", None) or type(found).__module__
            if origin.startswith("sqlalchemy") or _is_mapped_class(found):
                self.expressions[name] = found

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
            mapped = self.lookup(value.func.value)
            if isinstance(mapped, type) and is_mapped(mapped):
                self.results[name] = Result(None, mapped)

    def _session_result(self, value: cst.BaseExpression) -> bool:
        while isinstance(value, cst.Await):
            value = value.expression
        return (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and is_name(value.func.value, self.session)
        ) or (isinstance(value, cst.Call) and mapped_class(self.module, value.func) is not None)

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
            self.results[name] = Result(chain, chain.primary.mapped, many=terminal == "all")

    def visit_Return(self, node: cst.Return) -> None:
        value = node.value
        if isinstance(value, cst.Name) and value.value in self.results:
            result = self.results[value.value]
            self.returns.append(result)

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
                self.results[name] = Result(source.chain, source.mapped, source.path)
                return
        found = self._relationship_of(iterable)
        if found is not None:
            result, path, mapped = found
            self.results[name] = Result(result.chain, mapped, path)
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
                self.results[name] = Result(chain, chain.primary.mapped)
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
                self.terminal(node, chain)
                if isinstance(self.parent(node), cst.Return):
                    self.returns.append(Result(chain, chain.primary.mapped or object))
            return False
        func = node.func
        if isinstance(func, cst.Attribute) and is_name(func.value, self.session):
            return self._session_call(node, func.attr.value)
        if async_callee(node, self.module, self.helpers, self.owner):
            self._mark_handled_session_args(node)
            self.await_call(node)
            return None
        if any(is_name(arg.value, self.session) for arg in node.args):
            self.fall_back(
                node,
                f"{self.code(node.func)}() gets the session but is not translated with this module",
            )
            return False
        return None

    def _session_call(self, node: cst.Call, method: str) -> bool | None:
        self.handled.add(id(node.func.value))  # type: ignore[attr-defined]
        if method == "get" and len(node.args) == 2 and not any(a.keyword for a in node.args):
            entity = mapped_class(self.module, node.args[0].value)
            if entity is not None:
                code = self.code(node.args[0].value)
                chain = _get_chain(self.session, code, entity, self.code(node.args[1]))
                self.chains.append(chain)
                self.terminal(node, chain)
                parent = self.parent(node)
                if isinstance(parent, cst.Return):
                    self.returns.append(Result(chain, entity))
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
            if is_name(arg.value, self.session):
                self.handled.add(id(arg.value))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:  # `f(db=db)`: the keyword is a name, not the session
            self.handled.add(id(node.keyword))

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
    ) -> tuple[Result, tuple[str, ...], type] | None:
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


def _is_mapped_class(value: object) -> bool:
    return isinstance(value, type) and is_mapped(value)


def _get_chain(session: str, entity_code: str, entity: type, ident: str) -> Chain:
    chain = Chain(session, [Entity(entity_code, "entity", entity)], [])
    chain.terminal = Step("get", ident, cst.Call(func=cst.Name("get")))
    return chain


def _all_step(chain: Chain) -> Any:
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
