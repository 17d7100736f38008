"""`gateway translate --check URL`: run each legacy function and its translation on a real
database and say, per function, verified / fallback / differs.

    verdicts = anyio.run(check_modules, legacy_module, translated_module, url)
    [str(v) for v in verdicts]   # ["get_user: verified (4 runs)", "page: differs: ..."]

For every argument set (generated from the signature, and from values in the tables) both
functions run in a transaction that is rolled back (their own commits release a savepoint;
PostgreSQL sequences are put back), and three things must match:

- the statements each sent, as the dialect compiled them, with their parameters (so a
  dropped LIMIT 1 or a count of the table instead of the query shows); the ORM's own
  relationship loads are left out, since eager loads replace lazy ones by design, and the
  column labels a legacy Query adds are normalised away;
- the result, after the terminal semantics (the rows, or the exception's type; a route's
  result as its `response_model` serializes it, which reads its relationships);
- every table's rows afterwards.

The parts: `translate_check_arguments` generates the arguments, `translate_check_runs`
runs each side rolled back, `translate_check_compare` puts what they did in a form both
share; this module drives them and gives the verdicts.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeMeta, Mapper

from gateway.exceptions import CommandError
from gateway.translate.check.arguments import argument_sets, session_name, table_samples
from gateway.translate.check.compare import normalise_sql
from gateway.translate.check.noise import learn, masked, named
from gateway.translate.check.runs import (
    engines,
    read_sequences,
    restore_sequences,
    run_async,
    run_legacy,
)
from gateway.urls import mask_url

__all__ = ["Verdict", "argument_sets", "check_modules", "normalise_sql", "response_model_of"]


@dataclass
class Verdict:
    """What --check found for one function."""

    function: str
    status: str  # verified | fallback | differs | unchecked (detail says why)
    runs: int = 0
    detail: str = ""

    def __str__(self) -> str:
        tail = f": {self.detail}" if self.detail else ""
        return f"{self.function}: {self.status} ({self.runs} runs){tail}"


async def check_modules(
    legacy: ModuleType,
    translated: ModuleType,
    url: str,
    *,
    fallbacks: set[str] | None = None,
    only: set[str] | None = None,
) -> list[Verdict]:
    """Run each async function of `translated` against its namesake in `legacy` on `url`."""
    backend, sync_engine, async_engine = engines(url)
    import_models(legacy)
    metadata = _metadata_of(legacy)
    _require_tables(sync_engine, metadata, url)
    verdicts = []
    try:
        for name, function in list(vars(translated).items()):
            if isinstance(function, type) and function.__module__ == translated.__name__:
                verdicts += _methods(name, function, only)
                continue
            if not inspect.iscoroutinefunction(function) or (only and name not in only):
                continue
            original = getattr(legacy, name, None)
            if original is None or getattr(function, "__module__", None) != translated.__name__:
                continue
            try:
                verdict = await _check_function(
                    name, original, function, legacy, sync_engine, async_engine, metadata,
                    backend, name in (fallbacks or set()),
                )  # fmt: skip
            except Exception as exc:  # a verdict for every function, never a traceback
                detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
                verdict = Verdict(name, "unchecked", 0, f"running it failed: {detail}")
            verdicts.append(verdict)
    finally:
        await async_engine.dispose()
        sync_engine.dispose()
    return verdicts


async def _check_function(
    name: str,
    original: Callable[..., Any],
    function: Callable[..., Any],
    legacy: ModuleType,
    sync_engine: Engine,
    async_engine: AsyncEngine,
    metadata: MetaData | None,
    backend: str,
    fallback: bool,
) -> Verdict:
    model = response_model_of(original)
    with sync_engine.connect() as connection:
        samples = table_samples(connection, metadata)
    runs = 0
    # The twin's session parameter is annotated (AsyncSession, AsyncDB) even where the
    # legacy one was not, and keeps its name.
    session = session_name(function)
    noise: list[str] = []
    for arguments in argument_sets(original, samples, session):
        with sync_engine.connect() as connection:
            sequences = read_sequences(connection, backend)
        legacy_runs = []
        for _ in range(2):  # twice on one snapshot: what differs between them is noise
            legacy_runs.append(
                run_legacy(original, arguments, sync_engine, metadata, model, session)
            )
            with sync_engine.connect() as connection:
                restore_sequences(connection, sequences)
        after = await run_async(function, arguments, async_engine, metadata, model, session)
        with sync_engine.connect() as connection:
            restore_sequences(connection, sequences)
        runs += 1
        mask = learn(legacy_runs[0].parts(), legacy_runs[1].parts())
        noise += named(mask)
        before, found = masked(mask, legacy_runs[0].parts()), masked(mask, after.parts())
        shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        difference = _difference(before, found)
        if difference:
            return Verdict(name, "differs", runs, f"{difference} with ({shown})")
    return Verdict(name, "fallback" if fallback else "verified", runs, _noise_note(noise))


def _difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The first of result, tables, statements that differs, said with both values."""
    if before["result"] != after["result"]:
        return f"result: legacy {_short(before['result'])}, translated {_short(after['result'])}"
    if before["tables"] != after["tables"]:
        return "table contents afterwards"
    if before["statements"] != after["statements"]:
        legacy, translated = _short(before["statements"]), _short(after["statements"])
        return f"SQL: legacy {legacy}, translated {translated}"
    return ""


def _noise_note(noise: list[str]) -> str:
    found = list(dict.fromkeys(noise))
    return (
        f"noise (differs between two legacy runs, not compared): {', '.join(found)}"
        if found
        else ""
    )


def _methods(name: str, cls: type, only: set[str] | None) -> list[Verdict]:
    """Methods need an instance the check cannot build: unchecked, with why."""
    return [
        Verdict(
            f"{name}.{attribute}",
            "unchecked",
            0,
            "a method: the check calls module-level functions; run the routes that call it "
            "(the app's tests, or shadow mode) to prove it",
        )
        for attribute, value in vars(cls).items()
        if inspect.iscoroutinefunction(value) and (not only or f"{name}.{attribute}" in only)
    ]


def import_models(legacy: ModuleType) -> None:
    """Import the modules named like models next to the legacy module and in each package
    above it (`app/models.py`, `app/db/models/`), so every foreign key the mapped classes
    name resolves: the module alone may import only some of them."""
    parts = legacy.__name__.split(".")
    for end in range(len(parts) - 1, 0, -1):
        package = sys.modules.get(".".join(parts[:end]))
        for found in pkgutil.iter_modules(getattr(package, "__path__", None) or []):
            if "model" in found.name:
                name = f"{'.'.join(parts[:end])}.{found.name}"
                try:
                    importlib.import_module(name)
                except Exception:
                    continue


def response_model_of(function: Callable[..., Any]) -> Any:
    """The response_model of the route whose endpoint is `function`, or None."""
    module = sys.modules.get(getattr(function, "__module__", ""))
    for value in vars(module).values() if module else ():
        routes = getattr(value, "routes", None)
        for route in routes if isinstance(routes, list) else ():
            if getattr(route, "endpoint", None) is function:
                return getattr(route, "response_model", None)
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 3000 else text[:2997] + "..."


def _require_tables(engine: Any, metadata: MetaData | None, url: str) -> None:
    if metadata is None:
        return
    with engine.connect() as connection:
        missing = [
            t.name for t in metadata.sorted_tables if not sa_inspect(connection).has_table(t.name)
        ]
    if missing:
        raise CommandError(
            f"The database at {mask_url(url)} has no table {', '.join(map(repr, missing))}; "
            "--check runs both versions on a database with the module's tables (and rows)."
        )


def _metadata_of(module: ModuleType) -> MetaData | None:
    for value in vars(module).values():
        mapper = (
            sa_inspect(value, raiseerr=False) if isinstance(value, type | DeclarativeMeta) else None
        )
        if isinstance(mapper, Mapper):
            return mapper.local_table.metadata
    return None
