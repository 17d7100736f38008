"""`gateway translate`: a legacy Query-style module in, its async twin out (SQLAlchemy 2.0+).

    result = translate_file(Path("legacy_routes/users.py"))
    Path("users_translated.py").write_text(result.code)
    for fallback in result.fallbacks: print(fallback)   # users.py:42: reason

Every top-level function that takes a `Session` becomes `async def` taking an AsyncSession
(`AsyncDB` in routes); each `db.query(...)` chain becomes `select()` code through the table
in `gateway.translate.chains`; session I/O and calls of helpers that became async get
`await`; relationships read after a query (in the function, or by its route's
`response_model`) get `selectinload`. What is not certain is not guessed: the site runs the
original code through `await db.run_sync(...)`, or the whole function calls the original,
with a `# gateway-translate: fallback: <reason>` comment. Everything else is kept as written:
libcst edits only the nodes it translates.

The translator's parts, one concern each: `translate_source` reads the legacy module,
`translate_reader` (with `translate_edits`) reads each function into edits,
`translate_chains` renders the query chains, `translate_loads` adds the eager loads,
`translate_signature` and `translate_imports` write the headers, `translate_module`
drives one module, and `translate_summary` holds what became of it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import libcst as cst

from gateway._compat import SQLALCHEMY
from gateway.exceptions import CommandError
from gateway.translate.formatting import formatted
from gateway.translate.functions import (
    AsyncCallFinder,
    callers_of,
    functions_of,
    opens_own_session,
    session_functions,
    session_parameter,
)
from gateway.translate.layout import Layout, rewrite_imports
from gateway.translate.module import ModuleTranslator
from gateway.translate.source import import_source
from gateway.translate.summary import MARK, Fallback, Translation

__all__ = ["MARK", "Fallback", "Translation", "translate_file", "translate_files"]


def translate_file(
    source: Path, *, async_helpers: dict[str, set[str]] | None = None
) -> Translation:
    """Translate one module; `async_helpers` maps other translated modules (dotted names)
    to the functions that became async there, so calls of them get `await` too."""
    return translate_files([source], async_helpers=async_helpers)[0]


def translate_files(
    sources: list[Path],
    *,
    async_helpers: dict[str, set[str]] | None = None,
    packaged: bool = False,
) -> list[Translation]:
    """Translate modules together: a helper made async in one is awaited in the others.
    `packaged` (output to a directory) keeps the package structure: the packages'
    `__init__.py` come last, as copies with their imports rewritten (see `layout`)."""
    _require_sqlalchemy_2()
    loaded = [(path, *import_source(path)) for path in sources]
    helpers = dict(async_helpers or {})
    trees = {}
    own: dict[str, set[str]] = {}
    for path, name, module in loaded:
        tree = cst.parse_module(path.read_text())
        trees[name] = tree
        helpers[name] = session_functions(tree, module)
        own[name] = {
            f.name
            for f in functions_of(tree, module)
            if session_parameter(f.node, module) is None and opens_own_session(f, module)
        }
    # A function that awaits a translated helper is async itself: repeat until nothing grows.
    grew = True
    while grew:
        grew = False
        for _path, name, module in loaded:
            callers = callers_of(trees[name], module, helpers, own[name])
            if not callers <= helpers[name]:
                helpers[name] |= callers
                grew = True
    results = [
        ModuleTranslator(
            path,
            name,
            module,
            trees[name],
            helpers,
            _delegated(trees[name], module, helpers, own[name]),
            packaged=packaged,
        ).run()
        for path, name, module in loaded
    ]
    layout = Layout.of([name for _path, name, _module in loaded], packaged=packaged)
    sources_of = {name: path for path, name, _module in loaded}
    for package in layout.packages:
        if package in sources_of:
            continue
        origin = _package_file(package)
        results.append(Translation(origin, package, origin.read_text(), copied=True))
    for result in results:
        is_package = result.source.name == "__init__.py"
        tree = rewrite_imports(cst.parse_module(result.code), result.module, is_package, layout)
        result.code = formatted(tree.code, result.source)
        result.relative_path = layout.relative_path(result.module, package=is_package)
    return results


def _package_file(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None or not spec.origin.endswith("__init__.py"):
        raise CommandError(
            f"Package {package!r} has no __init__.py to copy next to its translated modules; "
            "namespace packages are not supported by -o DIRECTORY."
        )
    origin = Path(spec.origin)
    return origin.relative_to(Path.cwd()) if origin.is_relative_to(Path.cwd()) else origin


def _delegated(
    tree: cst.Module, module: ModuleType, helpers: dict[str, set[str]], own: set[str]
) -> set[str]:
    """The functions opening their own session that call helpers which became async."""
    found = set()
    for function in functions_of(tree, module):
        if function.name in own:
            finder = AsyncCallFinder(module, helpers, function.owner)
            function.node.body.visit(finder)
            if finder.found:
                found.add(function.name)
    return found


def _require_sqlalchemy_2() -> None:
    if SQLALCHEMY < (2, 0, 0):
        found = ".".join(map(str, SQLALCHEMY))
        raise CommandError(
            f"gateway translate needs SQLAlchemy 2.0 or newer (found {found}); "
            "the gateway itself runs on 1.4, but the translation table is 2.0's select() API. "
            "Translate in an environment with SQLAlchemy 2.x."
        )
