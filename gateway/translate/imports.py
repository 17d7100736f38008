"""The imports a translated module adds: the names its new code uses (`select`, `func`,
`selectinload`, `AsyncSession`, the gateway's `AsyncDB` and `queries`, the original module
for fallbacks), placed after the module's own imports, never shadowing one of its names.

    note_imports(reader.chains, needed)                     # {"select", "func", "queries"}
    tree = with_imports(tree, needed, module, Path("app/crud.py"))
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import libcst as cst

from gateway.exceptions import CommandError
from gateway.translate.chains import Chain

__all__ = ["note_imports", "with_imports"]


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
    """`tree` with the imports of the `needed` names, after its last top-of-module import."""
    lines = []
    sqlalchemy_names = sorted(n for n in ("func", "literal_column", "select") if n in needed)
    writes = [f"{n[3:]} as {n}" for n in ("sa_delete", "sa_update") if n in needed]
    for name in [*sqlalchemy_names, "queries", "AsyncDB", "AsyncSession", "selectinload"]:
        _check_free(name, needed, module, path)
    if sqlalchemy_names or writes:
        lines.append(f"from sqlalchemy import {', '.join(sqlalchemy_names + writes)}")
    if "selectinload" in needed:
        lines.append("from sqlalchemy.orm import selectinload")
    if "AsyncSession" in needed:
        lines.append("from sqlalchemy.ext.asyncio import AsyncSession")
    gateway_names = [n for n in ("AsyncDB", "get_async_session", "queries") if n in needed]
    if gateway_names:
        lines.append(f"from gateway import {', '.join(gateway_names)}")
    if "legacy" in needed:
        lines.append(f"import {module.__name__} as _legacy")
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
