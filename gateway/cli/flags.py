"""`gateway flags list | set KEY MODE | history`, against a running gateway or its database.

gateway flags list                                        # http://127.0.0.1:8000
gateway flags set "GET /users/{user_id}" canary --percent 10 --reason "try async" \\
    --url https://gw.internal --token "$GATEWAY_ADMIN_TOKEN"
gateway flags set "GET /books/{book_id}" async --database-url postgresql://app@db/app \\
    --legacy mypkg.main:app --async mypkg.migrated:router     # the key checked on the routes
gateway flags history --database-url postgresql://app@db/app

Through a gateway the change is authenticated by a token; directly against the database the
database credentials are the authority and the history names the OS user.
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import typer

from gateway.app import Gateway
from gateway.cli.common import (
    AppDir,
    AppOption,
    AsJson,
    Async,
    Legacy,
    Prefix,
    Token,
    Url,
    Verbose,
    print_routes,
    printable,
    request_gateway,
    stdout_to_stderr,
    with_stored_modes,
)
from gateway.cli.rollout import print_canaries, rollout_command
from gateway.cli.table import output_width
from gateway.exceptions import CommandError, FlagError, GatewayError
from gateway.flags.store import SqlFlagStore
from gateway.flags.table import Flag, check_change, parse_flag
from gateway.metrics.recorder import METHODS
from gateway.modes import Mode, format_mode, mode_names
from gateway.serve.loader import AppTarget, gateway_of
from gateway.settings import Settings

__all__ = ["flags_cli"]

PERCENT_HELP = "; ".join(
    [
        f"{mode}: {mode.spec.percent_means}"
        + ("" if mode.spec.default_percent is None else f" (default {mode.spec.default_percent:g})")
        for mode in Mode
        if mode.takes_percent
    ]
    + ["0-100"]
)

flags_cli = typer.Typer(
    help="List, set and audit route modes.", no_args_is_help=True, rich_markup_mode=None
)
flags_cli.command("rollout")(rollout_command)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="work on this database directly instead of through a gateway"),
]


# -- directly against the database ---------------------------------------------------------


def _gateway(
    app: str | None, legacy: str | None, async_: list[str] | None, app_dir: str
) -> Gateway | None:
    """The app's gateway when the command names one; None when it names none."""
    if app is None and legacy is None and not async_:
        return None
    target = AppTarget.from_options(app, legacy=legacy, async_=async_, app_dir=app_dir)
    return gateway_of(target.load(), target.described)


def _note(text: str) -> None:
    typer.echo(f"note: {text}", err=True)  # stderr, so --json output stays JSON


def _check_shape(key: str, mode: str, percent: float | None) -> Flag:
    """With no app to check the key against: a method, a space and a path, nothing more."""
    method, _, path = key.partition(" ")
    if method not in METHODS or not path.startswith("/") or " " in path:
        raise CommandError(
            f"route_key: {key!r} is not a route key; expected 'METHOD /path/{{param}}' "
            f"with METHOD one of {', '.join(sorted(METHODS))}, e.g. 'GET /users/{{user_id}}'"
        )
    return parse_flag(mode, percent)


def _store(database_url: str) -> SqlFlagStore:
    schema = Settings.from_environ().flags_schema or None  # GATEWAY_FLAGS_SCHEMA applies too
    try:
        return SqlFlagStore(database_url, schema=schema)
    except ValueError as exc:
        raise CommandError(f"--database-url: {exc}") from None


async def _in_database(database_url: str, work: Any) -> Any:
    store = _store(database_url)
    try:
        await store.prepare()
        return await work(store)
    except GatewayError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise CommandError(f"database {store.masked_url}: {text[0] if text else exc!r}") from None
    finally:
        await store.aclose()


def _listed_in_database(database_url: str, gateway: Gateway | None) -> list[dict[str, Any]]:
    stored = anyio.run(_in_database, database_url, lambda store: store.load())
    if gateway is not None:
        return with_stored_modes(gateway, stored)
    _note("no --app or --legacy given: only the routes with a stored flag are listed")
    return [
        {
            "key": key,
            "implementations": ["legacy", "async"],  # only paired routes take flags
            "mode": found.flag.mode.value,
            "percent": found.flag.percent,
        }
        for key, found in sorted(stored.items())
    ]


def _set_in_database(
    database_url: str,
    gateway: Gateway | None,
    key: str,
    mode: str,
    percent: float | None,
    reason: str,
    no_judge: bool,
) -> dict[str, Any]:
    try:
        if gateway is not None:
            flag = check_change(key, mode, percent, gateway.implementations)
            default = gateway.modes.default
        else:
            flag = _check_shape(key, mode, percent)
            default = parse_flag(Settings.from_environ().default_mode)
            _note(
                f"no --app or --legacy given: {key!r} was checked for its shape only, "
                "not against the app's routes"
            )
    except FlagError as exc:
        raise CommandError(f"{exc.field}: {exc}") from None
    if no_judge:
        _note("--no-judge is recorded through a gateway only (--url); the judge decides here")
    actor = f"db:{getpass.getuser()}"

    async def work(store: Any) -> Any:
        return await store.change(key, flag, actor=actor, reason=reason, default=default)

    row: dict[str, Any] = anyio.run(_in_database, database_url, work).as_dict()
    return row


# -- printing ------------------------------------------------------------------------------


def _print_history(rows: list[dict[str, Any]]) -> None:
    if not rows:
        typer.echo("no flag changes yet")
    for row in rows:
        old = format_mode(row["old"]["mode"], row["old"]["percent"])
        new = format_mode(row["new"]["mode"], row["new"]["percent"])
        reason = f"  ({printable(row['reason'])})" if row["reason"] else ""
        route, by = printable(row["route"]), printable(row["by"])
        typer.echo(f"#{row['id']} {row['at']} {by}: {route} {old} -> {new}{reason}")


# -- commands ------------------------------------------------------------------------------


@flags_cli.command("list")
def list_(
    url: Url = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    app: AppOption = None,
    legacy: Legacy = None,
    async_: Async = None,
    app_dir: AppDir = "",
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
    verbose: Verbose = False,
) -> None:
    """List every route with its implementations and current mode.

    With --database-url and no --app / --legacy: the routes that have a stored flag.
    """
    store: dict[str, Any] = {}
    with stdout_to_stderr():
        if database_url:
            rows = _listed_in_database(database_url, _gateway(app, legacy, async_, app_dir))
        else:
            body = request_gateway("GET", url, f"{prefix}/routes", token)
            rows, store = body["routes"], body.get("store", {})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    print_routes(rows, width=output_width(), verbose=verbose)
    print_canaries(rows)
    if not store.get("up", True):
        source = "last known flags" if store.get("flags_from") == "store" else "defaults"
        typer.echo(f"note: that gateway cannot reach its flag store; it serves the {source}")


@flags_cli.command("set")
def set_(
    key: Annotated[str, typer.Argument(help='route key, e.g. "GET /users/{user_id}"')],
    mode: Annotated[str, typer.Argument(help=mode_names())],
    percent: Annotated[float | None, typer.Option(help=PERCENT_HELP)] = None,
    reason: Annotated[str, typer.Option(help="why, recorded in the history")] = "",
    url: Url = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    app: AppOption = None,
    legacy: Legacy = None,
    async_: Async = None,
    app_dir: AppDir = "",
    prefix: Prefix = "/_gateway",
    no_judge: Annotated[
        bool, typer.Option("--no-judge", help="canary: the judge leaves this canary alone")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Change one route's mode; every worker follows within moments.

    With --database-url, --app or --legacy/--async name the app whose routes the key is
    checked against; without them only the key's shape is checked.
    """
    with stdout_to_stderr():
        if database_url:
            gateway = _gateway(app, legacy, async_, app_dir)
            row = _set_in_database(database_url, gateway, key, mode, percent, reason, no_judge)
        else:
            body: dict[str, Any] = {"mode": mode, "percent": percent, "reason": reason}
            if no_judge:
                body["judge"] = False
            row = request_gateway(
                "PUT", url, f"{prefix}/routes/{quote(key, safe='')}", token, json=body
            )
    if as_json:
        typer.echo(json.dumps(row, indent=2))
    else:
        _print_history([row])


@flags_cli.command("history")
def history(
    route: Annotated[str | None, typer.Option(help="only this route key")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    url: Url = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
) -> None:
    """Show who changed which route, when, and why (newest first)."""

    async def work(store: Any) -> Any:
        return await store.history(limit=limit, route=route)

    with stdout_to_stderr():
        if database_url:
            rows = [c.as_dict() for c in anyio.run(_in_database, database_url, work)]
        else:
            params: dict[str, Any] = {"limit": limit, **({"route": route} if route else {})}
            path = f"{prefix}/history"
            rows = request_gateway("GET", url, path, token, params=params)["history"]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_history(rows)
