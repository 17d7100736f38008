"""`gateway flags ...` (owned by the flags work; placeholder)."""

from __future__ import annotations

import typer

__all__ = ["flags_cli"]

flags_cli = typer.Typer(help="List, set and audit route modes.", no_args_is_help=True)
