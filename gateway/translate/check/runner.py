"""`gateway translate --check URL`: run each legacy function and its translation on a real
database and say, per function, verified / fallback / differs.

    verdicts = anyio.run(check_modules, legacy_module, translated_module, url)
    [str(v) for v in verdicts]   # ["get_user: verified (4 runs)", "page: differs: ..."]

Routes of the legacy app are sent requests through it and through the twin app (status,
body, background tasks queued and tables must match: `through_app`); methods are called on
a module-level instance (`instances`); other functions directly, per argument set
(generated from the signature, and from values in the tables). Each runs in a transaction
that is rolled back (their own commits release a savepoint; PostgreSQL sequences are put
back), legacy twice, so what differs between those two runs is noise (`noise`), not a
difference. For direct calls three things must match:

- the statements each sent, as the dialect compiled them, with their parameters (so a
  dropped LIMIT 1 or a count of the table instead of the query shows); the ORM's own
  relationship loads are left out, since eager loads replace lazy ones by design, and the
  column labels a legacy Query adds are normalised away;
- the result, after the terminal semantics (the rows, or the exception's type; a route's
  result as its `response_model` serializes it, which reads its relationships);
- every table's rows afterwards.

A value a dependency provides (`current_user = Depends(...)`) is never generated from its
annotation: outside a route of the app, such a function is unchecked, with why.
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

from fastapi import FastAPI
from sqlalchemy import MetaData
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeMeta, Mapper

from gateway.exceptions import CommandError
from gateway.translate.check.apps import (
    AppNotFound,
    apps_for,
    dependency_parameters,
    route_of,
    session_provider,
)
from gateway.translate.check.arguments import argument_sets, session_name, table_samples
from gateway.translate.check.compare import normalise_sql
from gateway.translate.check.instances import method_pairs
from gateway.translate.check.noise import learn, masked, named
from gateway.translate.check.requests import route_requests
from gateway.translate.check.runs import (
    engines,
    read_sequences,
    restore_sequences,
    run_async,
    run_legacy,
)
from gateway.translate.check.through_app import legacy_answer, twin_answer
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
    app: str | None = None,
) -> list[Verdict]:
    """Run each async function of `translated` against its namesake in `legacy` on `url`;
    the routes of the legacy app (`app`, as `package.module:app`, or found in the legacy
    module's packages) are sent requests through it and through its translated twin."""
    backend, sync_engine, async_engine = engines(url)
    import_models(legacy)
    metadata = _metadata_of(legacy)
    _require_tables(sync_engine, metadata, url)
    verdicts = []
    apps = _Apps(legacy, translated, app)
    try:
        for name, function in list(vars(translated).items()):
            if isinstance(function, type) and function.__module__ == translated.__name__:
                for qualified, original, method, arguments in _methods(
                    name, function, legacy, translated, only
                ):
                    verdicts.append(
                        await _verdict(
                            qualified, original, method, apps, sync_engine, async_engine,
                            metadata, backend, qualified in (fallbacks or set()), arguments,
                        )
                    )  # fmt: skip
                continue
            if not inspect.iscoroutinefunction(function) or (only and name not in only):
                continue
            original = getattr(legacy, name, None)
            if original is None or getattr(function, "__module__", None) != translated.__name__:
                continue
            verdicts.append(
                await _verdict(
                    name, original, function, apps, sync_engine, async_engine, metadata,
                    backend, name in (fallbacks or set()), {},
                )
            )  # fmt: skip
    finally:
        await async_engine.dispose()
        sync_engine.dispose()
    return verdicts


async def _verdict(name: str, original: Any, function: Any, *args: Any) -> Verdict:
    """`_check_function`'s verdict, or unchecked with why: a verdict, never a traceback."""
    if original is None:
        return Verdict(name, "unchecked", 0, function)
    try:
        return await _check_function(name, original, function, *args)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return Verdict(name, "unchecked", 0, f"running it failed: {detail}")


async def _check_function(
    name: str,
    original: Callable[..., Any],
    function: Callable[..., Any],
    apps: _Apps,
    sync_engine: Engine,
    async_engine: AsyncEngine,
    metadata: MetaData | None,
    backend: str,
    fallback: bool,
    type_arguments: dict[Any, Any],
) -> Verdict:
    model = response_model_of(original)
    with sync_engine.connect() as connection:
        samples = table_samples(connection, metadata)
    runs = 0
    # The twin's session parameter is annotated (AsyncSession, AsyncDB) even where the
    # legacy one was not, and keeps its name.
    session = session_name(function)
    route = Route(original, function, session, samples, fallback)
    found = apps.found()
    if isinstance(found, tuple) and route_of(found[0], original) is not None:
        engines_ = (backend, sync_engine, async_engine)
        return await _check_route(name, route, found, engines_, metadata)
    provided = dependency_parameters(original, session)
    if provided:
        given = ", ".join(f"{k} (from {v})" for k, v in provided.items())
        why = found if isinstance(found, str) else "it is not a route of the app found"
        return Verdict(
            name,
            "unchecked",
            0,
            f"{given} come from dependencies, whose annotations are not trusted for "
            f"generated values, and it cannot be sent through the app: {why}",
        )
    noise: list[str] = []
    for arguments in argument_sets(original, samples, session, type_arguments):
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


@dataclass
class Route:
    """A function to check and its twin, with what the requests are generated from."""

    original: Callable[..., Any]
    function: Callable[..., Any]
    session: str | None
    samples: dict[str, list[Any]]
    fallback: bool


class _Apps:
    """The legacy app and its twin, found once, on first use; or why they were not."""

    def __init__(self, legacy: ModuleType, translated: ModuleType, spec: str | None) -> None:
        self.args = (legacy, translated, spec)
        self.result: tuple[FastAPI, FastAPI] | str | None = None

    def found(self) -> tuple[FastAPI, FastAPI] | str:
        if self.result is None:
            try:
                self.result = apps_for(*self.args)
            except AppNotFound as exc:
                self.result = str(exc)
        return self.result


async def _check_route(
    name: str,
    route: Route,
    apps: tuple[FastAPI, FastAPI],
    engines_: tuple[str, Engine, AsyncEngine],
    metadata: MetaData | None,
) -> Verdict:
    """Requests from the OpenAPI schema, sent through both apps: status, body, background
    tasks queued and tables afterwards must match (noise aside)."""
    backend, sync_engine, async_engine = engines_
    legacy_app, twin_app = apps
    method, path = route_of(legacy_app, route.original) or ("", "")
    if route_of(twin_app, route.function) is None:
        why = f"the translated app does not route {method} {path} to the twin"
        return Verdict(name, "unchecked", 0, why)
    provider = session_provider(route.original, route.session)
    if provider is None:
        # Without it the legacy route would open a real session: writes would be kept.
        why = f"the legacy {method} {path} takes its session from no Depends(...) to override"
        return Verdict(name, "unchecked", 0, why)
    schema = legacy_app.openapi()
    operation = schema.get("paths", {}).get(path, {}).get(method.lower(), {})
    components = schema.get("components", {})
    runs, noise = 0, []
    for request in route_requests(method, path, operation, components, route.samples):
        with sync_engine.connect() as connection:
            sequences = read_sequences(connection, backend)
        answers = []
        for _ in range(2):  # twice on one snapshot: what differs between them is noise
            answers.append(
                await legacy_answer(legacy_app, request, provider, sync_engine, metadata)
            )
            with sync_engine.connect() as connection:
                restore_sequences(connection, sequences)
        twin = await twin_answer(twin_app, request, provider, sync_engine, async_engine, metadata)
        with sync_engine.connect() as connection:
            restore_sequences(connection, sequences)
        runs += 1
        mask = learn(answers[0], answers[1])
        noise += named(mask)
        before, after = masked(mask, answers[0]), masked(mask, twin)
        for part in ("status", "body", "background", "tables"):
            if before[part] != after[part]:
                shown = f"legacy {_short(before[part])}, translated {_short(after[part])}"
                if part == "tables":
                    shown = "table contents afterwards"
                return Verdict(name, "differs", runs, f"{part} of {request}: {shown}")
    status = "fallback" if route.fallback else "verified"
    return Verdict(name, status, runs, _noise_note(noise))


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


def _methods(
    name: str, cls: type, legacy: ModuleType, translated: ModuleType, only: set[str] | None
) -> list[tuple[str, Any, Any, dict[Any, Any]]]:
    """Each async method of `cls` as (name, legacy and translated bound methods of a
    module-level instance, its type arguments); without an instance, (name, None, why, {})."""
    pairs = method_pairs(cls, legacy, translated)
    found: list[tuple[str, Any, Any, dict[Any, Any]]] = []
    for attribute, value in vars(cls).items():
        qualified = f"{name}.{attribute}"
        if not inspect.iscoroutinefunction(value) or (only and qualified not in only):
            continue
        if attribute in pairs:
            found.append((qualified, *pairs[attribute]))
        else:
            why = (
                f"a method: no module-level instance of {name} (or of a subclass inheriting "
                f"{attribute}) with a legacy namesake to call it on; run the routes that call "
                "it (the app's tests, or shadow mode) to prove it"
            )
            found.append((qualified, None, why, {}))
    return found


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
    """The metadata of the mapped classes the module uses; else of those of its package,
    nearest first (a generic CRUD base maps nothing itself, its subclasses' models are next
    to it; a package further up may hold other apps' models)."""
    for candidate in _module_and_neighbours(module):
        for value in list(vars(candidate).values()):
            mapper = (
                sa_inspect(value, raiseerr=False)
                if isinstance(value, type | DeclarativeMeta)
                else None
            )
            if isinstance(mapper, Mapper):
                return mapper.local_table.metadata
    return None


def _module_and_neighbours(module: ModuleType) -> list[ModuleType]:
    """`module`, then the loaded modules of its package, of the package above, and so on."""
    parts = module.__name__.split(".")
    seen = {module.__name__}
    ordered = [module]
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end]) + "."
        for name in sorted(n for n in list(sys.modules) if n.startswith(prefix) and n not in seen):
            seen.add(name)
            ordered.append(sys.modules[name])
    return ordered
