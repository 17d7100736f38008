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

from pathlib import Path

import libcst as cst

from gateway._compat import SQLALCHEMY
from gateway.exceptions import CommandError
from gateway.translate.module import ModuleTranslator
from gateway.translate.source import callers_of, import_source, session_functions
from gateway.translate.summary import MARK, Fallback, Translation

__all__ = ["MARK", "Fallback", "Translation", "translate_file", "translate_files"]


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
    loaded = [(path, *import_source(path)) for path in sources]
    helpers = dict(async_helpers or {})
    trees = {}
    for path, name, module in loaded:
        tree = cst.parse_module(path.read_text())
        trees[name] = tree
        helpers[name] = session_functions(tree, module)
    # A function that awaits a translated helper is async itself: repeat until nothing grows.
    grew = True
    while grew:
        grew = False
        for _path, name, module in loaded:
            callers = callers_of(trees[name], module, helpers)
            if not callers <= helpers[name]:
                helpers[name] |= callers
                grew = True
    return [
        ModuleTranslator(path, name, module, trees[name], helpers).run()
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
