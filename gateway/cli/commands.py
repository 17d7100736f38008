"""The `gateway` command: serve an app, list its routes, flip them, report on them.

gateway serve                               # the example app on 127.0.0.1:8000
gateway serve mypkg.gw:app --workers 4      # uvicorn's options, under uvicorn's names
gateway serve --legacy mypkg.main:app --async mypkg.migrated:router   # no module needed
gateway routes [--url URL]                  # every route and the mode it is served in
gateway flags set KEY MODE | gateway report

Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import anyio
import typer
from typer.core import TyperGroup

from gateway.cli.common import (
    AppDir,
    AsJson,
    Async,
    Legacy,
    Prefix,
    Token,
    Url,
    Verbose,
    print_routes,
    read_stored_flags,
    request_gateway,
    stdout_to_stderr,
    with_stored_modes,
)
from gateway.cli.flags import flags_cli
from gateway.cli.report import report_command
from gateway.cli.shadow import shadow_command
from gateway.cli.table import output_width
from gateway.cli.translate import translate_command
from gateway.exceptions import CommandError, ContractError, GatewayError
from gateway.serve.loader import DEFAULT_APP, AppTarget, gateway_of

__all__ = ["cli", "main"]


class _OneLineErrors(TyperGroup):
    """Turns every error of every subcommand, bad command lines included, into one line.

    Click's errors are recognised by shape (`format_message`, `exit_code`), not class:
    typer ships its own private copy of click since 0.24 and used click itself before.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except Exception as exc:
            _fail(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    clicks = callable(getattr(exc, "format_message", None)) and hasattr(exc, "exit_code")
    # A group called bare shows its help, as typer does (typer's rich_utils also tells this
    # error by its name).
    if type(exc).__name__ == "NoArgsIsHelpError" or not (clicks or isinstance(exc, GatewayError)):
        raise exc
    text = exc.format_message() if clicks else str(exc)  # type: ignore[attr-defined]
    context = getattr(exc, "ctx", None)  # usage errors know the command they are about
    if context is not None:
        message = f"{context.command_path}: {text} (see '{context.command_path} --help')"
    else:
        message = f"gateway: {text}"
    if isinstance(exc, ContractError):  # a list of routes and fixes: one item a line
        typer.echo(message, err=True)
    else:
        typer.echo(" ".join(message.split()), err=True)  # one line, even for multi-line ones
    raise typer.Exit(1)


cli = typer.Typer(
    name="gateway",
    cls=_OneLineErrors,
    help="Serve a legacy FastAPI app and its async rewrite side by side, route by route.",
    no_args_is_help=True,
    add_completion=False,
    # Click's plain help: typer's rich panels squeeze option help into a strip of ~15
    # characters at 80 columns; click's puts long option names on a line of their own.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
cli.add_typer(flags_cli, name="flags")
cli.command("report")(report_command)
cli.command("shadow")(shadow_command)
cli.command("translate")(translate_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


def version_line() -> str:
    """One line of versions: 'gateway 0.1.0 (uvicorn 0.54.0, fastapi 0.165.0, ...) on CPython
    3.11.2 Linux', what a bug report needs."""
    parts = []
    for name in ("gateway", "uvicorn", "fastapi", "sqlalchemy"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return (
        f"{parts[0]} ({', '.join(parts[1:])}) on {platform.python_implementation()} "
        f"{platform.python_version()} {platform.system()}"
    )


Version = Annotated[
    bool,
    typer.Option(
        "--version", callback=_print_version, is_eager=True, help="print versions and exit"
    ),
]


@cli.callback()
def _root(show_version: Version = False) -> None:
    """Serve a legacy FastAPI app and its async rewrite side by side, route by route."""


AppArg = Annotated[
    str | None,
    typer.Argument(
        help=f"import path of the gateway app or its factory, e.g. mypkg.gw:app "
        f"(default {DEFAULT_APP}; or use --legacy and --async)",
        show_default=False,
    ),
]


@cli.command()
def serve(
    app: AppArg = None,
    legacy: Legacy = None,
    async_: Async = None,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="bind port", min=0, max=65535)] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            help="worker processes (default: $WEB_CONCURRENCY, else 1)",
            min=1,
            envvar="GATEWAY_WORKERS",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    app_dir: AppDir = "",
    factory: Annotated[
        bool,
        typer.Option("--factory", help="call APP to get the app (a callable is called anyway)"),
    ] = False,
    reload: Annotated[
        bool, typer.Option("--reload", help="restart when files change (development)")
    ] = False,
    reload_dir: Annotated[
        list[str] | None, typer.Option(help="watch this directory (default: the current one)")
    ] = None,
    root_path: Annotated[str, typer.Option(help="ASGI root_path when served below a path")] = "",
    proxy_headers: Annotated[
        bool,
        typer.Option(
            help="trust X-Forwarded-* headers from --forwarded-allow-ips (on by default)",
            show_default=False,
        ),
    ] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="comma-separated IPs or networks trusted with proxy headers, '*' for all "
            "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1)",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
    env_file: Annotated[
        Path | None, typer.Option(help="read environment variables from this file first")
    ] = None,
    show_version: Version = False,
) -> None:
    """Serve APP with uvicorn (default: the example users service); options as uvicorn's.

    Without a composition module: gateway serve --legacy mypkg.main:app --async
    mypkg.migrated:router (each worker builds it once).
    """
    from gateway.serve import server

    if env_file is not None:
        _load_env_file(env_file)
    workers = workers or _workers_from_environment()
    target = AppTarget.from_options(
        app, legacy=legacy, async_=async_, factory=True if factory else None, app_dir=app_dir
    )
    server.run(
        target,
        workers=workers,
        reload=reload,
        reload_dirs=reload_dir or None,
        host=host,
        port=port,
        log_level=log_level,
        root_path=root_path,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=access_log,
    )


def _load_env_file(path: Path) -> None:
    from dotenv import load_dotenv

    if not path.is_file():
        raise CommandError(f"--env-file {str(path)!r} is not a file; expected a KEY=value file")
    load_dotenv(path)  # as uvicorn: variables already set win over the file


def _workers_from_environment() -> int:
    # GATEWAY_WORKERS is read by the option itself; here the ones an --env-file may set.
    for name in ("GATEWAY_WORKERS", "WEB_CONCURRENCY"):
        value = os.environ.get(name, "").strip()
        if value:
            if not value.isdigit() or int(value) < 1:
                raise CommandError(f"{name}={value!r} is invalid; expected a whole number >= 1")
            return int(value)
    return 1


@cli.command()
def routes(
    app: AppArg = None,
    legacy: Legacy = None,
    async_: Async = None,
    app_dir: AppDir = "",
    url: Url = None,
    token: Token = None,
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
    verbose: Verbose = False,
) -> None:
    """List every route: key, implementations, kind and the mode it is served in.

    The mode is the stored one: from the flag store in the app's database, or, with
    --url, what that running gateway serves.
    """
    notes: list[str] = []
    with stdout_to_stderr():  # the app's prints and stdout logs: not the table, not the JSON
        if url is not None:
            rows = request_gateway("GET", url, f"{prefix}/routes", token)["routes"]
        else:
            target = AppTarget.from_options(app, legacy=legacy, async_=async_, app_dir=app_dir)
            gateway = gateway_of(target.load(), target.described)
            rows = with_stored_modes(gateway, anyio.run(read_stored_flags, gateway))
            notes = list(gateway.notes)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    print_routes(rows, width=output_width(), verbose=verbose)
    for note in notes:
        typer.echo(f"note: {note}")


def main() -> None:
    """Entry point of the `gateway` command."""
    cli()
