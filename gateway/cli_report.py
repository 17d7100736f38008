"""`gateway report`: the migration ranking of a running gateway, as a table.

gateway report --url http://127.0.0.1:8000 [--token T]
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
import typer

__all__ = ["format_report", "report_command"]

COLUMNS = (
    ("ROUTE", "key", "{}"),
    ("REQ", "requests", "{:d}"),
    ("REQ/S", "rate_per_second", "{:.2f}"),
    ("BLOCKED THR-S/S", "blocked_thread_seconds_per_second", "{:.3f}"),
    ("P50", "p50_seconds", "ms"),
    ("P95", "p95_seconds", "ms"),
    ("QUEUE WAIT", "mean_queue_wait_seconds", "ms"),
    ("DB", "db_share", "%"),
    ("CPU", "cpu_share", "%"),
)


def _cell(value: Any, style: str) -> str:
    if value is None:
        return "-"
    if style == "ms":
        return f"{value * 1000:.1f}ms"
    if style == "%":
        return f"{value * 100:.0f}%"
    return style.format(value)


def format_report(report: dict[str, Any]) -> str:
    """The report JSON (GET {prefix}/report) as a terminal table."""
    rows = [[title for title, _, _ in COLUMNS] + ["NOTE"]]
    for candidate in report["candidates"]:
        cells = [_cell(candidate[name], style) for _, name, style in COLUMNS]
        cells.append("async will not help (CPU-bound)" if candidate["async_will_not_help"] else "")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"Legacy routes by thread capacity freed if migrated "
        f"(over {report['window_seconds']:.0f} s):"
    ]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if len(rows) == 1:
        lines.append("(no legacy requests served yet)")
    lines.append(f"formula: {report['formula']}")
    if report["regressions"]:
        lines.append("")
        lines.append("Regressions: async routes that ran a sync engine on the event loop:")
        for item in report["regressions"]:
            where = f" ({item['where']})" if item.get("where") else ""
            lines.append(
                f"  {item['key']}{where}: {item['requests_blocking']} requests, loop blocked "
                f"{item['loop_blocked_seconds']:.3f} s"
            )
    return "\n".join(lines)


def report_command(
    url: Annotated[str, typer.Option(help="base URL of a running gateway")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str | None, typer.Option(help="admin token if reads need one (or GATEWAY_ADMIN_TOKEN)")
    ] = None,
    prefix: Annotated[str, typer.Option(help="the gateway's admin prefix")] = "/_gateway",
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON")] = False,
) -> None:
    """Print the migration ranking of a running gateway."""
    token = token or os.environ.get("GATEWAY_ADMIN_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    target = url.rstrip("/") + prefix + "/report"
    try:
        response = httpx.get(target, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise typer.BadParameter(f"cannot reach {target}: {exc}", param_hint="--url") from None
    if response.status_code in (401, 403):
        raise typer.BadParameter(
            f"{target} answered {response.status_code}: pass --token or set GATEWAY_ADMIN_TOKEN",
            param_hint="--token",
        )
    if response.status_code != 200:
        raise typer.BadParameter(
            f"{target} answered {response.status_code}, expected 200: {response.text[:200]}",
            param_hint="--url",
        )
    typer.echo(response.text if as_json else format_report(response.json()))
