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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import httpx
import typer

from gateway.exceptions import FlagError, GatewayError, UnknownRouteError

__all__ = ["flags_cli"]

DEFAULT_URL = "http://127.0.0.1:8000"

flags_cli = typer.Typer(help="List, set and audit route modes.", no_args_is_help=True)

Url = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="GATEWAY_ADMIN_URL", help=f"a running gateway (default {DEFAULT_URL})"
    ),
]
Token = Annotated[
    str | None,
    typer.Option(envvar="GATEWAY_ADMIN_TOKEN", help="admin bearer token", show_default=False),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="work on this database directly instead of through a gateway"),
]
App = Annotated[
    str,
    typer.Option(help="with --database-url: the app whose routes to check keys against"),
]
Prefix = Annotated[str, typer.Option(help="the gateway's admin prefix")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


class _Failure(Exception):
    """An error to print on one line before exiting 1."""


@contextmanager
def _failures() -> Iterator[None]:
    try:
        yield
    except (_Failure, GatewayError) as exc:
        typer.echo(f"gateway flags: {exc}", err=True)
        raise typer.Exit(1) from None


# -- through a running gateway -------------------------------------------------------------


def _request(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, headers=headers, timeout=30.0, **kwargs)
    except httpx.TransportError as exc:
        raise _Failure(f"cannot reach the gateway at {url}: {exc}") from None
    if response.status_code >= 400:
        hint = " (pass --token or set GATEWAY_ADMIN_TOKEN)" if response.status_code == 401 else ""
        raise _Failure(f"{response.status_code} from {url}: {_detail(response)}{hint}")
    return response.json()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # validation errors
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    return str(detail)


# -- directly against the database ---------------------------------------------------------


def _routes_of(app_path: str) -> Any:
    from gateway.cli import build_app

    built = build_app(app_path)
    gateway = getattr(built.state, "gateway", None)
    if gateway is None:
        raise _Failure(f"{app_path} is not built by gateway.Gateway")
    return gateway


def _store(database_url: str) -> Any:
    from gateway.flag_store import SqlFlagStore

    try:
        return SqlFlagStore(database_url)
    except ValueError as exc:
        raise _Failure(f"--database-url: {exc}") from None


async def _in_database(database_url: str, work: Any) -> Any:
    store = _store(database_url)
    try:
        await store.prepare()
        return await work(store)
    except (GatewayError, _Failure):
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise _Failure(f"database {store.masked_url}: {text[0] if text else exc!r}") from None
    finally:
        await store.aclose()


# -- printing ------------------------------------------------------------------------------


def _mode(mode: str, percent: float | None) -> str:
    return f"canary {percent:g}%" if mode == "canary" and percent is not None else mode


def _print_routes(rows: list[dict[str, Any]]) -> None:
    width = max((len(r["key"]) for r in rows), default=10)
    typer.echo(f"{'ROUTE':<{width}}  {'IMPLEMENTATIONS':<16}  MODE")
    for row in rows:
        sides = "+".join(row["implementations"])
        typer.echo(f"{row['key']:<{width}}  {sides:<16}  {_mode(row['mode'], row['percent'])}")


def _print_history(rows: list[dict[str, Any]]) -> None:
    if not rows:
        typer.echo("no flag changes yet")
    for row in rows:
        old = _mode(row["old"]["mode"], row["old"]["percent"])
        new = _mode(row["new"]["mode"], row["new"]["percent"])
        reason = f"  ({row['reason']})" if row["reason"] else ""
        typer.echo(f"#{row['id']} {row['at']} {row['by']}: {row['route']} {old} -> {new}{reason}")


# -- commands ------------------------------------------------------------------------------


@flags_cli.command("list")
def list_(
    url: Url = None,
    token: Token = None,
    database_url: DatabaseUrl = None,
    app: App = "example:create_app",
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
) -> None:
    """List every route with its implementations and current mode."""
    with _failures():
        if database_url:
            gateway = _routes_of(app)
            loaded = anyio.run(_in_database, database_url, lambda store: store.load())
            rows = gateway.describe_routes()
            for row in rows:
                stored = loaded.get(row["key"])
                if row["paired"]:
                    flag = stored.flag if stored else gateway.modes.default
                    row["mode"], row["percent"] = flag.mode.value, flag.percent
        else:
            base = (url or DEFAULT_URL).rstrip("/")
            body = _request("GET", f"{base}{prefix}/routes", token)
            rows, store = body["routes"], body.get("store", {})
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        _print_routes(rows)
        if not database_url and not store.get("up", True):
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
    app: App = "example:create_app",
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
) -> None:
    """Change one route's mode; every worker follows within moments."""
    with _failures():
        if database_url:
            from gateway.flags import check_change

            gateway = _routes_of(app)
            routes = {k: e.implementations for k, e in gateway.entries.items()}
            try:
                flag = check_change(key, mode, percent, routes)
            except UnknownRouteError as exc:
                raise _Failure(str(exc)) from None
            except FlagError as exc:
                raise _Failure(f"{exc.field}: {exc}") from None
            actor = f"db:{getpass.getuser()}"

            async def work(store: Any) -> Any:
                return await store.change(
                    key, flag, actor=actor, reason=reason, default=gateway.modes.default
                )

            row = anyio.run(_in_database, database_url, work).as_dict()
        else:
            base = (url or DEFAULT_URL).rstrip("/")
            body = {"mode": mode, "percent": percent, "reason": reason}
            target = f"{base}{prefix}/routes/{quote(key, safe='')}"
            row = _request("PUT", target, token, json=body)
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
    with _failures():
        if database_url:

            async def work(store: Any) -> Any:
                return await store.history(limit=limit, route=route)

            rows = [c.as_dict() for c in anyio.run(_in_database, database_url, work)]
        else:
            base = (url or DEFAULT_URL).rstrip("/")
            params: dict[str, Any] = {"limit": limit}
            if route:
                params["route"] = route
            rows = _request("GET", f"{base}{prefix}/history", token, params=params)["history"]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            _print_history(rows)
