"""`gateway flags list | set KEY MODE | history`, against a running gateway or its database.

gateway flags list                                        # http://127.0.0.1:8000
gateway flags set "GET /users/{user_id}" canary --percent 10 --reason "try async" \\
    --url https://gw.internal --token "$GATEWAY_ADMIN_TOKEN"
gateway flags history --database-url postgresql://app@db/app --app mypkg.main:create_app

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
from gateway.cli_common import (
    AppDir,
    AppOption,
    AsJson,
    Prefix,
    Token,
    Url,
    format_mode,
    print_routes,
    request_gateway,
    with_stored_modes,
)
from gateway.exceptions import CommandError, FlagError, GatewayError
from gateway.flag_store import SqlFlagStore
from gateway.flags import check_change
from gateway.loader import DEFAULT_APP, AppTarget, gateway_of

__all__ = ["flags_cli"]

flags_cli = typer.Typer(help="List, set and audit route modes.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="work on this database directly instead of through a gateway"),
]


# -- directly against the database ---------------------------------------------------------


def _gateway(app: str, app_dir: str) -> Gateway:
    return gateway_of(AppTarget(app, app_dir=app_dir).load(), app)


def _store(database_url: str) -> SqlFlagStore:
    try:
        return SqlFlagStore(database_url)
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


# -- printing ------------------------------------------------------------------------------


def _print_history(rows: list[dict[str, Any]]) -> None:
    if not rows:
        typer.echo("no flag changes yet")
    for row in rows:
        old = format_mode(row["old"]["mode"], row["old"]["percent"])
        new = format_mode(row["new"]["mode"], row["new"]["percent"])
        reason = f"  ({row['reason']})" if row["reason"] else ""
        typer.echo(f"#{row['id']} {row['at']} {row['by']}: {row['route']} {old} -> {new}{reason}")


# -- commands ------------------------------------------------------------------------------


@flags_cli.command("list")
def list_(
    url: Url = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    app: AppOption = DEFAULT_APP,
    app_dir: AppDir = "",
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
) -> None:
    """List every route with its implementations and current mode."""
    store: dict[str, Any] = {}
    if database_url:
        gateway = _gateway(app, app_dir)
        rows = with_stored_modes(
            gateway, anyio.run(_in_database, database_url, lambda store: store.load())
        )
    else:
        body = request_gateway("GET", url, f"{prefix}/routes", token)
        rows, store = body["routes"], body.get("store", {})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    print_routes(rows)
    if not store.get("up", True):
        source = "last known flags" if store.get("flags_from") == "store" else "defaults"
        typer.echo(f"note: that gateway cannot reach its flag store; it serves the {source}")


@flags_cli.command("set")
def set_(
    key: Annotated[str, typer.Argument(help='route key, e.g. "GET /users/{user_id}"')],
    mode: Annotated[str, typer.Argument(help="legacy, async or canary")],
    percent: Annotated[
        float | None, typer.Option(help="canary: share of requests served by async, 0-100")
    ] = None,
    reason: Annotated[str, typer.Option(help="why, recorded in the history")] = "",
    url: Url = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    app: AppOption = DEFAULT_APP,
    app_dir: AppDir = "",
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
) -> None:
    """Change one route's mode; every worker follows within moments."""
    if database_url:
        gateway = _gateway(app, app_dir)
        routes = {k: e.implementations for k, e in gateway.entries.items()}
        try:
            flag = check_change(key, mode, percent, routes)
        except FlagError as exc:
            raise CommandError(f"{exc.field}: {exc}") from None
        actor = f"db:{getpass.getuser()}"

        async def work(store: Any) -> Any:
            return await store.change(
                key, flag, actor=actor, reason=reason, default=gateway.modes.default
            )

        row = anyio.run(_in_database, database_url, work).as_dict()
    else:
        body = {"mode": mode, "percent": percent, "reason": reason}
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
    if database_url:

        async def work(store: Any) -> Any:
            return await store.history(limit=limit, route=route)

        rows = [c.as_dict() for c in anyio.run(_in_database, database_url, work)]
    else:
        params: dict[str, Any] = {"limit": limit}
        if route:
            params["route"] = route
        rows = request_gateway("GET", url, f"{prefix}/history", token, params=params)["history"]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_history(rows)
