"""The cases and database profiles, and the order they run in. Pure: no I/O.

Every case serves the same route (a primary-key lookup of a random user) with the same
pool and threadpool (with several workers, the pool is divided between them); only the app
differs. `schedule` alternates the order round by round (A B C ..., then ... C B A) so slow
drift on a shared machine hits every case alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BASELINE",
    "CASES",
    "DEADLOCK_CASES",
    "GROUPS",
    "PROFILES",
    "Case",
    "Profile",
    "plan",
    "schedule",
    "scraped",
    "select",
]

BASELINE = "bare_def"
WORKERS_POOL_NOTE = "pool per worker = pool / workers"


@dataclass(frozen=True)
class Case:
    """One app under test: `app` is a uvicorn factory path, `path` the URL prefix wrk hits.

    `headline` cases run every round (--rounds); the others are references, run for the
    first --reference-rounds rounds only. `workers` > 1 serves the app with that many
    worker processes, each with the pool divided between them.
    """

    name: str
    title: str
    app: str
    path: str = "/users/"
    env: dict[str, str] = field(default_factory=dict)
    gateway: bool = False  # serves gateway metrics worth scraping after the run
    headline: bool = False
    workers: int = 1
    profiles: tuple[str, ...] = ()  # the profiles it runs in; empty means all


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

LEGACY = {"GATEWAY_DEFAULT_MODE": "legacy", "GATEWAY_METRICS": "true"}
ASYNC = {"GATEWAY_DEFAULT_MODE": "async", "GATEWAY_METRICS": "true"}

CASES = (
    Case(
        "bare_def",
        "bare FastAPI: def + sync SQLAlchemy",
        "bench.apps.bare_def:create_app",
        headline=True,
    ),
    Case(
        "bare_def_freeze",
        "bare FastAPI: def + sync SQLAlchemy, gc.freeze() after startup",
        "bench.apps.bare_def:create_frozen_app",
    ),
    Case(
        "bare_async_sync",
        "bare FastAPI: async def calling sync SQLAlchemy",
        "bench.apps.bare_async_sync:create_app",
    ),
    Case(
        "bare_async",
        "bare FastAPI: async def + AsyncSession",
        "bench.apps.bare_async:create_app",
        headline=True,
    ),
    Case(
        "bare_async_freeze",
        "bare FastAPI: async def + AsyncSession, gc.freeze() after startup",
        "bench.apps.bare_async:create_frozen_app",
        headline=True,
    ),
    Case(
        "gateway_legacy",
        "gateway, legacy mode (bare def's app mounted)",
        "bench.apps.gateway_app:create_app",
        env=LEGACY,
        gateway=True,
        headline=True,
    ),
    Case(
        "gateway_async",
        "gateway, async mode, all metrics on",
        "bench.apps.gateway_app:create_app",
        env=ASYNC,
        gateway=True,
        headline=True,
    ),
    Case(
        "gateway_async_nofreeze",
        "gateway, async mode, all metrics on, GC freeze off",
        "bench.apps.gateway_app:create_app",
        env={**ASYNC, "GATEWAY_GC_FREEZE": "false"},
        gateway=True,
        headline=True,
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
        env=ASYNC,
        gateway=True,
    ),
    Case(
        "ceiling",
        "ceiling: bare async returning a constant, no database",
        "bench.apps.bare_async:create_app",
        path="/ceiling/",
        profiles=("plain",),  # it never reads the database: a database profile changes nothing
    ),
    Case(
        "bare_def_w2",
        f"bare FastAPI def, uvicorn --workers 2 ({WORKERS_POOL_NOTE})",
        "bench.apps.bare_def:create_app",
        workers=2,
    ),
    Case(
        "bare_async_w2",
        f"bare FastAPI async, uvicorn --workers 2 ({WORKERS_POOL_NOTE})",
        "bench.apps.bare_async:create_app",
        workers=2,
    ),
    Case(
        "gateway_legacy_w2",
        f"gateway legacy mode, gateway serve --workers 2 ({WORKERS_POOL_NOTE})",
        "bench.apps.gateway_app:create_app",
        env=LEGACY,
        gateway=True,
        workers=2,
    ),
    Case(
        "gateway_async_w2",
        f"gateway async mode, gateway serve --workers 2 ({WORKERS_POOL_NOTE})",
        "bench.apps.gateway_app:create_app",
        env=ASYNC,
        gateway=True,
        workers=2,
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
        env={**DEADLOCK_ENV, **LEGACY},
        gateway=True,
    ),
)


def schedule(
    cases: tuple[Case, ...] | list[Case], rounds: int, reference_rounds: int | None = None
) -> list[tuple[int, Case]]:
    """(round, case) in run order: round 1 forward, round 2 reversed, and so on.

    Headline cases run `rounds` rounds, the others `reference_rounds` (default: as many);
    a round holds every case still running in it, so the two kinds stay interleaved.

    >>> [(r, c.name) for r, c in schedule([Case("a", "", ""), Case("b", "", "")], 2)]
    [(1, 'a'), (1, 'b'), (2, 'b'), (2, 'a')]
    >>> both = [Case("h", "", "", headline=True), Case("r", "", "")]
    >>> [(r, c.name) for r, c in schedule(both, 3, reference_rounds=1)]
    [(1, 'h'), (1, 'r'), (2, 'h'), (3, 'h')]
    """
    reference_rounds = rounds if reference_rounds is None else reference_rounds
    if rounds < 1 or reference_rounds < 0:
        raise ValueError(
            f"rounds={rounds}, reference_rounds={reference_rounds}: expected rounds of at "
            "least 1 and reference rounds of at least 0"
        )
    order: list[tuple[int, Case]] = []
    for number in range(1, max(rounds, reference_rounds) + 1):
        running = [c for c in cases if number <= (rounds if c.headline else reference_rounds)]
        sequence = running if number % 2 else list(reversed(running))
        order.extend((number, case) for case in sequence)
    return order


def plan(
    cases: tuple[Case, ...] | list[Case],
    profiles: tuple[Profile, ...],
    rounds: int,
    reference_rounds: int | None = None,
) -> list[tuple[Profile, int, Case]]:
    """(profile, round, case) in run order: every profile in turn, each with `schedule`'s
    rounds, leaving out a case where its `profiles` say it does not run.

    >>> only_plain = Case("a", "", "", profiles=("plain",))
    >>> [(p.name, r, c.name) for p, r, c in plan([only_plain], PROFILES, 1)]
    [('plain', 1, 'a')]
    """
    order = schedule(cases, rounds, reference_rounds)
    return [
        (p, number, case)
        for p in profiles
        for number, case in order
        if not case.profiles or p.name in case.profiles
    ]


def scraped(case: Case, number: int) -> bool:
    """Whether the run scrapes the gateway's metrics: a gateway case's first round only, since
    a scrape waits for the server to finish its backlog (seconds) while any other server is
    killed as soon as wrk is done."""
    return case.gateway and number == 1


GROUPS = ("headline", "reference")


def select(names: str | None, cases: tuple[Case, ...] = CASES) -> tuple[Case, ...]:
    """The cases named in a comma list (all when None), in their standard order.

    `headline` and `reference` name those groups. The baseline always stays in: every
    ratio in the tables is against it.
    """
    if not names:
        return cases
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    known = {c.name for c in cases}
    unknown = sorted(wanted - known - set(GROUPS))
    if unknown:
        raise ValueError(
            f"unknown case(s) {', '.join(unknown)}; expected some of "
            f"{', '.join([*GROUPS, *sorted(known)])}"
        )
    if "headline" in wanted:
        wanted |= {c.name for c in cases if c.headline}
    if "reference" in wanted:
        wanted |= {c.name for c in cases if not c.headline}
    wanted.add(BASELINE)
    return tuple(c for c in cases if c.name in wanted)
