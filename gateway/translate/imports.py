"""The imports of a translated module: the names its new code uses (`select`, `func`,
`selectinload`, `AsyncSession`, the gateway's `AsyncDB` and `queries`, the original module
for fallbacks) that it does not import already, placed after its last absolute import
(its relative ones stay last), never shadowing one of its names; and the imports the
translation stopped using (`Session`, `get_db`) removed.

    note_imports(reader.chains, needed)                     # {"select", "func", "queries"}
    tree = with_imports(tree, needed, module, Path("app/crud.py"))
    tree = without_unused(original_tree, tree)
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import libcst as cst

from gateway.exceptions import CommandError
from gateway.translate.chains import Chain

__all__ = ["note_imports", "with_imports", "without_unused"]


def note_imports(chains: list[Chain], needed: set[str]) -> None:
    """Add to `needed` the names the translation of `chains` uses."""
    for chain in chains:
        if chain.terminal is None or chain.terminal.name != "get":
            needed.add("select")
        terminal = chain.terminal.name if chain.terminal else ""
        if terminal == "count":
            needed.add("func")
        if terminal == "exists":
            needed.add("literal_column")
        if terminal == "update":
            needed.add("sa_update")
        if terminal == "delete":
            needed.add("sa_delete")
    needed.add("queries")


def with_imports(tree: cst.Module, needed: set[str], module: ModuleType, path: Path) -> cst.Module:
    """`tree` with the imports of the `needed` names the module does not import already,
    after its last absolute top-of-module import (before its relative ones)."""
    lines = []
    for name in [*SOURCES, "legacy"]:
        if name in needed and name != "legacy":
            _check_free(name, needed, module, path)
    used = _Used()
    tree.visit(used)
    wanted = [n for n in SOURCES if n in needed & used.names and not _bound(module, n)]
    for source in dict.fromkeys(SOURCES[n][0] for n in wanted):
        names = [_alias(n) for n in wanted if SOURCES[n][0] == source]
        merged = _merge_into(tree, source, names)
        if merged is None:
            lines.append(f"from {source} import {', '.join(names)}")
        else:
            tree = merged
    if "legacy" in needed and "_legacy" in used.names:
        lines.append(f"import {module.__name__} as _legacy")
    if not lines:
        return tree
    new = list(cst.parse_module("\n".join(lines) + "\n").body)
    body = list(tree.body)
    at = _after_absolute_imports(body, 1 if tree.get_docstring() else 0)
    return tree.with_changes(body=[*body[:at], *new, *body[at:]])


# The names a translation may use: where each comes from, and its name there.
SOURCES = {
    "func": ("sqlalchemy", "func"),
    "literal_column": ("sqlalchemy", "literal_column"),
    "select": ("sqlalchemy", "select"),
    "sa_delete": ("sqlalchemy", "delete"),
    "sa_update": ("sqlalchemy", "update"),
    "selectinload": ("sqlalchemy.orm", "selectinload"),
    "AsyncSession": ("sqlalchemy.ext.asyncio", "AsyncSession"),
    "AsyncDB": ("gateway", "AsyncDB"),
    "get_async_session": ("gateway", "get_async_session"),
    "queries": ("gateway", "queries"),
}


def _merge_into(tree: cst.Module, source: str, names: list[str]) -> cst.Module | None:
    """`tree` with `names` added to its own top-level `from source import ...`, if any."""
    for statement in tree.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        small = statement.body[0]
        if (
            isinstance(small, cst.ImportFrom)
            and not small.relative
            and small.module is not None
            and cst.Module([]).code_for_node(small.module) == source
            and not isinstance(small.names, cst.ImportStar)
        ):
            extra = [cst.ImportAlias(name=cst.Name(n)) for n in names if " as " not in n]
            extra += [
                cst.ImportAlias(name=cst.Name(n.split(" as ")[0]), asname=_as(n.split(" as ")[1]))
                for n in names
                if " as " in n
            ]
            existing = [
                a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                for a in small.names
            ]
            merged = small.with_changes(names=[*existing, *extra])
            new_line = statement.with_changes(body=[merged, *statement.body[1:]])
            return tree.with_changes(body=[new_line if s is statement else s for s in tree.body])
    return None


def _as(name: str) -> cst.AsName:
    return cst.AsName(name=cst.Name(name))


def _alias(name: str) -> str:
    original = SOURCES[name][1]
    return name if original == name else f"{original} as {name}"


def _bound(module: ModuleType, name: str) -> bool:
    """Whether the legacy module already binds `name` to the very object needed."""
    source, original = SOURCES[name]
    if name not in module.__dict__:
        return False
    return module.__dict__[name] is getattr(importlib.import_module(source), original, None)


def _after_absolute_imports(body: Sequence[cst.BaseStatement], start: int) -> int:
    """The index after the top block's last absolute import (or after the block)."""
    last_absolute = last_any = -1
    for index, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine) and all(
            isinstance(s, cst.Import | cst.ImportFrom) for s in statement.body
        ):
            last_any = index
            small = statement.body[0]
            if not (isinstance(small, cst.ImportFrom) and small.relative):
                last_absolute = index
        elif index >= start and last_any >= 0:
            break
    if last_absolute >= 0:
        return last_absolute + 1
    return last_any + 1 if last_any >= 0 else start


def without_unused(original: cst.Module, translated: cst.Module) -> cst.Module:
    """`translated` without the imported names its translation stopped using (`Session`,
    `get_db`); names the legacy module imported but never used are left as they were."""
    before, after = _Used(), _Used()
    original.visit(before)
    translated.visit(after)
    dropped = before.names - after.names
    return translated.visit(_DropImports(dropped)) if dropped else translated


class _Used(cst.CSTVisitor):
    """The names a module uses outside its import statements (and in string annotations
    and `__all__`)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Annotation(self, node: cst.Annotation) -> None:
        self._strings(node)  # forward references: "User"

    def visit_Assign(self, node: cst.Assign) -> None:
        if any(
            isinstance(t.target, cst.Name) and t.target.value == "__all__" for t in node.targets
        ):
            self._strings(node.value)

    def _strings(self, node: cst.CSTNode) -> None:
        for string in _Strings.of(node):
            self.names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", string))


class _Strings(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[str] = []

    @classmethod
    def of(cls, node: cst.CSTNode) -> list[str]:
        strings = cls()
        node.visit(strings)
        return strings.found

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self.found.append(node.value)


class _DropImports(cst.CSTTransformer):
    def __init__(self, dropped: set[str]) -> None:
        self.dropped = dropped

    def leave_ImportFrom(
        self, original: cst.ImportFrom, updated: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(updated.names, cst.ImportStar):
            return updated
        kept = [a for a in updated.names if _bound_name(a) not in self.dropped]
        if len(kept) == len(updated.names):
            return updated
        if not kept:
            return cst.RemoveFromParent()
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=kept)


def _bound_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return cst.Module([]).code_for_node(alias.name).split(".")[0]


def _check_free(name: str, needed: set[str], module: ModuleType, path: Path) -> None:
    if name not in needed or name not in module.__dict__:
        return
    value = module.__dict__[name]
    origin = getattr(value, "__module__", "") or ""
    if not (
        origin.startswith(("sqlalchemy", "gateway"))
        or getattr(value, "__name__", "").startswith("gateway")
    ):
        raise CommandError(
            f"{path}: the module already defines {name!r} ({value!r}); the "
            f"translation needs that name for its own import. Rename it and translate again."
        )
