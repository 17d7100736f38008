"""`gateway report`: the migration ranking of a running gateway, as a table that fits the terminal.

gateway report --url http://127.0.0.1:8000 [--token T]      # or GATEWAY_ADMIN_URL / _TOKEN
"""

from __future__ import annotations

import io
import json
import shutil
from typing import Any

import typer

from gateway.cli_common import AsJson, Prefix, Token, Url, request_gateway
from gateway.exceptions import CommandError

__all__ = ["format_report", "report_command"]

CPU_BOUND = "*"  # after the CPU share; the legend under the table says what it means
# (header, JSON field, format); long names are explained in the legend under the table.
COLUMNS = (
    ("REQ", "requests", "{:d}"),
    ("REQ/S", "rate_per_second", "{:.2f}"),
    ("BLOCKED/S", "blocked_thread_seconds_per_second", "{:.3f}"),
    ("P50", "p50_seconds", "ms"),
    ("P95", "p95_seconds", "ms"),
    ("QUEUE", "mean_queue_wait_seconds", "ms"),
    ("DB", "db_share", "%"),
    ("CPU", "cpu_share", "%"),
)
LEGEND = (
    "BLOCKED/S: thread-seconds blocked per second (the ranking); QUEUE: mean wait for a "
    "worker thread; DB, CPU: shares of the route's thread time."
)


def _cell(value: Any, style: str) -> str:
    if value is None:
        return "-"
    if style == "ms":
        return f"{value * 1000:.1f}ms"
    if style == "%":
        return f"{value * 100:.0f}%"
    return style.format(value)


def format_report(report: dict[str, Any], width: int | None = None) -> str:
    """The report JSON (GET {prefix}/report) as text `width` columns wide (default: the
    terminal's, 80 when there is none); long route keys wrap inside their column."""
    try:  # typer brings rich from 0.12 on; an older typer may leave it out
        from rich import box
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        raise CommandError(
            "the report table needs rich, which is not installed: pip install rich, or pass --json"
        ) from None
    width = width or shutil.get_terminal_size((80, 24)).columns
    window = f"{report['window_seconds']:.0f} s"
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("ROUTE", overflow="fold", min_width=12)
    for title, _, _ in COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    cpu_bound = False
    for candidate in report["candidates"]:
        cells = [_cell(candidate[name], style) for _, name, style in COLUMNS]
        if candidate["async_will_not_help"]:
            cpu_bound = True
            cells[-1] += CPU_BOUND
        table.add_row(candidate["key"], *cells)
    out = io.StringIO()
    console = Console(
        file=out, width=width, no_color=True, highlight=False, markup=False, emoji=False
    )
    console.print(f"Legacy routes by thread capacity freed if migrated (over {window}):")
    if report["candidates"]:
        console.print(table)
    else:
        console.print("(no legacy requests served yet)")
    if cpu_bound:
        console.print("* CPU-bound: async will not help (the thread computes; it does not wait).")
    console.print(LEGEND)
    console.print(f"formula: {report['formula']}")
    if report["regressions"]:
        console.print("\nRegressions: async routes that ran a sync engine on the event loop:")
        for item in report["regressions"]:
            where = f" ({item['where']})" if item.get("where") else ""
            console.print(
                f"  {item['key']}{where}: {item['requests_blocking']} requests, loop blocked "
                f"{item['loop_blocked_seconds']:.3f} s"
            )
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def report_command(
    url: Url = None,
    token: Token = None,
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
) -> None:
    """Print the migration ranking of a running gateway."""
    report = request_gateway("GET", url, f"{prefix}/report", token)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(format_report(report))
