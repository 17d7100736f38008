"""The canary judge: counts both arms of every canary, rolls a worse async back to legacy by
itself, and walks a rollout plan up one step at a time.

    judge = CanaryJudge(SqlJudgeStore(url), follower, alpha=0.01, interval=2.0)  # Gateway does
    recorder.listeners.append(judge.tally.observe)        # every finished request
    await judge.start()  ...  await judge.stop()          # the gateway's lifespan

Every `interval` seconds each worker writes what its canaries served (gateway.canary.store);
the elected worker reads every worker's rows, feeds them to one gateway.canary.sequential.Evidence
per canary and, when it says WORSE, flips the route to legacy through the flag store (so
every worker follows) with actor "judge" and the figures as the reason, logs a line and
counts gateway_judge_decisions_total{route, decision}. A canary's evidence starts with the
flip that put the route in canary and survives rollout steps and a change of judge (the new
judge replays the rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from gateway._compat import UTC, wait_for
from gateway.canary.rollout import RolloutPlan, advance
from gateway.canary.sequential import ArmCounts, Decision, Evidence
from gateway.canary.store import CanaryState, CountRow, JudgeStore, MemoryJudgeStore, SqlJudgeStore
from gateway.exceptions import first_line
from gateway.flags.follower import FlagFollower, call_on_loop
from gateway.flags.store import FlagChange, SqlFlagStore
from gateway.flags.table import Flag
from gateway.modes import Implementation, Mode
from gateway.request_info import RequestInfo
from gateway.settings import Settings

__all__ = ["CanaryJudge", "Tally", "judge_for"]

log = logging.getLogger("gateway.judge")

KEEP_ROWS = timedelta(hours=2)  # a judge taking over replays what is left of a canary


class Tally:
    """This worker's counts per canary route and arm since the last write (on the loop)."""

    def __init__(self, follower: FlagFollower) -> None:
        self.follower = follower
        self._open: dict[str, tuple[ArmCounts, ArmCounts]] = {}
        self._sealed: list[tuple[str, int, tuple[ArmCounts, ArmCounts]]] = []
        self._canary: set[str] = set()
        self._tags: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        follower.modes.on_change(self._changed)

    def follow(self) -> None:
        """Start counting the routes in canary now (after the flags are loaded), on the loop."""
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        modes = self.follower.modes
        for key in modes:
            self._changed(key, modes.get(key), modes.get(key))

    def observe(self, info: RequestInfo, status: int, elapsed: float) -> None:
        """One finished request; counted only on a route in canary."""
        side = info.implementation
        if side is None or info.route not in self._canary:
            return
        arms = self._open.get(info.route)
        if arms is None:
            arms = self._open[info.route] = (ArmCounts(), ArmCounts())
        arms[0 if side is Implementation.ASYNC else 1].add(status, elapsed)

    def _changed(self, key: str, _old: Flag, new: Flag) -> None:
        # Any thread may apply a change; the counts are the loop's, so it hops there with
        # the version read now (the follower sets it before the table).
        version = self.follower.versions.get(key, 0)
        call_on_loop(self._loop, functools.partial(self._count_under, key, new, version))

    def _count_under(self, key: str, new: Flag, version: int) -> None:
        if version < self._tags.get(key, 0):
            return  # a hop overtaken by a newer change made on the loop itself
        # Counts made under the previous flag keep its version, so a judge never mixes two
        # canaries of one route.
        arms = self._open.pop(key, None)
        if arms is not None:
            self._sealed.append((key, self._tags.get(key, 0), arms))
        self._tags[key] = version
        (self._canary.add if new.mode is Mode.CANARY else self._canary.discard)(key)

    def take(self, worker: str) -> list[CountRow]:
        """Everything counted since the last take, as rows to write."""
        taken = [*self._sealed, *((k, self._tags.get(k, 0), a) for k, a in self._open.items())]
        self._sealed, self._open = [], {}
        return [CountRow(0, worker, key, version, *arms) for key, version, arms in taken]

    def give_back(self, rows: list[CountRow]) -> None:
        """Rows that could not be written: kept for the next write."""
        for row in rows:
            self._sealed.append((row.route, row.version, (row.async_, row.legacy)))


@dataclass
class _Canary:
    """What the judge knows of one canary: from which flip on, and its evidence."""

    start: int
    evidence: Evidence = field(default_factory=Evidence)
    by_version: dict[int, list[int]] = field(default_factory=dict)  # version: [async, legacy]

    def requests_since(self, version: int) -> tuple[int, int]:
        ours = sum(v[0] for k, v in self.by_version.items() if k >= version)
        theirs = sum(v[1] for k, v in self.by_version.items() if k >= version)
        return ours, theirs


class CanaryJudge:
    """One worker's part of the judge: its tally, and the judging when it is elected."""

    def __init__(
        self,
        store: JudgeStore,
        follower: FlagFollower,
        *,
        alpha: float = 0.01,
        interval: float = 2.0,
        min_requests: int = 200,
        enabled: bool = True,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.follower = follower
        self.alpha = alpha
        self.interval = interval
        self.min_requests = min_requests
        self.enabled = enabled
        self.clock = clock
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.tally = Tally(follower)
        self.states: dict[str, CanaryState] = {}  # every worker's view, for GET /routes
        self.judging = False
        self.decisions = Counter(
            "gateway_judge_decisions",
            "What the canary judge decided: rollback (async was worse), advance (a rollout "
            "step up) or complete (a rollout reached async)",
            ["route", "decision"],
            registry=registry,
        )
        self._canaries: dict[str, _Canary] = {}
        self._last_id = 0
        self._ticks = 0
        self._prepared = False
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    # -- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Count the canaries from now on and judge every `interval` seconds."""
        self.tally.follow()
        try:
            await wait_for(self._prepare(), max(self.interval, 5.0))
        except Exception as exc:  # fail static: prepared again at the next tick
            log.warning("judge: cannot prepare its tables (%s); retrying", first_line(exc))
        self._task = asyncio.ensure_future(self._every())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await wait_for(self._write(), self.interval)  # this worker's last counts
        await self.store.aclose()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await wait_for(self.tick(), max(self.interval * 5, 10.0))
                if self._failing:
                    log.warning("judge: the database is reachable again; judging resumed")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Fail static: no decision without the counts; this worker's are kept.
                if not self._failing:
                    log.warning("judge: cannot reach its tables (%s); holding", first_line(exc))
                self._failing = True
                self.judging = False

    async def tick(self) -> None:
        """One interval: write this worker's counts, read the states, judge if elected."""
        await self._prepare()
        await self._write()
        self.states = await self.store.canaries()
        if not await self.store.elect():
            self.judging = False
            return
        if not self.judging:  # just elected: replay every row still kept
            self.judging, self._last_id = True, 0
            self._canaries.clear()
        while rows := await self.store.read_counts(self._last_id):
            for row in rows:
                self._last_id = row.id
                await self._add(row)
        modes = self.follower.modes
        for key in modes:
            if modes.get(key).mode is Mode.CANARY:
                await self._judge(key)
            else:
                self._canaries.pop(key, None)
        self._ticks += 1
        if self._ticks % 100 == 1:
            await self.store.prune(self.clock() - KEEP_ROWS)

    async def _prepare(self) -> None:
        if not self._prepared:
            await self.store.prepare()
            self._prepared = True

    async def _write(self) -> None:
        rows = self.tally.take(self.worker)
        try:
            await self.store.write_counts(rows)
        except BaseException:
            self.tally.give_back(rows)
            raise

    # -- judging -------------------------------------------------------------------------

    async def _add(self, row: CountRow) -> None:
        modes = self.follower.modes
        if row.route not in modes or modes.get(row.route).mode is not Mode.CANARY:
            return
        canary = self._canaries.get(row.route)
        if canary is None:
            canary = self._canaries[row.route] = _Canary(await self._start_of(row.route))
        if row.version < canary.start:
            return  # counted during an earlier canary of this route
        canary.evidence.add(row.async_, row.legacy)
        seen = canary.by_version.setdefault(row.version, [0, 0])
        seen[0] += row.async_.requests
        seen[1] += row.legacy.requests

    async def _start_of(self, key: str) -> int:
        """The version of the flip that put `key` in canary (0 when the history says none)."""
        for change in await self.follower.store.history(route=key, limit=200):
            if change.new.mode is Mode.CANARY and change.old.mode is not Mode.CANARY:
                return change.id
        return 0

    def state_of(self, key: str, start: int) -> CanaryState:
        """The stored state of this canary, or a fresh one when it belongs to an earlier one."""
        state = self.states.get(key)
        if state is None or state.version < start:
            return CanaryState(key, judge=self.enabled, version=start)
        return state

    async def _judge(self, key: str) -> None:
        canary = self._canaries.get(key)
        start = canary.start if canary is not None else await self._start_of(key)
        state = self.state_of(key, start)
        if not state.judge:
            await self._save(state.with_(status="off", note="judge off for this canary"))
            return
        if canary is None:
            await self._save(state.with_(note="no counts yet: holding"))
            return
        verdict = canary.evidence.verdict(self.alpha)
        if verdict.decision is Decision.WORSE:
            await self._roll_back(key, state, verdict.reason)
            return
        plan = state.plan
        if plan is None or state.status != "rolling out":
            await self._save(state.with_(note=verdict.reason))
            return
        since = state.step_since or self.clock()
        version = self.follower.versions.get(key, 0)
        step = advance(
            plan,
            index=state.step,
            held=(self.clock() - since).total_seconds(),
            requests=canary.requests_since(version),
            min_requests=self.min_requests,
        )
        if not step.move:
            await self._save(state.with_(note=f"{step.why}; {verdict.reason}"))
            return
        await self._step_up(key, state, plan, step.why)

    async def _roll_back(self, key: str, state: CanaryState, figures: str) -> None:
        reason = f"judge: {figures}"
        await self.follower.change(key, "legacy", None, actor="judge", reason=reason)
        self._canaries.pop(key, None)
        self.decisions.labels(key, "rollback").inc()
        stopped = "; rollout stopped" if state.status == "rolling out" else ""
        log.warning("judge: rolled %s back to legacy (%s)%s", key, figures, stopped)
        await self._save(state.with_(status="rolled back", note=f"{figures}{stopped}"))

    async def _step_up(self, key: str, state: CanaryState, plan: RolloutPlan, why: str) -> None:
        index = state.step + 1
        percent = plan.steps[index]
        last = index == len(plan.steps) - 1
        mode, value = ("async", None) if last else ("canary", percent)
        reason = f"rollout step {index + 1}/{len(plan.steps)} ({plan.describe()}): {why}"
        change = await self.follower.change(key, mode, value, actor="judge", reason=reason)
        decision = "complete" if last else "advance"
        self.decisions.labels(key, decision).inc()
        log.info("judge: %s %s to %s (%s)", decision, key, change.new.describe(), why)
        status = "done" if last else "rolling out"
        await self._save(
            state.with_(step=index, step_since=self.clock(), status=status, note=reason)
        )

    async def _save(self, state: CanaryState) -> None:
        if self.states.get(state.route) != state:
            await self.store.save(state)
            self.states[state.route] = state

    # -- what the admin API asks -----------------------------------------------------------

    async def after_flip(self, change: FlagChange, judge: bool | None) -> None:
        """A flip through the admin API: a new canary is judged (or not, `judge=False`) and
        a rollout in progress stops, since someone took the route over by hand."""
        key = change.route
        if change.new.mode is Mode.CANARY or key in self.states:
            old = self.states.get(key)
            note = "set by hand"
            if old is not None and old.status == "rolling out":
                note = f"rollout stopped: flipped by hand by {change.actor}"
                log.info("judge: %s", f"{key} {note}")
            on = self.enabled if judge is None else judge
            status = ("judged" if on else "off") if change.new.mode is Mode.CANARY else "stopped"
            await self._store_state(CanaryState(key, on, None, 0, None, status, note, change.id))

    async def start_rollout(
        self, key: str, plan: RolloutPlan, *, actor: str, reason: str = ""
    ) -> FlagChange:
        """Put `key` on the first step of `plan` (mode async if it is 100) and record it."""
        first = plan.steps[0]
        mode, value = ("async", None) if first == 100 else ("canary", first)
        why = f"rollout step 1/{len(plan.steps)} ({plan.describe()})"
        text = f"{why}: {reason}" if reason else why
        change = await self.follower.change(key, mode, value, actor=actor, reason=text)
        status = "done" if first == 100 else "rolling out"
        state = CanaryState(key, True, plan, 0, self.clock(), status, text, change.id)
        await self._store_state(state)
        return change

    async def stop_rollout(self, key: str, *, actor: str) -> CanaryState | None:
        """Stop the rollout of `key` where it is (its flag stays); None if none runs."""
        await self._prepare()
        self.states = await self.store.canaries()
        state = self.states.get(key)
        if state is None or state.status != "rolling out":
            return None
        note = f"rollout stopped by {actor} at step {state.step + 1}"
        stopped = state.with_(status="stopped", note=note)
        await self._store_state(stopped)
        return stopped

    async def _store_state(self, state: CanaryState) -> None:
        await self._prepare()
        await self.store.save(state)
        self.states[state.route] = state

    def describe(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """GET /routes rows with each route's canary state ("canary": {...} or None)."""
        for row in rows:
            state = self.states.get(row["key"])
            row["canary"] = state.as_dict() if state is not None else None
        return rows


def judge_for(
    settings: Settings, follower: FlagFollower, *, registry: CollectorRegistry = REGISTRY
) -> CanaryJudge:
    """The judge a gateway gets: its tables beside the flag store's (in memory with a
    MemoryFlagStore), and the GATEWAY_JUDGE_* settings."""
    store: JudgeStore = MemoryJudgeStore()
    if isinstance(follower.store, SqlFlagStore):
        url = settings.effective_flags_database_url
        store = SqlJudgeStore(url, schema=settings.flags_schema or None)
    return CanaryJudge(
        store,
        follower,
        alpha=settings.judge_alpha,
        interval=settings.judge_interval,
        min_requests=settings.judge_min_requests,
        enabled=settings.judge,
        registry=registry,
    )
