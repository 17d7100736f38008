"""`gateway translate`: write the async twin of a legacy module, and check it on a database.

gateway translate legacy_routes/users.py -o users_translated.py
gateway translate app/crud.py app/routes.py -o migrated/       # helpers awaited across both
gateway translate app/crud.py -o crud_async.py --check postgresql://app@db/app

The summary lists each function translated, each fallback with file:line and reason, and
with --check each function's verdict (verified / fallback / differs). Exit status 1 when a
function differs. Needs SQLAlchemy 2.0+ and libcst (`pip install 'gateway[translate]'`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer

from gateway.exceptions import CommandError

__all__ = ["translate_command"]


def translate_command(
    sources: Annotated[list[Path], typer.Argument(help="legacy modules to translate together")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="output file (one source) or directory (several)"),
    ] = None,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="database URL: run each function and its translation, rolled back, and compare",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Translate legacy Query-style modules into async twins; --check proves them."""
    try:
        from gateway.translate.files import translate_files
    except ImportError as exc:  # libcst missing
        raise CommandError(
            f"gateway translate needs libcst ({exc}); install it with "
            "pip install 'gateway[translate]'."
        ) from None
    results = translate_files(list(sources))
    targets = _targets(sources, output)
    for result, target in zip(results, targets, strict=True):
        if target is None:
            typer.echo(result.code, nl=False)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(result.code)
        functions = len(result.translated)
        shown = target if target is not None else "stdout"
        typer.echo(
            f"{result.source} -> {shown}: {functions} functions async, "
            f"{len(result.fallback_functions)} with fallbacks",
            err=True,
        )
        for fallback in result.fallbacks:
            typer.echo(f"  fallback {fallback}", err=True)
    if check is None:
        return
    differs = 0
    for result, target in zip(results, targets, strict=True):
        if target is None:
            raise CommandError("--check needs -o: the translation must be a file to import it.")
        differs += _check(result.module, target, check, result.fallback_functions)
    if differs:
        raise CommandError(f"{differs} translated functions behave differently; see above.")


def _targets(sources: list[Path], output: Path | None) -> list[Path | None]:
    if output is None:
        if len(sources) > 1:
            raise CommandError(f"{len(sources)} sources need -o DIRECTORY for their outputs.")
        return [None]
    if len(sources) == 1 and output.suffix == ".py":
        return [output]
    return [output / source.name for source in sources]


def _check(module_name: str, target: Path, url: str, fallbacks: set[str]) -> int:
    from gateway.translate.check.runner import check_modules

    legacy = sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(f"_translated_{target.stem}", target)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise CommandError(f"Cannot import the translation {str(target)!r}.")
    translated = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = translated
    spec.loader.exec_module(translated)
    verdicts = anyio.run(lambda: check_modules(legacy, translated, url, fallbacks=fallbacks))
    for verdict in verdicts:
        typer.echo(f"  check {verdict}", err=True)
    return sum(1 for v in verdicts if v.status == "differs")
