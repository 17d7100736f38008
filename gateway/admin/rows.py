"""Routes as rows: what the admin API, `gateway routes` and the startup line show of them.

describe_entries(gateway.entries, gateway.modes)   # one dict per route
routes_summary(gateway.entries, gateway.modes)     # counts and modes for the log line
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.flags.table import ModeTable
from gateway.routing.contract import Contract
from gateway.routing.dispatch import RouteEntry

__all__ = ["describe_entries", "routes_summary"]


def describe_entries(
    entries: Mapping[str, RouteEntry],
    modes: ModeTable,
    contracts: Mapping[str, Contract] | None = None,
) -> list[dict[str, Any]]:
    """One row per route for the admin API and `gateway routes`: key, implementations, mode
    and percent (paired routes), where each side lives, its kind, why a legacy route
    keeps FastAPI's own handler (`fallback`), if it does, and how a twin's contract compares
    with its legacy route's (`contract`: status, accepted reason, differences; paired only)."""
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
            }
        )
    return rows


def routes_summary(entries: Mapping[str, RouteEntry], modes: ModeTable) -> dict[str, Any]:
    """The routes part of the startup line: counts, each paired route's mode, the rest."""
    paired = {key: flag.describe() for key, flag in modes.snapshot().items()}
    single = {k: e.implementations[0].value for k, e in entries.items() if not e.paired}
    return {"routes": len(entries), "paired": len(paired), "modes": paired, "single": single}
