"""The `gateway` command: serve an app, list its routes.

gateway serve                         # the example app on 127.0.0.1:8000
gateway serve mypkg.main:app --workers 4
gateway routes
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
from typing import Annotated, Any

import typer
from fastapi import FastAPI

from gateway.exceptions import GatewayError

__all__ = ["DEFAULT_APP", "cli", "load_app", "main"]

DEFAULT_APP = "example:create_app"

cli = typer.Typer(
    name="gateway",
    help="Serve a legacy FastAPI app and its async rewrite side by side, route by route.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

AppArg = Annotated[
    str,
    typer.Argument(help="import path of the app or an app factory, as uvicorn takes it"),
]


def load_app(path: str) -> tuple[Any, bool]:
    """Import `module:attr`; return (object, is_factory). Raises typer.BadParameter."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise typer.BadParameter(f"expected 'module:attribute', e.g. {DEFAULT_APP}; got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(f"cannot import module {module_name!r}: {exc}") from None
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise typer.BadParameter(f"module {module_name!r} has no attribute {attr!r}") from None
    is_app = isinstance(target, FastAPI) or (callable(target) and hasattr(target, "router"))
    return target, not is_app


def build_app(path: str) -> FastAPI:
    target, is_factory = load_app(path)
    app = target() if is_factory else target
    if not isinstance(app, FastAPI):
        raise typer.BadParameter(f"{path} gave {type(app).__name__}, expected a FastAPI app")
    return app


@cli.command()
def serve(
    app: AppArg = DEFAULT_APP,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="bind port", min=0, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option(help="worker processes", min=1, envvar="GATEWAY_WORKERS")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run APP with uvicorn (default: the example users service)."""
    import uvicorn

    from gateway.server import prepare_serving

    target, is_factory = load_app(app)
    prepare_serving(app, workers=workers)
    _check_database(build_app(app))
    # uvicorn re-raises SIGTERM after its graceful shutdown; a clean stop should exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": log_level,
    }
    options.update(factory=is_factory, timeout_graceful_shutdown=30)
    if workers > 1:
        _serve_workers(uvicorn.Config(app, **options))
    else:
        uvicorn.run(target, **options)


def _serve_workers(config: Any) -> None:
    """uvicorn's multi-worker supervisor, but the parent stops listening on SIGTERM at once.

    Otherwise the parent's copy of the listening socket keeps accepting into the backlog
    while the workers drain, and those connections are reset when it exits.
    """
    from uvicorn.supervisors.multiprocess import Multiprocess

    class Draining(Multiprocess):
        def terminate_all(self) -> None:
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    Draining(config, sockets=[config.bind_socket()]).run()


def _check_database(built: FastAPI) -> None:
    """Fail before serving, in one line, when the gateway's database is unreachable."""
    gateway = getattr(built.state, "gateway", None)
    if gateway is not None:
        gateway.database.check()  # raises DatabaseUnreachable: main() prints one line
        gateway.database.sync_engine.dispose()


@cli.command()
def routes(
    app: AppArg = DEFAULT_APP,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List every route: key, implementations, current mode."""
    built = build_app(app)
    gateway = getattr(built.state, "gateway", None)
    if gateway is None:
        raise typer.BadParameter(f"{app} is not built by gateway.Gateway")
    rows = gateway.describe_routes()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["key"]) for r in rows), default=10)
    typer.echo(f"{'ROUTE':<{width}}  {'IMPLEMENTATIONS':<16}  MODE")
    for row in rows:
        mode = row["mode"]
        if row["percent"] is not None and mode == "canary":
            mode = f"canary {row['percent']:g}%"
        typer.echo(f"{row['key']:<{width}}  {'+'.join(row['implementations']):<16}  {mode}")
    for note in getattr(gateway, "notes", []):
        typer.echo(f"note: {note}")


def _register_subcommands() -> None:
    from gateway.cli_flags import flags_cli
    from gateway.cli_report import report_command

    cli.add_typer(flags_cli, name="flags")
    cli.command("report")(report_command)


_register_subcommands()


def main() -> None:
    """Entry point of the `gateway` command; gateway errors become one line and exit 1."""
    try:
        cli()
    except GatewayError as exc:
        typer.echo(f"gateway: {exc}", err=True)
        sys.exit(1)
