"""The cases and database profiles, and the order they run in. Pure: no I/O.

Every case serves the same route (a primary-key lookup of a random user) with the same
pool and threadpool; only the app differs. `schedule` alternates the order round by
round (A B C ..., then ... C B A) so slow drift on a shared machine hits every case alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BASELINE",
    "CASES",
    "DEADLOCK_CASES",
    "PROFILES",
    "Case",
    "Profile",
    "schedule",
]

BASELINE = "bare_def"


@dataclass(frozen=True)
class Case:
    """One app under test: `app` is a uvicorn factory path, `path` the URL prefix wrk hits."""

    name: str
    title: str
    app: str
    path: str = "/users/"
    env: dict[str, str] = field(default_factory=dict)
    gateway: bool = False  # serves gateway metrics worth scraping after the run


@dataclass(frozen=True)
class Profile:
    """A database profile: `delay_ms` of server-side latency added to every lookup."""

    name: str
    title: str
    delay_ms: float


PROFILES = (
    Profile("plain", "plain lookup", 0.0),
    Profile("delay5ms", "lookup + 5 ms server-side latency", 5.0),
)

CASES = (
    Case("bare_def", "bare FastAPI: def + sync SQLAlchemy", "bench.apps.bare_def:create_app"),
    Case(
        "bare_async_sync",
        "bare FastAPI: async def calling sync SQLAlchemy",
        "bench.apps.bare_async_sync:create_app",
    ),
    Case(
        "bare_async",
        "bare FastAPI: async def + AsyncSession",
        "bench.apps.bare_async:create_app",
    ),
    Case(
        "gateway_legacy",
        "gateway, legacy mode (the def route)",
        "bench.apps.gateway_app:create_app",
        env={"GATEWAY_DEFAULT_MODE": "legacy", "GATEWAY_METRICS": "true"},
        gateway=True,
    ),
    Case(
        "gateway_async",
        "gateway, async mode, all metrics on",
        "bench.apps.gateway_app:create_app",
        env={"GATEWAY_DEFAULT_MODE": "async", "GATEWAY_METRICS": "true"},
        gateway=True,
    ),
    Case(
        "gateway_async_nofreeze",
        "gateway, async mode, all metrics on, GC freeze off (like for like)",
        "bench.apps.gateway_app:create_app",
        env={
            "GATEWAY_DEFAULT_MODE": "async",
            "GATEWAY_METRICS": "true",
            "GATEWAY_GC_FREEZE": "false",
        },
        gateway=True,
    ),
    Case(
        "instrumented",
        "bare async + prometheus-fastapi-instrumentator",
        "bench.apps.instrumented:create_app",
    ),
    Case(
        "gateway_async_sync",
        "gateway, async mode, async def calling sync SQLAlchemy",
        "bench.apps.gateway_app:create_blocking_app",
        env={"GATEWAY_DEFAULT_MODE": "async", "GATEWAY_METRICS": "true"},
        gateway=True,
    ),
    Case(
        "ceiling",
        "ceiling: bare async returning a constant, no database",
        "bench.apps.bare_async:create_app",
        path="/ceiling/",
    ),
)

# The textbook deadlock: pool 20 without overflow under a threadpool of 40. The middle case
# shows that `async def` with the sync get_db freezes the loop instead (see bare_async_sync).
DEADLOCK_ENV = {
    "GATEWAY_POOL_SIZE": "20",
    "GATEWAY_MAX_OVERFLOW": "0",
    "GATEWAY_THREADPOOL_SIZE": "40",
}
DEADLOCK_CASES = (
    Case(
        "deadlock_bare_def",
        "bare FastAPI def route, pool 20 / threadpool 40",
        "bench.apps.bare_def:create_app",
        env=DEADLOCK_ENV,
    ),
    Case(
        "deadlock_bare_async_sync_dep",
        "bare FastAPI async def + sync generator get_db, pool 20 / threadpool 40",
        "bench.apps.bare_async_sync:create_dependency_app",
        env=DEADLOCK_ENV,
    ),
    Case(
        "deadlock_gateway_legacy",
        "gateway legacy mode, pool 20 / threadpool 40",
        "bench.apps.gateway_app:create_app",
        env={**DEADLOCK_ENV, "GATEWAY_DEFAULT_MODE": "legacy", "GATEWAY_METRICS": "true"},
        gateway=True,
    ),
)


def schedule(cases: tuple[Case, ...] | list[Case], rounds: int) -> list[tuple[int, Case]]:
    """(round, case) in run order: round 1 forward, round 2 reversed, and so on.

    >>> [(r, c.name) for r, c in schedule([Case("a", "", ""), Case("b", "", "")], 2)]
    [(1, 'a'), (1, 'b'), (2, 'b'), (2, 'a')]
    """
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: expected at least 1")
    order: list[tuple[int, Case]] = []
    for number in range(1, rounds + 1):
        sequence = list(cases) if number % 2 else list(reversed(cases))
        order.extend((number, case) for case in sequence)
    return order


def select(names: str | None, cases: tuple[Case, ...] = CASES) -> tuple[Case, ...]:
    """The cases named in a comma list (all when None), in their standard order.

    The baseline always stays in: every ratio is against it.
    """
    if not names:
        return cases
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    known = {c.name for c in cases}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(
            f"unknown case(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
        )
    wanted.add(BASELINE)
    return tuple(c for c in cases if c.name in wanted)
