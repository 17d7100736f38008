"""`gateway translate`: write the async twin of a legacy module, and check it on a database.

gateway translate legacy_routes/users.py -o users_translated.py
gateway translate app/crud/*.py app/api/*.py -o migrated/   # migrated/app/crud/..., awaited across
gateway translate app/crud.py -o crud_async.py --check postgresql://app@db/app

The summary lists each function translated, each fallback with file:line and reason, each
function taking a session that was not translated and why, and with --check each
function's verdict (verified / fallback / differs). Exit status 1 when a function was not
translated or differs. Needs SQLAlchemy 2.0+ and libcst (`pip install 'gateway[translate]'`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import anyio
import typer

from gateway._compat import PYDANTIC, PYDANTIC_V1
from gateway.exceptions import CommandError

__all__ = ["translate_command"]


def translate_command(
    sources: Annotated[
        list[Path],
        typer.Argument(
            help="legacy modules to translate together; each is imported by its dotted name "
            "(run from the directory its package is imported from)"
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="a .py file (one source) or a directory: there the package structure is "
            "kept from the sources' common package down (app/api/users.py), with each "
            "package's __init__.py, so relative imports of translated modules resolve to "
            "their twins and the others import the legacy modules",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="overwrite output files that exist")
    ] = False,
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            help="database URL: run each function and its translation, rolled back, and compare",
            show_default=False,
        ),
    ] = None,
    app: Annotated[
        str | None,
        typer.Option(
            "--app",
            help="with --check: the legacy app as package.module:app (or a create_app "
            "factory); routes are sent requests through it and through the same app of the "
            "translated package. Default: an app or create_app() found in the sources' "
            "packages (or their main.py)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Translate legacy Query-style modules into async twins; --check proves them.

    Translated: every function and method that takes a sync Session (annotated, or a
    parameter defaulting to Depends(get_db) or used as a session), and those that call
    them. Each is listed as translated, fallback (with the reason) or not translated (why);
    exit status 1 when a function was not translated or --check finds one that differs,
    2 when --check could not check one (each says why).
    """
    if PYDANTIC_V1:  # it reads response models' fields and validates through pydantic 2
        raise CommandError(
            f"gateway translate needs pydantic 2 (found {'.'.join(map(str, PYDANTIC))}): it "
            "reads response models through pydantic 2's API; on pydantic 1, write twins by hand."
        )
    try:
        from gateway.translate.files import translate_files
    except ImportError as exc:  # libcst missing
        raise CommandError(
            f"gateway translate needs libcst ({exc}); install it with "
            "pip install 'gateway[translate]'."
        ) from None
    packaged = output is not None and not (len(sources) == 1 and output.suffix == ".py")
    results = translate_files(list(sources), packaged=packaged)
    targets = _targets(results, output, packaged)
    _refuse_existing([t for t in targets if t is not None], force)
    not_translated = 0
    for result, target in zip(results, targets, strict=True):
        if target is None:
            typer.echo(result.code, nl=False)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(result.code)
        not_translated += len(result.not_translated)
        _summary(result, target)
    if check is not None:
        verdicts = []
        for result, target in zip(results, targets, strict=True):
            if target is None:
                raise CommandError("--check needs -o: the translation must be a file to import it.")
            if not result.copied:
                fallen = result.fallback_functions
                verdicts += _check(result.module, target, check, fallen, output, app)
        _exit_for(verdicts)
    if not_translated:
        raise CommandError(
            f"{not_translated} functions taking a session were not translated; see above."
        )


def _exit_for(verdicts: list[Any]) -> None:
    """Exit 1 when a function differs, 2 when one could not be checked (0 otherwise)."""
    differs = sum(v.status == "differs" for v in verdicts)
    if differs:
        raise CommandError(f"{differs} translated functions behave differently; see above.")
    unchecked = sum(v.status == "unchecked" for v in verdicts)
    if unchecked:
        typer.echo(f"gateway: {unchecked} functions could not be checked; see why above.", err=True)
        raise typer.Exit(2)


def _summary(result: Any, target: Path | None) -> None:
    shown = target if target is not None else "stdout"
    if result.copied:
        typer.echo(f"{result.source} -> {shown}: package file, imports rewritten", err=True)
        return
    fallen = result.fallback_functions
    typer.echo(
        f"{result.source} -> {shown}: {len(result.translated)} functions async, "
        f"{len(fallen)} with fallbacks, {len(result.not_translated)} not translated",
        err=True,
    )
    for name in result.translated:
        if name not in fallen:
            typer.echo(f"  translated {name}", err=True)
    for fallback in result.fallbacks:
        typer.echo(f"  fallback {fallback}", err=True)
    for skipped in result.not_translated:
        typer.echo(f"  not translated {skipped}", err=True)


def _targets(results: list[Any], output: Path | None, packaged: bool) -> list[Path | None]:
    if output is None:
        if len(results) > 1:
            raise CommandError(f"{len(results)} sources need -o DIRECTORY for their outputs.")
        return [None]
    if not packaged:
        return [output]
    return [output / result.relative_path for result in results]


def _refuse_existing(targets: list[Path], force: bool) -> None:
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise CommandError(
            f"Output {', '.join(map(repr, existing))} exists; gateway translate does not "
            "overwrite files. Choose another -o, or pass --force to overwrite."
        )


def _check(
    module_name: str,
    target: Path,
    url: str,
    fallbacks: set[str],
    output: Path | None,
    app: str | None,
) -> list[Any]:
    from gateway.translate.check.runner import check_modules

    legacy = sys.modules[module_name]
    translated = _import_translation(target, output)
    verdicts = anyio.run(
        lambda: check_modules(legacy, translated, url, fallbacks=fallbacks, app=app)
    )
    for verdict in verdicts:
        typer.echo(f"  check {verdict}", err=True)
    return verdicts


def _import_translation(target: Path, output: Path | None) -> ModuleType:
    """The twin at `target`: inside its package when -o wrote one (relative imports
    resolve), else as a top-level module of its own."""
    if output is not None and output.is_dir() and target.is_relative_to(output):
        relative = target.relative_to(output).with_suffix("")
        parts = [p for p in relative.parts if p != "__init__"]
        if len(parts) > 1:
            if str(output.resolve()) not in sys.path:
                sys.path.insert(0, str(output.resolve()))
            importlib.invalidate_caches()  # the directory may be newer than the path's cache
            return importlib.import_module(".".join(parts))
    spec = importlib.util.spec_from_file_location(f"_translated_{target.stem}", target)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise CommandError(f"Cannot import the translation {str(target)!r}.")
    translated = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = translated
    spec.loader.exec_module(translated)
    return translated
