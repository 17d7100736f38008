"""What shadow mode found: per-route counts, learned noise and examples, shared via the store.

    results = ShadowResults(store, examples=20, registry=registry)
    route = results.route(key, results.version_of(twin))    # a new twin version: from 0
    results.count(route, scope, "different", "")             # each comparison
    results.example(route, scope, "different", detail, sides=(legacy, candidate))
    await results.report()                                    # every worker's, from the store
    await results.reset(key)                                  # every worker's, from 0
    await results.start(); ...; await results.stop()          # writes every flush_interval

Each worker keeps its own totals and newest examples; every few seconds it writes them to
the gateway's database (gateway.shadow.store), so any worker can show every worker's.
Comparisons are kept per twin version (gateway.shadow.versions) and per reset. An example
and its log line hold no written value or body (gateway.shadow.redact) and an error its
type, whole message and the twin's file:line (gateway.shadow.failures), unless keep_bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from starlette.types import Scope

from gateway._compat import UTC
from gateway.exceptions import first_line
from gateway.shadow.compare import Noise, Outcome
from gateway.shadow.failures import Failure
from gateway.shadow.redact import Redactor
from gateway.shadow.store import ShadowStore, Totals
from gateway.shadow.versions import twin_version

__all__ = ["OUTCOMES", "RouteShadow", "ShadowMetrics", "ShadowResults", "shadow_totals"]

log = logging.getLogger("gateway.shadow")

OUTCOMES = ("same", "different", "candidate_error", "skipped", "escaped", "uncompared")
COMPARISONS = "gateway_shadow_comparisons"  # recorded and read back here
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
UNVERSIONED = "-"  # a route counted before its twin's version was known


@dataclass
class RouteShadow:
    """What shadowing one route has found, in this worker, for one twin version."""

    key: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    examples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    noise: Noise = field(default_factory=Noise)
    learned: int = 0
    version: str | None = None
    generation: int = 0  # how many times the route was reset (gateway.shadow.store)

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.key,
            "version": self.version,
            "compared": self.counts["same"] + self.counts["different"],
            "same": self.counts["same"],
            "different": self.counts["different"],
            "candidate_errors": self.counts["candidate_error"],
            "skipped": self.counts["skipped"],
            "escaped": self.counts["escaped"],
            "uncompared": self.counts["uncompared"],
            "noise": sorted(self.noise.paths | {f"{p} (order)" for p in self.noise.unordered}),
            "examples": list(self.examples),
        }


class ShadowMetrics:
    """gateway_shadow_* in the gateway's registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.comparisons = Counter(
            COMPARISONS,
            "Shadowed requests by outcome: " + ", ".join(OUTCOMES) + ".",
            ["route", "method", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "gateway_shadow_candidate_seconds",
            "Time the async candidate took on a shadowed request (rolled back).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class ShadowResults:
    """The comparisons of one worker, and how they reach (and come back from) the store."""

    def __init__(
        self,
        store: ShadowStore | None = None,
        *,
        examples: int = 20,
        flush_interval: float = 2.0,
        registry: CollectorRegistry = REGISTRY,
        keep_bodies: bool = False,
    ) -> None:
        """`keep_bodies` (GATEWAY_SHADOW_KEEP_BODIES) keeps written values, both bodies of a
        difference and errors as raised in the examples and log lines."""
        self.store = store
        self.examples = examples
        self.flush_interval = flush_interval
        self.keep_bodies = keep_bodies
        self.metrics = ShadowMetrics(registry)
        self.routes: dict[str, RouteShadow] = {}
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._unsaved: deque[dict[str, Any]] = deque(maxlen=examples * 4)
        self._dirty = False
        self._flusher: asyncio.Task[None] | None = None
        self._versions: dict[Callable[..., Any], str] = {}

    def version_of(self, twin: Callable[..., Any]) -> str:
        """The twin's version (gateway.shadow.versions), computed once per function."""
        found = self._versions.get(twin)
        if found is None:
            found = self._versions[twin] = twin_version(twin)
        return found

    def route(self, key: str, version: str | None = None) -> RouteShadow:
        """The route's results; with another `version` than so far, new ones from 0."""
        found = self.routes.get(key)
        if found is None or (version is not None and found.version != version):
            if found is not None and found.version is not None:
                log.info("shadow: %s: twin version %s, compared from 0", key, version)
            generation = found.generation if found is not None else 0
            found = self.routes[key] = RouteShadow(
                key, examples=deque(maxlen=self.examples), version=version, generation=generation
            )
            self._dirty = True
        return found

    def count(self, route: RouteShadow, scope: Scope, outcome: str, why: str) -> None:
        self._dirty = True
        route.counts[outcome] += 1
        method, _, path = route.key.partition(" ")
        self.metrics.comparisons.labels(path, method, outcome).inc()
        if outcome == "skipped" and why:
            route.counts.setdefault(f"skipped_{why}", 0)
            route.counts[f"skipped_{why}"] += 1

    def example(
        self,
        route: RouteShadow,
        scope: Scope,
        outcome: str,
        detail: Any,
        *,
        sides: Sequence[Outcome] = (),
    ) -> None:
        """Keep an example of `outcome`; `sides` (legacy's and the twin's Outcome) say which
        values to leave out of it, and give its bodies when keep_bodies is on."""
        # Method and path only: no query string, headers, cookies or bodies unless asked.
        shown = self._shown(detail if isinstance(detail, dict) else {}, sides)
        example = {
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "route": route.key,
            "version": route.version,
            "method": scope["method"],
            "path": scope["path"],
            "outcome": outcome,
            **({"detail": shown} if isinstance(detail, dict) else {}),
        }
        route.examples.appendleft(example)
        self._unsaved.append(
            {
                "route": route.key,
                "version": route.version or UNVERSIONED,
                "generation": route.generation,
                "example": example,
            }
        )
        if outcome == "different":
            log.warning(
                "shadow: %s %s differs: %s", scope["method"], scope["path"], _summary(shown)
            )

    def _shown(self, detail: dict[str, Any], sides: Sequence[Outcome]) -> dict[str, Any]:
        """The detail as results show it: errors as {type, message, where}; written values
        and bodies left out unless keep_bodies."""
        shown = dict(detail)
        if "error" in shown and isinstance(shown["error"], Failure):
            shown["failure"] = shown["error"].as_dict(keep_values=self.keep_bodies)
        if "errors" in shown:
            shown["failures"] = {
                side: error.as_dict(keep_values=self.keep_bodies)
                for side, error in shown["errors"].items()
                if isinstance(error, Failure)
            }
        if self.keep_bodies:
            if len(sides) == 2 and "fields" in shown:  # a comparison, not an error
                shown["bodies"] = {"legacy": _text(sides[0].body), "async": _text(sides[1].body)}
            return dict(_plain(shown))
        return dict(_plain(Redactor.of(*sides).data(shown)))

    def local_report(self) -> dict[str, Any]:
        """Every shadowed route as this worker alone saw it."""
        return {"routes": [r.as_dict() for r in self.routes.values()], "scope": "this worker"}

    async def report(self) -> dict[str, Any]:
        """What GET {prefix}/shadow answers: every worker's and host's counts and examples
        for this worker's twin versions (from the store), with the noise this worker
        learned; this worker's alone if the store cannot be read."""
        if self.store is None:
            return self.local_report()
        try:
            await self.flush()
            shared = await self.store.load({k: r.version for k, r in self.routes.items()})
        except Exception as exc:
            found = self.local_report()
            found["scope"] = f"this worker (the shadow store is unreachable: {first_line(exc)})"
            return found
        rows = []
        for key in sorted(set(shared) | set(self.routes)):
            row = self.route(key).as_dict()
            stored = shared.get(key, {})
            counts = stored.get("counts", {})
            row.update(
                version=stored.get("version", row["version"]),
                compared=counts.get("same", 0) + counts.get("different", 0),
                same=counts.get("same", 0),
                different=counts.get("different", 0),
                candidate_errors=counts.get("candidate_error", 0),
                skipped=counts.get("skipped", 0),
                escaped=counts.get("escaped", 0),
                uncompared=counts.get("uncompared", 0),
                examples=stored.get("examples", [])[: self.examples],
            )
            rows.append(row)
        return {"routes": rows, "scope": "every worker"}

    async def reset(self, key: str) -> None:
        """Start `key`'s comparisons again from 0, in every worker sharing the store."""
        generation = await self.store.reset(key) if self.store is not None else None
        old = self.routes.pop(key, None)
        fresh = self.route(key, old.version if old is not None else None)
        fresh.generation = generation if generation is not None else fresh.generation + 1
        for pending in [e for e in self._unsaved if e["route"] == key]:
            self._unsaved.remove(pending)
        log.info("shadow: %s: comparisons reset", key)

    async def flush(self) -> None:
        """Write this worker's totals and new examples to the store (if anything changed);
        routes reset by another worker start again from 0 here."""
        if self.store is None:
            return
        if not self._dirty:
            if self.routes:  # a gateway that shadows nothing asks nothing
                self._follow_resets(await self.store.generations())
            return
        examples = list(self._unsaved)
        totals = [
            Totals(key, route.version or UNVERSIONED, route.generation, dict(route.counts))
            for key, route in self.routes.items()
        ]
        self._dirty = False
        try:
            generations = await self.store.save(self.worker, totals, examples)
        except BaseException:
            self._dirty = True
            raise
        for example in examples:
            with contextlib.suppress(ValueError):
                self._unsaved.remove(example)
        self._follow_resets(generations)

    def _follow_resets(self, generations: dict[str, int]) -> None:
        for key, generation in generations.items():
            route = self.routes.get(key)
            if route is not None and route.generation < generation:
                self.routes.pop(key)
                self.route(key, route.version).generation = generation

    async def start(self) -> None:
        """Prepare the store and write to it every flush_interval (on the event loop)."""
        if self.store is None:
            return
        try:
            await self.store.prepare()
        except Exception as exc:
            log.warning(
                "shadow: the shadow store is unreachable (%s); results stay per worker",
                first_line(exc),
            )
        self._flusher = asyncio.ensure_future(self._flush_every())

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next flush tries again; the counts are kept
                log.warning("shadow: could not write results (%s)", first_line(exc))

    async def stop(self) -> None:
        """Stop writing, write what is left, and close the store."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(BaseException):
                await self._flusher
            self._flusher = None
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.flush()
            await self.store.aclose()


def shadow_totals(registry: CollectorRegistry) -> list[dict[str, Any]]:
    """Per shadowed route, the comparisons the metrics counted (one worker or a host's all)."""
    found: dict[str, dict[str, int]] = {}
    for family in registry.collect():
        if family.name != COMPARISONS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = f"{sample.labels['method']} {sample.labels['route']}"
                counts = found.setdefault(key, dict.fromkeys(OUTCOMES, 0))
                counts[sample.labels["outcome"]] += int(sample.value)
    return [
        {"route": key, "compared": c["same"] + c["different"], **c}
        for key, c in sorted(found.items())
    ]


def _summary(detail: dict[str, Any]) -> str:
    parts = [*detail.get("fields", []), *detail.get("writes", []), *detail.get("work", [])]
    if "status" in detail:
        parts.append(f"status {detail['status']['legacy']} != {detail['status']['async']}")
    for side, failure in detail.get("failures", {}).items():
        parts.append(f"{side} raised {failure['type']}")
    return "; ".join(str(p) for p in parts) or "see GET /_gateway/shadow"


def _plain(value: Any) -> Any:
    """JSON-ready: Failures (str subclasses) as plain strings."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _text(body: bytes) -> str:
    return body[:4096].decode("utf-8", "replace")
