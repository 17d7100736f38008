"""What every `gateway` command shares: its options, reading a running gateway, the route table.

Every command that reads a gateway takes `--url` (or GATEWAY_ADMIN_URL) and `--token` (or
GATEWAY_ADMIN_TOKEN); every command that needs the app takes APP / `--app` and
`--app-dir`. Failures raise CommandError, which the `gateway` command prints in one line.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from sqlalchemy.engine import make_url

from gateway.app import Gateway
from gateway.cli.table import table_lines
from gateway.exceptions import CommandError, first_line
from gateway.flags.store import SqlFlagStore, StoredFlag
from gateway.modes import format_mode
from gateway.naming import by_reason

__all__ = [
    "DEFAULT_URL",
    "AppDir",
    "AppOption",
    "AsJson",
    "Async",
    "Legacy",
    "Prefix",
    "Token",
    "Url",
    "Verbose",
    "print_routes",
    "printable",
    "read_stored_flags",
    "request_gateway",
    "stdout_to_stderr",
    "with_stored_modes",
]

DEFAULT_URL = "http://127.0.0.1:8000"

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="GATEWAY_ADMIN_URL",
        help=f"a running gateway (default {DEFAULT_URL})",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(envvar="GATEWAY_ADMIN_TOKEN", help="admin bearer token", show_default=False),
]
Prefix = Annotated[str, typer.Option(help="the gateway's admin prefix")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
AppOption = Annotated[
    str | None,
    typer.Option("--app", help="import path of the gateway app or its factory", show_default=False),
]
Legacy = Annotated[
    str | None,
    typer.Option(
        "--legacy",
        help="no composition module: mount this legacy FastAPI app (or APIRouter) as it is",
        show_default=False,
    ),
]
Async = Annotated[
    list[str] | None,
    typer.Option(
        "--async",
        help="with --legacy: mount this APIRouter (or FastAPI app's routes) of migrated "
        "async def routes; repeat for several",
        show_default=False,
    ),
]
AppDir = Annotated[
    str,
    typer.Option(help="look for the app's module in this directory (default: the current one)"),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="a note for each route on FastAPI's own handler, not per reason"
    ),
]


def request_gateway(
    method: str, base: str | None, path: str, token: str | None, **kwargs: Any
) -> Any:
    """One admin request to a running gateway; its JSON, or CommandError in one line."""
    url = (base or DEFAULT_URL).rstrip("/") + path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Plain http needs no CA bundle, whose loading is most of a flip's time on a busy host.
    verify = not url.startswith("http://")
    try:
        response = httpx.request(
            method, url, headers=headers, timeout=30.0, verify=verify, **kwargs
        )
    except httpx.TransportError as exc:
        raise CommandError(f"cannot reach the gateway at {url}: {exc}") from None
    if response.status_code >= 400:
        hint = " (pass --token or set GATEWAY_ADMIN_TOKEN)" if response.status_code == 401 else ""
        raise CommandError(
            f"{url} answered {response.status_code}, expected 200: {_detail(response)}{hint}"
        )
    try:
        return response.json()
    except ValueError:
        raise CommandError(
            f"{url} answered {response.headers.get('content-type', 'no content type')}, "
            "expected JSON: is that a gateway, with this --prefix?"
        ) from None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # validation errors
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    return str(detail)


def print_routes(
    rows: Sequence[Mapping[str, Any]], *, width: int | None = None, verbose: bool = False
) -> None:
    """The route table of `gateway routes` and `gateway flags list` (with a KIND column when
    the rows say each side's kind, a CONTRACT column when a twin differs from its legacy
    route), `width` columns wide (None: no limit) with every key whole; then each contract
    difference, and why routes run on FastAPI's own handler: a note per reason with its
    count, or with `verbose` a note per route."""
    kinds = [_per_side(row.get("kinds", row.get("kind"))) for row in rows]
    contracts = [_contract_cell(row.get("contract")) for row in rows]
    header = [
        "ROUTE",
        "IMPLEMENTATIONS",
        *(["KIND"] if any(kinds) else []),
        "MODE",
        *(["CONTRACT"] if any(contracts) else []),
    ]
    cells = [
        [
            row["key"],
            "+".join(row["implementations"]),
            *([kind] if any(kinds) else []),
            format_mode(row["mode"], row.get("percent")),
            *([contract] if any(contracts) else []),
        ]
        for row, kind, contract in zip(rows, kinds, contracts, strict=True)
    ]
    for line in table_lines(header, cells, width=width):
        typer.echo(line)
    for line in _contract_notes(rows):
        typer.echo(line)
    for line in _fallback_notes(rows, verbose):
        typer.echo(line)
    for line in _blocking_notes(rows):
        typer.echo(line)


def _blocking_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A warning per route whose `async def` code takes a sync Session (it blocks the loop)."""
    return [
        f"warning: {row['key']} ({side}): {', '.join(names)} is async def and takes a sync "
        "Session: each query blocks the event loop and every request of the worker; make it "
        "a def, or use the async session"
        for row in rows
        for side, names in (row.get("blocks_loop") or {}).items()
    ]


def _contract_cell(contract: Mapping[str, Any] | None) -> str:
    if not contract or contract.get("status") == "same":
        return ""
    if contract["status"] == "warnings":
        count = len(contract["differences"])
        return f"{count} warning{'s' if count > 1 else ''}"
    return str(contract["status"])


def _contract_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    notes = []
    for row in rows:
        contract = row.get("contract") or {}
        accepted = contract.get("accepted")
        for difference in contract.get("differences", ()):
            if accepted:
                notes.append(f"accepted: {row['key']} ({accepted}): {difference['message']}")
            else:
                fix = f" (fix: {difference['fix']})" if difference.get("fix") else ""
                notes.append(
                    f"{difference['severity']}: {row['key']}: {difference['message']}{fix}"
                )
    return notes


def _fallback_notes(rows: Sequence[Mapping[str, Any]], verbose: bool) -> list[str]:
    reasons = [(row["key"], why) for row in rows if (why := _per_side(row.get("fallback")))]
    if verbose:
        return [f"note: {key} runs on FastAPI's own handler: {why}" for key, why in reasons]
    notes = [
        f"note: {keys[0]} runs on FastAPI's own handler: {why}"
        if len(keys) == 1
        else f"note: {len(keys)} routes run on FastAPI's own handler: {why}"
        for why, keys in by_reason(reasons)
    ]
    if len(notes) < len(reasons):
        notes.append("note: --verbose names each route on FastAPI's own handler and why")
    return notes


def _per_side(value: Any) -> str:
    # One value per route, or one per implementation ({"legacy": "def", "async": "async def"}).
    if isinstance(value, Mapping):
        return " / ".join(str(v) for v in value.values() if v)
    return str(value) if value else ""


def with_stored_modes(gateway: Gateway, stored: dict[str, StoredFlag]) -> list[dict[str, Any]]:
    """describe_routes() with each paired route's stored mode (the default when none)."""
    rows = gateway.describe_routes()
    for row in rows:
        if row["paired"]:
            found = stored.get(row["key"])
            flag = found.flag if found else gateway.modes.default
            row["mode"], row["percent"] = flag.mode.value, flag.percent
    return rows


async def read_stored_flags(gateway: Gateway) -> dict[str, StoredFlag]:
    """The flags stored in the gateway's database, read without creating anything there:
    no SQLite file that is not there yet, no tables that are not there yet."""
    url = gateway.settings.effective_flags_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return {}
    store = SqlFlagStore.from_settings(gateway.settings)
    try:
        return await store.load() if await store.exists() else {}
    except Exception as exc:
        raise CommandError(
            f"cannot read the flag store at {store.where}: {first_line(exc)} "
            "(or pass --url to ask a running gateway)"
        ) from None
    finally:
        await store.aclose()


def printable(text: Any) -> str:
    """Control characters escaped: a stored reason, key or path never rewrites the terminal."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While a command works (imports and builds an app, reads a store or a gateway): what
    is printed, or logged by a handler writing to stdout, goes to stderr instead, so stdout
    holds the command's own output and nothing else: `--json` stays JSON.

    with stdout_to_stderr():
        rows = gateway_of(target.load()).describe_routes()
    typer.echo(json.dumps(rows))
    """
    # Handlers made while it lasts bind to sys.stdout, which is stderr then; those made
    # before are pointed at stderr for as long as it lasts.
    stdout = {id(stream) for stream in (sys.stdout, sys.__stdout__) if stream is not None}
    moved = {h: h.stream for h in _stream_handlers() if id(h.stream) in stdout}
    for handler in moved:
        handler.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler, stream in moved.items():
            handler.setStream(stream)


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
