"""`gateway report`: the migration report of a running gateway, its route keys always whole.

gateway report --url http://127.0.0.1:8000 [--token T] [--window 5m]  # or GATEWAY_ADMIN_URL
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from gateway.cli.common import AsJson, Prefix, Token, Url, request_gateway, stdout_to_stderr
from gateway.cli.table import entry_lines, output_width, table_lines, wrap
from gateway.report.ranking import UNPAIRED

__all__ = ["format_report", "report_command"]

CPU_BOUND = "*"  # after the CPU share; the legend under the table says what it means
BLOCKS_LOOP = "!"  # after the route's rate: it blocks the event loop (ranked first)
# (header, JSON field, format); long names are explained in the legend under the table.
COLUMNS = (
    ("REQ/S", "rate_per_second", "{:.2f}"),
    ("BLOCKED/S", "blocked_thread_seconds_per_second", "{:.3f}"),
    ("P50", "p50_seconds", "ms-"),
    ("P95", "p95_seconds", "ms-"),
    ("QUEUE", "mean_queue_wait_seconds", "ms-"),
    ("DB", "db_share", "%"),
    ("CPU", "cpu_share", "%"),
)
SIDE_COLUMNS = (
    ("REQ", "requests", "{:d}"),
    ("REQ/S", "rate_per_second", "{:.2f}"),
    ("5XX", "error_share", "%1"),
    ("P50", "p50_seconds", "ms"),
    ("P95", "p95_seconds", "ms"),
)
LEGEND = (
    "BLOCKED/S: thread-seconds blocked per second (the ranking); P50, P95: latency in ms; "
    "QUEUE: mean wait for a worker thread in ms; DB, CPU: shares of the route's thread time."
)

Window = Annotated[
    str | None,
    typer.Option(help="how far back: seconds, or 30s, 5m, 0.5h (default 5m)", show_default=False),
]


def _cell(value: Any, style: str) -> str:
    if value is None:
        return "-"
    if style == "ms":
        return f"{value * 1000:.1f}ms"
    if style == "ms-":  # the header or the legend says ms
        return f"{value * 1000:.1f}"
    if style == "%":
        return f"{value * 100:.0f}%"
    if style == "%1":
        return f"{value * 100:.1f}%"
    return style.format(value)


def window_line(report: dict[str, Any]) -> str:
    """What span the numbers cover, and whether it is all that was asked for."""
    covered = report["window_seconds"]
    asked = report.get("requested_window_seconds")
    if asked is None or report.get("window_filled", True):
        return f"Over the last {covered:.0f} s."
    return (
        f"Over the last {covered:.0f} s only (asked for {asked:.0f} s; the window is still "
        "filling)."
    )


def format_report(report: dict[str, Any], width: int | None = 80) -> str:
    """The report JSON (GET {prefix}/report) as text `width` columns wide (None: no limit,
    what a pipe gets); a route key too long for its column goes on a line of its own."""
    lines = [wrap(window_line(report), width), *_ranking(report, width)]
    if report.get("migrated"):
        lines += ["", "Migrated (every request on async, out of the ranking):"]
        for item in report["migrated"]:
            lines += entry_lines(
                item["key"],
                f"{_cell(item['rate_per_second'], '{:.2f}')} req/s, "
                f"5xx {_cell(item['error_share'], '%1')}, p95 {_cell(item['p95_seconds'], 'ms')}",
                width,
            )
    if report.get("pairs"):
        lines += ["", "Paired routes, legacy and async side by side:"]
        lines += _pairs_table(report["pairs"], width)
    if report["regressions"]:
        lines += ["", "Regressions: async routes that ran a sync engine on the event loop:"]
        for item in report["regressions"]:
            where = f" ({item['where']})" if item.get("where") else ""
            lines += entry_lines(
                f"{item['key']}{where}",
                f"{item['requests_blocking']} requests, loop blocked "
                f"{item['loop_blocked_seconds']:.3f} s",
                width,
            )
    if report.get("lazy_loads"):
        lines += ["", "Lazy loads: async will raise here unless these are eager-loaded:"]
        for item in report["lazy_loads"]:
            loads = ", ".join(f"{rel} ({n})" for rel, n in item["relationships"].items())
            lines += entry_lines(item["route"], loads, width)
    if report.get("shadow"):
        lines += ["", "Shadowed (async run rolled back and compared; gateway shadow for detail):"]
        for item in report["shadow"]:
            lines += entry_lines(
                item["route"],
                f"{item['compared']} compared, {item['different']} differed, "
                f"{item['candidate_error']} async errors, {item['skipped']} skipped",
                width,
            )
    return "\n".join(lines)


def _ranking(report: dict[str, Any], width: int | None) -> list[str]:
    lines = ["Legacy routes by thread capacity freed if migrated:"]
    if not report["candidates"]:
        return [*lines, "(no legacy requests served in the window)"]
    rows = []
    cpu_bound = blocks_loop = False
    for candidate in report["candidates"]:
        cells = [_cell(candidate[name], style) for _, name, style in COLUMNS]
        if candidate["async_will_not_help"]:
            cpu_bound = True
            cells[-1] += CPU_BOUND
        if candidate.get("loop_blocked_seconds_per_second"):
            blocks_loop = True
            cells[0] += BLOCKS_LOOP
        mode = candidate.get("mode", "legacy")
        rows.append([candidate["key"], "-" if mode == UNPAIRED else mode, *cells])
    header = ["ROUTE", "MODE", *(title for title, _, _ in COLUMNS)]
    lines += table_lines(header, rows, width=width, right=range(2, len(header)))
    if blocks_loop:
        lines.append(
            "! blocks the event loop (async def with a sync session): it stalls every request "
            "of the worker, so it ranks first; see Regressions below."
        )
    if cpu_bound:
        lines.append("* CPU-bound: async will not help (the thread computes; it does not wait).")
    least = report.get("cpu_bound_min_requests", 0)
    legend = (
        f"{LEGEND} MODE -: no async twin. The CPU-bound mark needs CPU >= 50% over at "
        f"least {least} thread-timed requests in the window."
    )
    return [*lines, wrap(legend, width), wrap(f"formula: {report['formula']}", width)]


def _pairs_table(pairs: list[dict[str, Any]], width: int | None) -> list[str]:
    rows = []
    for pair in pairs:
        rows.append([pair["key"], pair["mode"], *[""] * len(SIDE_COLUMNS)])
        for side in ("legacy", "async"):
            numbers = pair["sides"][side]
            cells = [_cell(numbers[name], style) for _, name, style in SIDE_COLUMNS]
            rows.append([f"  {side}", "", *cells])
    header = ["ROUTE / SIDE", "MODE", *(title for title, _, _ in SIDE_COLUMNS)]
    return table_lines(header, rows, width=width, right=range(2, len(header)))


def report_command(
    url: Url = None,
    token: Token = None,
    prefix: Prefix = "/_gateway",
    window: Window = None,
    as_json: AsJson = False,
) -> None:
    """Print the migration report of a running gateway over a recent window."""
    params = {"window": window} if window else {}
    with stdout_to_stderr():
        report = request_gateway("GET", url, f"{prefix}/report", token, params=params)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(format_report(report, width=output_width()))
