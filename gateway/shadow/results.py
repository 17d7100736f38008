"""What shadow mode found: per-route counts, learned noise and examples, shared via the store.

    results = ShadowResults(store, examples=20, registry=registry)
    results.count(route, scope, "different", "")     # each comparison
    await results.report()                           # every worker's, from the store
    await results.start(); ...; await results.stop() # writes every flush_interval

Each worker keeps its own totals and newest examples; every few seconds it writes them to
the gateway's database (gateway.shadow.store), so any worker can show every worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from starlette.types import Scope

from gateway._compat import UTC
from gateway.exceptions import first_line
from gateway.shadow.compare import Noise
from gateway.shadow.store import ShadowStore

__all__ = ["OUTCOMES", "RouteShadow", "ShadowMetrics", "ShadowResults", "shadow_totals"]

log = logging.getLogger("gateway.shadow")

OUTCOMES = ("same", "different", "candidate_error", "skipped")
COMPARISONS = "gateway_shadow_comparisons"  # recorded and read back here
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


@dataclass
class RouteShadow:
    """What shadowing one route has found, in this worker."""

    key: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    examples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    noise: Noise = field(default_factory=Noise)
    learned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.key,
            "compared": self.counts["same"] + self.counts["different"],
            "same": self.counts["same"],
            "different": self.counts["different"],
            "candidate_errors": self.counts["candidate_error"],
            "skipped": self.counts["skipped"],
            "noise": sorted(self.noise.paths | {f"{p} (order)" for p in self.noise.unordered}),
            "examples": list(self.examples),
        }


class ShadowMetrics:
    """gateway_shadow_* in the gateway's registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.comparisons = Counter(
            COMPARISONS,
            "Shadowed requests by outcome: same, different, candidate_error, skipped.",
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
    ) -> None:
        self.store = store
        self.examples = examples
        self.flush_interval = flush_interval
        self.metrics = ShadowMetrics(registry)
        self.routes: dict[str, RouteShadow] = {}
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._unsaved: deque[dict[str, Any]] = deque(maxlen=examples * 4)
        self._dirty = False
        self._flusher: asyncio.Task[None] | None = None

    def route(self, key: str) -> RouteShadow:
        found = self.routes.get(key)
        if found is None:
            found = self.routes[key] = RouteShadow(key, examples=deque(maxlen=self.examples))
        return found

    def count(self, route: RouteShadow, scope: Scope, outcome: str, why: str) -> None:
        self._dirty = True
        route.counts[outcome] += 1
        method, _, path = route.key.partition(" ")
        self.metrics.comparisons.labels(path, method, outcome).inc()
        if outcome == "skipped" and why:
            route.counts.setdefault(f"skipped_{why}", 0)
            route.counts[f"skipped_{why}"] += 1

    def example(self, route: RouteShadow, scope: Scope, outcome: str, detail: Any) -> None:
        # Method and path only: no query string, headers, cookies or bodies unless asked.
        example = {
            "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "route": route.key,
            "method": scope["method"],
            "path": scope["path"],
            "outcome": outcome,
            **({"detail": detail} if isinstance(detail, dict) else {}),
        }
        route.examples.appendleft(example)
        self._unsaved.append(example)

    def local_report(self) -> dict[str, Any]:
        """Every shadowed route as this worker alone saw it."""
        return {"routes": [r.as_dict() for r in self.routes.values()], "scope": "this worker"}

    async def report(self) -> dict[str, Any]:
        """What GET {prefix}/shadow answers: every worker's and host's counts and examples
        (from the store), with the noise this worker learned; this worker's alone if the
        store cannot be read."""
        if self.store is None:
            return self.local_report()
        try:
            await self.flush()
            shared = await self.store.load()
        except Exception as exc:
            found = self.local_report()
            found["scope"] = f"this worker (the shadow store is unreachable: {first_line(exc)})"
            return found
        rows = []
        for key in sorted(set(shared) | set(self.routes)):
            row = self.route(key).as_dict()
            counts = shared.get(key, {}).get("counts", {})
            row.update(
                compared=counts.get("same", 0) + counts.get("different", 0),
                same=counts.get("same", 0),
                different=counts.get("different", 0),
                candidate_errors=counts.get("candidate_error", 0),
                skipped=counts.get("skipped", 0),
                examples=shared.get(key, {}).get("examples", [])[: self.examples],
            )
            rows.append(row)
        return {"routes": rows, "scope": "every worker"}

    async def flush(self) -> None:
        """Write this worker's totals and new examples to the store (if anything changed)."""
        if self.store is None or not self._dirty:
            return
        examples = list(self._unsaved)
        counts = {key: dict(route.counts) for key, route in self.routes.items()}
        self._dirty = False
        try:
            await self.store.save(self.worker, counts, examples)
        except BaseException:
            self._dirty = True
            raise
        for example in examples:
            with contextlib.suppress(ValueError):
                self._unsaved.remove(example)

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
