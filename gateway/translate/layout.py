"""Where `gateway translate` writes its twins, and how their imports read there.

    layout = Layout.of(["app.crud.base", "app.api.users"], packaged=True)
    layout.relative_path("app.api.users")   # Path("app/api/users.py")
    layout.packages                         # ["app", "app.api", "app.crud"]: their __init__.py

With `-o DIRECTORY` the output keeps the package structure from the common package of the
sources down (`app/api/users.py`), and each package's `__init__.py` is written too, so a
relative import of another translated module (`from .. import crud`, `from .deps import
get_current_user`) resolves to its twin: the translated routes then use the translated
dependency chain. Every other import of the legacy package (models, schemas, the modules
not translated) is made absolute, so the twins share the legacy app's mapped classes and
run from anywhere. With one output file, every relative import is made absolute.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from gateway.exceptions import CommandError

__all__ = ["Layout", "rewrite_imports"]


@dataclass(frozen=True)
class Layout:
    """The output modules (dotted names, packages included) and the root they hang from."""

    modules: frozenset[str]  # written to the output: the sources and their packages
    packages: tuple[str, ...]  # packages whose __init__.py the output needs
    root: str  # the dotted name of the output's top, "" for top-level modules

    @classmethod
    def of(cls, sources: list[str], *, packaged: bool) -> Layout:
        """The layout of translating `sources` (dotted names) into a directory or not."""
        if not packaged:
            return cls(frozenset(), (), "")
        parents = [name.rpartition(".")[0] for name in sources]
        common = _common_prefix([p.split(".") if p else [] for p in parents])
        root = ".".join(common[:-1]) if common else ""
        packages: set[str] = set()
        for parent in parents:
            parts = parent.split(".") if parent else []
            for end in range(len(common), len(parts) + 1):
                if end:
                    packages.add(".".join(parts[:end]))
        return cls(frozenset(sources) | packages, tuple(sorted(packages)), root)

    def relative_path(self, name: str, *, package: bool = False) -> Path:
        """Where module `name` goes below the output directory."""
        tail = name[len(self.root) + 1 :] if self.root else name
        parts = tail.split(".")
        if package:
            return Path(*parts, "__init__.py")
        return Path(*parts[:-1], f"{parts[-1]}.py")


def _common_prefix(paths: list[list[str]]) -> list[str]:
    if not paths:
        return []
    common = paths[0]
    for path in paths[1:]:
        index = 0
        while index < min(len(common), len(path)) and common[index] == path[index]:
            index += 1
        common = common[:index]
    return common


def rewrite_imports(tree: cst.Module, name: str, is_package: bool, layout: Layout) -> cst.Module:
    """`tree` (of module `name`) with imports of the output's modules relative and every
    other import of the legacy package absolute."""
    return tree.visit(_Imports(name, is_package, layout))


class _Imports(cst.CSTTransformer):
    def __init__(self, name: str, is_package: bool, layout: Layout) -> None:
        self.name, self.layout = name, layout
        self.package = name if is_package else name.rpartition(".")[0]

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        if len(updated.body) != 1 or not isinstance(updated.body[0], cst.ImportFrom):
            return updated
        lines = [updated.with_changes(body=[node]) for node in self._imports(updated.body[0])]
        if len(lines) == 1:
            return lines[0]
        lines[1:] = [line.with_changes(leading_lines=[]) for line in lines[1:]]
        return cst.FlattenSentinel(lines)

    def _imports(self, node: cst.ImportFrom) -> list[cst.ImportFrom]:
        """`node` as it reads in the output: relative for the output's modules, absolute
        for the rest (`from . import crud, schemas` split when only crud is translated)."""
        target = self._absolute(node)
        if target is None:
            return [node]
        if isinstance(node.names, cst.ImportStar):
            kept = target in self.layout.modules
            return [self._relative(node, target) if kept else self._absolute_import(node, target)]
        inside, outside = [], []
        for alias in node.names:
            submodule = f"{target}.{_name(alias)}"
            if target in self.layout.modules and not (
                _is_module(submodule) and submodule not in self.layout.modules
            ):
                inside.append(alias)
            else:
                outside.append(alias)
        found = []
        if inside:
            found.append(self._relative(node.with_changes(names=_last(inside)), target))
        if outside:
            absolute = node.with_changes(names=_last(outside))
            found.append(self._absolute_import(absolute, target))
        return found

    def _absolute_import(self, node: cst.ImportFrom, target: str) -> cst.ImportFrom:
        return node.with_changes(module=_dotted(target), relative=[])

    def _absolute(self, node: cst.ImportFrom) -> str | None:
        dots = len(node.relative)
        module = cst.Module([]).code_for_node(node.module) if node.module else ""
        if not dots:
            return module or None
        base = self.package.split(".") if self.package else []
        if dots - 1 > len(base):
            raise CommandError(
                f"{self.name}: 'from {'.' * dots}{module} import ...' goes above the top "
                "package; run gateway translate from the directory the package is imported from."
            )
        parts = base[: len(base) - (dots - 1)]
        return ".".join([*parts, *([module] if module else [])])

    def _relative(self, node: cst.ImportFrom, target: str) -> cst.ImportFrom:
        if not self.layout.root and "." not in target and not self.package:
            return node
        here = self.package.split(".") if self.package else []
        there = target.split(".")
        common = 0
        while common < min(len(here), len(there)) and here[common] == there[common]:
            common += 1
        dots = len(here) - common + 1
        rest = there[common:]
        return node.with_changes(
            relative=[cst.Dot() for _ in range(dots)],
            module=_dotted(".".join(rest)) if rest else None,
        )


def _last(aliases: list[cst.ImportAlias]) -> list[cst.ImportAlias]:
    """The aliases as a list of their own: no trailing comma after the last one."""
    return [*aliases[:-1], aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]


def _name(alias: cst.ImportAlias) -> str:
    return cst.Module([]).code_for_node(alias.name)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _dotted(name: str) -> cst.Attribute | cst.Name:
    expression = cst.parse_expression(name)
    if not isinstance(expression, cst.Attribute | cst.Name):  # pragma: no cover - a dotted name
        raise CommandError(f"{name!r} is not a dotted module name")
    return expression
