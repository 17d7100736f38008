"""Routes as rows: what the admin API, `gateway routes` and the startup line show of them.

describe_entries(gateway.entries, gateway.modes)   # one dict per route
routes_summary(gateway.entries, gateway.modes)     # counts and modes for the log line
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from weakref import WeakKeyDictionary

from gateway.flags.table import ModeTable
from gateway.routing.contract import Contract
from gateway.routing.dispatch import Endpoint, RouteEntry
from gateway.routing.loop_blocking import sync_session_takers

__all__ = ["blocks_loop", "describe_entries", "routes_summary"]


def describe_entries(
    entries: Mapping[str, RouteEntry],
    modes: ModeTable,
    contracts: Mapping[str, Contract] | None = None,
) -> list[dict[str, Any]]:
    """One row per route for the admin API and `gateway routes`: key, implementations, mode
    and percent (paired routes), where each side lives, its kind, why a legacy route
    keeps FastAPI's own handler (`fallback`), if it does, how a twin's contract compares
    with its legacy route's (`contract`: status, accepted reason, differences; paired only),
    and per side the `async def` functions that take a sync Session (`blocks_loop`: they
    will block the event loop)."""
    rows = []
    for key, entry in entries.items():
        flag = modes.get(key) if entry.paired else None
        contract = (contracts or {}).get(key)
        rows.append(
            {
                "key": key,
                "implementations": [i.value for i in entry.implementations],
                "mode": flag.mode.value if flag else entry.implementations[0].value,
                "percent": flag.percent if flag else None,
                "paired": entry.paired,
                "legacy": entry.legacy.where if entry.legacy else None,
                "async": entry.async_.where if entry.async_ else None,
                "kinds": {e.side.value: e.kind for e in (entry.legacy, entry.async_) if e},
                "fallback": entry.legacy.fallback if entry.legacy else None,
                "contract": contract.as_row() if contract else None,
                "blocks_loop": blocks_loop(entry),
            }
        )
    return rows


def routes_summary(entries: Mapping[str, RouteEntry], modes: ModeTable) -> dict[str, Any]:
    """The routes part of the startup line: counts, each paired route's mode, the rest."""
    paired = {key: flag.describe() for key, flag in modes.snapshot().items()}
    single = {k: e.implementations[0].value for k, e in entries.items() if not e.paired}
    blocking = [key for key, entry in entries.items() if blocks_loop(entry)]
    return {
        "routes": len(entries),
        "paired": len(paired),
        "modes": paired,
        "single": single,
        "blocks_loop": blocking,
    }


_takers: WeakKeyDictionary[Endpoint, list[str]] = WeakKeyDictionary()


def blocks_loop(entry: RouteEntry) -> dict[str, list[str]]:
    """Per side of `entry`, its `async def` functions that take a sync Session ({} if none).

    Read from the dependency tree once per endpoint: /routes on a 250-route app stays cheap.
    """
    found = {}
    for endpoint in (entry.legacy, entry.async_):
        if endpoint is None:
            continue
        takers = _takers.get(endpoint)
        if takers is None:
            takers = _takers[endpoint] = sync_session_takers(endpoint.context.dependant)
        if takers:
            found[endpoint.side.value] = takers
    return found
