"""One module's translation: each function that takes a session (or awaits a helper that
became async) is read, then rewritten in place, or falls back as a whole; the imports the
new code needs are added last.

    ModuleTranslator(path, "app.crud", module, tree, helpers).run()   # a Translation
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from gateway.translate.edits import Applier, Edit
from gateway.translate.imports import note_imports, with_imports
from gateway.translate.loads import eager_loads
from gateway.translate.reader import FunctionReader
from gateway.translate.signature import signature_edit, whole_fallback
from gateway.translate.source import response_model, session_parameter
from gateway.translate.summary import Fallback, Translation

__all__ = ["ModuleTranslator"]


class ModuleTranslator:
    """Translates one parsed module; `helpers` maps each module translated with it (dotted
    names, this one included) to its functions that become async."""

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
        code = with_imports(
            self.tree.visit(Applier(edits, comments)), self.needed, self.module, self.path
        )
        self.result.code = code.code
        return self.result

    def _function(
        self,
        function: cst.FunctionDef,
        edits: dict[cst.CSTNode, Edit],
        comments: dict[cst.CSTNode, list[str]],
    ) -> Edit:
        param = session_parameter(function, self.module)
        session = param.name.value if param else ""
        reader = FunctionReader(self.tree, self.module, self.helpers, session)
        reader.metadata = {  # share the module's resolved metadata with the reader
            ParentNodeProvider: self.parents,
            PositionProvider: self.positions,
        }
        function.body.visit(reader)
        model = response_model(function, self.module)
        for reason in eager_loads(reader.reads, reader.returns, model, self.module, self.needed):
            reader.problems.append((function, reason))
        name = function.name.value
        if param is None and session == "":
            reader.problems.append((function, "awaits a helper but has no session to run it"))
        if reader.problems:
            node, reason = reader.problems[0]
            self.result.fallbacks.append(Fallback(str(self.path), self.line(node), name, reason))
            return whole_fallback(function, param, reason, self.needed)
        for node, reason in reader.sites:
            self.result.fallbacks.append(Fallback(str(self.path), self.line(node), name, reason))
            statement = self._statement_of(node)
            comments.setdefault(statement, []).append(reason)
        note_imports(reader.chains, self.needed)
        edits.update(reader.edits)
        return signature_edit(function, param, self.needed)

    def _statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(
            current, cst.SimpleStatementLine | cst.BaseCompoundStatement
        ):
            current = self.parents.get(current)
        return current or node
