"""`gateway flags rollout KEY --steps 1,5,25,50,100 --hold 10m`: a progressive rollout.

gateway flags rollout "GET /users/{user_id}" --steps 1,5,25,50,100 --hold 10m
gateway flags rollout "GET /users/{user_id}" --stop          # stays where it is

The route goes to the first step at once; the gateway's judge moves it up one step each time
it has held the step for --hold with enough traffic in both arms and no regression, and rolls
it back to legacy (ending the rollout) on one. Progress: `gateway flags list`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import quote

import typer

from gateway.canary.rollout import RolloutPlan
from gateway.cli.common import AsJson, Prefix, Token, Url, request_gateway, stdout_to_stderr
from gateway.exceptions import CommandError
from gateway.modes import format_mode

__all__ = ["print_canaries", "rollout_command"]


def rollout_command(
    key: Annotated[str, typer.Argument(help='route key, e.g. "GET /users/{user_id}"')],
    steps: Annotated[str, typer.Option(help="canary percentages, ending at 100")] = "1,5,25,50,100",
    hold: Annotated[str, typer.Option(help="how long each step holds: 600, 90s, 10m, 1h")] = "10m",
    reason: Annotated[str, typer.Option(help="why, recorded in the history")] = "",
    stop: Annotated[bool, typer.Option("--stop", help="stop the rollout where it is")] = False,
    url: Url = None,
    token: Token = None,
    prefix: Prefix = "/_gateway",
    as_json: AsJson = False,
) -> None:
    """Walk a route from canary to async step by step, judged at every step."""
    path = f"{prefix}/rollouts/{quote(key, safe='')}"
    if stop:
        with stdout_to_stderr():
            body = request_gateway("DELETE", url, path, token)
        typer.echo(json.dumps(body, indent=2) if as_json else f"{key}: {body['canary']['note']}")
        return
    try:
        RolloutPlan.parse(steps, hold)  # the gateway checks again; this fails sooner
    except ValueError as exc:
        raise CommandError(
            f"--{'hold' if str(exc).startswith('hold') else 'steps'}: {exc}"
        ) from None
    with stdout_to_stderr():
        body = request_gateway(
            "PUT", url, path, token, json={"steps": steps, "hold": hold, "reason": reason}
        )
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    change = body["change"]
    new = format_mode(change["new"]["mode"], change["new"]["percent"])
    typer.echo(
        f"#{change['id']} {change['at']} {change['by']}: {key} -> {new}  ({change['reason']})"
    )


def print_canaries(rows: Sequence[Mapping[str, Any]]) -> None:
    """One line per route the judge keeps a state for: status, rollout step, why it waits."""
    for row in rows:
        canary = row.get("canary")
        if not canary:
            continue
        rollout = canary.get("rollout")
        step = ""
        if rollout:
            step = f" step {rollout['step']}/{len(rollout['steps'])} at {rollout['percent']:g}%"
        typer.echo(f"judge: {row['key']} {canary['status']}{step}: {canary['note']}")
