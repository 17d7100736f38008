"""`gateway shadow`: what shadow mode found, per route, from a running gateway.

gateway shadow                    # a table, then the newest differences of each route
gateway shadow --json             # GET {prefix}/shadow as it is
gateway shadow --reset "GET /users/{user_id}"   # that route's comparisons from 0

Both need an admin token (--token or GATEWAY_ADMIN_TOKEN): results tell what requests did.
An error shows its type, its whole message and where the twin raised it (file:line).
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer

from gateway.cli.common import (
    AsJson,
    Prefix,
    Token,
    Url,
    printable,
    request_gateway,
    stdout_to_stderr,
)
from gateway.cli.table import output_width, table_lines

__all__ = ["format_shadow", "shadow_command"]

COLUMNS = ("compared", "same", "different", "candidate_errors", "skipped")
HEADINGS = ("COMPARED", "SAME", "DIFFERENT", "ERRORS", "SKIPPED")


def format_shadow(found: dict[str, Any], examples: int = 3, width: int | None = 80) -> str:
    """The table and the newest `examples` differences of each route, `width` columns wide
    (None: no limit); a route key too long for its column goes on a line of its own."""
    routes = found.get("routes", [])
    if not routes:
        return "No route has been shadowed yet (set one: gateway flags set KEY shadow)."
    cells = [[printable(r["route"]), *(str(r.get(c, 0)) for c in COLUMNS)] for r in routes]
    right = range(1, len(COLUMNS) + 1)
    lines = table_lines(["ROUTE", *HEADINGS], cells, width=width, right=right)
    for row in routes:
        shown = [e for e in row.get("examples", []) if e.get("outcome") != "same"][:examples]
        if not shown:
            continue
        lines.append("")
        version = f" (twin version {row['version']})" if row.get("version") else ""
        lines.append(f"{printable(row['route'])}: newest differences{version}")
        for example in shown:
            lines.append(f"  {example['at']}  {example['method']} {printable(example['path'])}")
            detail = example.get("detail", {})
            for part in ("fields", "writes", "work"):
                for item in detail.get(part, []):
                    lines.append(
                        f"    {part[:-1] if part != 'work' else 'work'}: {printable(item)}"
                    )
            if "status" in detail:
                status = detail["status"]
                lines.append(f"    status: legacy {status['legacy']}, async {status['async']}")
            lines += _failure_lines(detail)
    scope = found.get("scope")
    if scope:
        lines.append("")
        lines.append(f"(counts from {scope})")
    return "\n".join(lines)


def _failure_lines(detail: dict[str, Any]) -> list[str]:
    """An error as type, where and its whole message, indented under its example."""
    failures = dict(detail.get("failures", {}))
    if "failure" in detail:
        failures = {"async": detail["failure"]}
    lines = []
    for side, failure in failures.items():
        where = f" at {printable(failure['where'])}" if failure.get("where") else ""
        lines.append(f"    {side} raised {printable(failure['type'])}{where}:")
        for line in str(failure.get("message", "")).splitlines():
            lines.append(f"      {printable(line)}")
    if not failures:  # a gateway from before failures were kept whole
        for key in ("error", "errors"):
            if key in detail:
                lines.append(f"    {key}: {printable(json.dumps(detail[key]))}")
    return lines


Reset = Annotated[
    str | None,
    typer.Option(
        "--reset",
        metavar="KEY",
        help="start this route's comparisons again from 0 (a route key, e.g. 'GET /users')",
        show_default=False,
    ),
]


def shadow_command(
    url: Url = None,
    token: Token = None,
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
    reset: Reset = None,
) -> None:
    """Print what shadow mode found: comparisons per route and the newest differences."""
    if reset is not None:
        with stdout_to_stderr():
            done = request_gateway("DELETE", url, f"{prefix}/shadow/{quote(reset, safe='')}", token)
        typer.echo(
            json.dumps(done, indent=2)
            if as_json
            else f"{printable(reset)}: shadow comparisons reset by {done.get('by', '?')}; "
            "counting from 0."
        )
        return
    with stdout_to_stderr():
        found = request_gateway("GET", url, f"{prefix}/shadow", token)
    typer.echo(
        json.dumps(found, indent=2) if as_json else format_shadow(found, width=output_width())
    )
