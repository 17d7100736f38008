"""How `gateway translate` edits a function: each translated node gets an edit (its new
code, an `await`, or a fallback to `await db.run_sync(...)` of the original), recorded
while a function is read and applied bottom-up afterwards, so libcst keeps everything else
exactly as written.

    reader.replace(node, chain.render_terminal)   # recorded now, rendered when applied
    tree.visit(Applier(edits, comments))          # the module with every edit made
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider

from gateway.translate.chains import Chain, Entity, InstanceModels, Untranslatable, read_chain
from gateway.translate.functions import AsyncCallFinder, model_attributes
from gateway.translate.source import module_value
from gateway.translate.summary import mark_lines

__all__ = ["Applier", "Edit", "QueryEdits", "is_name", "names"]

Edit = Callable[[cst.CSTNode], cst.CSTNode]


class QueryEdits(cst.CSTVisitor):
    """The edits of one function's translation, and the sites it falls back on; the
    function reader visits, this records."""

    METADATA_DEPENDENCIES = (ParentNodeProvider, PositionProvider)

    def __init__(
        self,
        tree: cst.Module,
        module: ModuleType,
        helpers: dict[str, set[str]],
        session: str,
        owner: type | None = None,
    ) -> None:
        self.tree, self.module, self.helpers = tree, module, helpers
        self.session, self.owner = session, owner
        self.models = InstanceModels(frozenset(model_attributes(owner) if owner else ()))
        self.edits: dict[cst.CSTNode, Edit] = {}
        self.problems: list[tuple[cst.CSTNode, str]] = []
        self.sites: list[tuple[cst.CSTNode, str]] = []
        self.variables: dict[str, Chain] = {}
        self.ambiguous: set[str] = set()
        self.chains: list[Chain] = []
        self.expressions: dict[str, Any] = {}  # locals holding SQL expressions: their root

    def code(self, node: cst.CSTNode) -> str:
        return self.tree.code_for_node(node)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.get_metadata(ParentNodeProvider, node, None)

    def lookup(self, name: str) -> Any:
        if name == "self" and self.owner is not None:
            return self.models
        if name in self.expressions:
            return self.expressions[name]
        return module_value(self.module, name)

    def calls_async_helper(self, node: cst.CSTNode) -> bool:
        finder = AsyncCallFinder(self.module, self.helpers, self.owner)
        node.visit(finder)
        return finder.found

    def chain_of(self, node: cst.BaseExpression) -> Chain | None:
        chain = read_chain(
            node,
            session=self.session,
            resolve=self.lookup,
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
            words = set(names(step.args))
            if self.session in words or words & set(self.variables) - {chain.base_code}:
                raise Untranslatable(f"a query argument uses the session or a query: {step.args}")
        if self.calls_async_helper(node):
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
        words = set(names(self.code(node)))
        # super() needs the method's own frame: inside run_sync's lambda it has none.
        if "super" in words or self.calls_async_helper(node):
            self.problems.append((node, reason))
            return
        if words & (set(self.variables) | self.ambiguous):
            self.problems.append((node, reason))
            return
        db = self.session
        self.sites.append((node, reason))
        self.replace(node, lambda: f"await {db}.run_sync(lambda {db}: {self.code(node)})")

    def terminal(self, node: cst.BaseExpression, chain: Chain) -> None:
        """Replace a query ending in a terminal; fall back if it cannot be rendered."""
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


class Applier(cst.CSTTransformer):
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
                cst.EmptyLine(comment=cst.Comment(line))
                for c in self.comments[original]
                for line in mark_lines(c)
            ]
            updated = updated.with_changes(leading_lines=[*updated.leading_lines, *lines])
        return updated


def is_name(node: cst.CSTNode, name: str) -> bool:
    """Whether `node` is the bare name `name`."""
    return isinstance(node, cst.Name) and node.value == name


def names(code: str) -> list[str]:
    """The identifiers in a piece of source."""
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code)
