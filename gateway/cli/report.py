"""`gateway report`: the migration report of a running gateway, as tables that fit the terminal.

gateway report --url http://127.0.0.1:8000 [--token T] [--window 5m]  # or GATEWAY_ADMIN_URL
"""

from __future__ import annotations

import io
import json
import shutil
from typing import Annotated, Any

import typer

from gateway.cli.common import AsJson, Prefix, Token, Url, request_gateway
from gateway.report.ranking import UNPAIRED

__all__ = ["format_report", "report_command"]

CPU_BOUND = "*"  # after the CPU share; the legend under the table says what it means
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


def format_report(report: dict[str, Any], width: int | None = None) -> str:
    """The report JSON (GET {prefix}/report) as text `width` columns wide (default: the
    terminal's, 80 when there is none); long route keys wrap inside their column."""
    from rich.console import Console  # the table's only user: loaded when a table is printed

    width = width or shutil.get_terminal_size((80, 24)).columns
    out = io.StringIO()
    console = Console(
        file=out, width=width, no_color=True, highlight=False, markup=False, emoji=False
    )
    console.print(window_line(report))
    _ranking(console, report)
    if report.get("migrated"):
        console.print("\nMigrated (every request on async, out of the ranking):")
        for item in report["migrated"]:
            console.print(
                f"  {item['key']}: {_cell(item['rate_per_second'], '{:.2f}')} req/s, "
                f"5xx {_cell(item['error_share'], '%1')}, p95 {_cell(item['p95_seconds'], 'ms')}"
            )
    if report.get("pairs"):
        console.print("\nPaired routes, legacy and async side by side:")
        console.print(_pairs_table(report["pairs"]))
    if report["regressions"]:
        console.print("\nRegressions: async routes that ran a sync engine on the event loop:")
        for item in report["regressions"]:
            where = f" ({item['where']})" if item.get("where") else ""
            console.print(
                f"  {item['key']}{where}: {item['requests_blocking']} requests, loop blocked "
                f"{item['loop_blocked_seconds']:.3f} s"
            )
    if report.get("lazy_loads"):
        console.print("\nLazy loads: async will raise here unless these are eager-loaded:")
        for item in report["lazy_loads"]:
            loads = ", ".join(f"{rel} ({n})" for rel, n in item["relationships"].items())
            console.print(f"  {item['route']}: {loads}")
    if report.get("shadow"):
        console.print("\nShadowed (async run rolled back and compared; gateway shadow for detail):")
        for item in report["shadow"]:
            console.print(
                f"  {item['route']}: {item['compared']} compared, {item['different']} differed, "
                f"{item['candidate_error']} async errors, {item['skipped']} skipped"
            )
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def _table(first: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column(first, overflow="fold", min_width=12)
    table.add_column("MODE", no_wrap=True)
    return table


def _ranking(console: Any, report: dict[str, Any]) -> None:
    console.print("Legacy routes by thread capacity freed if migrated:")
    if not report["candidates"]:
        console.print("(no legacy requests served in the window)")
        return
    table = _table("ROUTE")
    for title, _, _ in COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    cpu_bound = False
    for candidate in report["candidates"]:
        cells = [_cell(candidate[name], style) for _, name, style in COLUMNS]
        if candidate["async_will_not_help"]:
            cpu_bound = True
            cells[-1] += CPU_BOUND
        mode = candidate.get("mode", "legacy")
        table.add_row(candidate["key"], "-" if mode == UNPAIRED else mode, *cells)
    console.print(table)
    least = report.get("cpu_bound_min_requests", 0)
    if cpu_bound:
        console.print("* CPU-bound: async will not help (the thread computes; it does not wait).")
    console.print(
        f"{LEGEND} MODE -: no async twin. The CPU-bound mark needs CPU >= 50% over at "
        f"least {least} thread-timed requests in the window."
    )
    console.print(f"formula: {report['formula']}")


def _pairs_table(pairs: list[dict[str, Any]]) -> Any:
    table = _table("ROUTE / SIDE")
    for title, _, _ in SIDE_COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    for pair in pairs:
        table.add_row(pair["key"], pair["mode"], *[""] * len(SIDE_COLUMNS))
        for side in ("legacy", "async"):
            numbers = pair["sides"][side]
            cells = [_cell(numbers[name], style) for _, name, style in SIDE_COLUMNS]
            table.add_row(f"  {side}", "", *cells)
    return table


def report_command(
    url: Url = None,
    token: Token = None,
    prefix: Prefix = "/_gateway",
    window: Window = None,
    as_json: AsJson = False,
) -> None:
    """Print the migration report of a running gateway over a recent window."""
    params = {"window": window} if window else {}
    report = request_gateway("GET", url, f"{prefix}/report", token, params=params)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(format_report(report))
