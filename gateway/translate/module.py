"""One module's translation: each function that takes a session (or awaits a helper that
became async) is read, then rewritten in place, or falls back as a whole; the imports the
new code needs are added last.

    ModuleTranslator(path, "app.crud", module, tree, helpers, delegated).run()   # a Translation

A function that opens its own sync session (`db = SessionLocal()`, a background task) and
calls helpers that became async stays sync and runs its legacy original, which calls the
legacy helpers on the legacy session: a fallback that runs. A function taking a session
nested in another is not reached; the summary says so.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from gateway.translate.edits import Applier, Edit
from gateway.translate.functions import (
    Function,
    calls_own_async_methods,
    functions_of,
    legacy_dependency,
    nested_session_functions,
    session_parameter,
)
from gateway.translate.imports import note_imports, with_imports, without_unused
from gateway.translate.loads import eager_loads
from gateway.translate.reader import FunctionReader
from gateway.translate.responses import nested_response_model, response_edits
from gateway.translate.signature import legacy_delegate, signature_edit, whole_fallback
from gateway.translate.source import is_route, response_model
from gateway.translate.summary import Fallback, Translation

__all__ = ["ModuleTranslator"]


class ModuleTranslator:
    """Translates one parsed module; `helpers` maps each module translated with it (dotted
    names, this one included) to its functions that become async (`Class.method` for
    methods); `delegated` names its functions that open their own session."""

    def __init__(
        self,
        path: Path,
        name: str,
        module: ModuleType,
        tree: cst.Module,
        helpers: dict[str, set[str]],
        delegated: set[str] | None = None,
        *,
        packaged: bool = False,
    ) -> None:
        self.path, self.name, self.module = path, name, module
        self.delegated = delegated or set()
        self.packaged = packaged  # output keeps the package: relative imports reach twins
        self.wrapper = MetadataWrapper(tree)
        self.tree = self.wrapper.module
        self.helpers = helpers
        self.result = Translation(path, name, "")
        self.needed: set[str] = set()
        self.positions = self.wrapper.resolve(PositionProvider)
        self.parents = self.wrapper.resolve(ParentNodeProvider)

    def line(self, node: cst.CSTNode) -> int:
        return int(self.positions[node].start.line)

    def run(self) -> Translation:
        edits: dict[cst.CSTNode, Edit] = {}
        comments: dict[cst.CSTNode, list[str]] = {}
        for function in functions_of(self.tree, self.module):
            if function.name in self.delegated:
                reason = "opens its own session: runs its legacy original, kept sync"
                self._fallback(function.node, function.name, reason)
                self.needed.add("legacy")
                edits[function.node] = legacy_delegate(function.node, function.name, reason)
            elif function.name in self.helpers[self.name]:
                mixed = is_route(function.node) and legacy_dependency(
                    function.node, self.module, self.helpers, self.packaged
                )
                if mixed:
                    self._mixed(function, mixed, edits)
                    continue
                self.result.translated.append(function.name)
                edits[function.node] = self._function(function, edits, comments)
        for node in nested_session_functions(self.tree, self.module):
            reason = "takes a session but is nested in a function or class: translate it by hand"
            self.result.not_translated.append(
                Fallback(str(self.path), self.line(node), node.name.value, reason)
            )
        code = with_imports(
            self.tree.visit(Applier(edits, comments)), self.needed, self.module, self.path
        )
        code = without_unused(self.tree, code)
        self.result.code = code.code
        return self.result

    def _mixed(self, function: Function, dependency: str, edits: dict[cst.CSTNode, Edit]) -> None:
        """A route whose dependency chain would still open the legacy session: its twin
        runs the legacy route as it is, rather than mixing two sessions in one request."""
        reason = (
            f"its dependency {dependency} opens the legacy session and is not translated "
            "with it (translate its module in the same run, with -o DIRECTORY): the twin "
            "runs the legacy route"
        )
        node = function.node
        self.result.not_translated.append(
            Fallback(str(self.path), self.line(node), function.name, reason)
        )
        self.needed.add("legacy")
        edits[node] = legacy_delegate(node, function.name, reason)

    def _fallback(self, node: cst.CSTNode, name: str, reason: str) -> None:
        self.result.fallbacks.append(Fallback(str(self.path), self.line(node), name, reason))

    def _function(
        self,
        found: Function,
        edits: dict[cst.CSTNode, Edit],
        comments: dict[cst.CSTNode, list[str]],
    ) -> Edit:
        function = found.node
        param = session_parameter(function, self.module)
        session = param.name.value if param else ""
        reader = FunctionReader(self.tree, self.module, self.helpers, session, found.owner)
        reader.metadata = {  # share the module's resolved metadata with the reader
            ParentNodeProvider: self.parents,
            PositionProvider: self.positions,
        }
        function.body.visit(reader)
        model = response_model(function, self.module)
        for reason in eager_loads(reader.reads, reader.returns, model, self.module, self.needed):
            reader.problems.append((function, reason))
        name = found.name
        if param is None and session == "":
            reader.problems.append(
                (function, "awaits a helper that became async but takes no session to run it")
            )
        if (
            reader.problems
            and found.owner
            and calls_own_async_methods(found, self.module, self.helpers)
        ):
            node, reason = reader.problems[0]
            why = f"{reason}; its legacy original calls methods of self that became async"
            self.result.translated.remove(name)
            self.result.not_translated.append(Fallback(str(self.path), self.line(node), name, why))
            return lambda updated: updated
        if reader.problems:
            node, reason = reader.problems[0]
            self._fallback(node, name, reason)
            response = nested_response_model(function, self.module) if is_route(function) else None
            return whole_fallback(function, name, param, reason, self.needed, response)
        for node, reason in reader.sites:
            self._fallback(node, name, reason)
            statement = self._statement_of(node)
            comments.setdefault(statement, []).append(reason)
        note_imports(reader.chains, self.needed)
        edits.update(reader.edits)
        if is_route(function) and session:
            edits.update(response_edits(function, self.module, session, self.needed))
        return signature_edit(function, param, self.needed)

    def _statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(
            current, cst.SimpleStatementLine | cst.BaseCompoundStatement
        ):
            current = self.parents.get(current)
        return current or node
