"""The optional flags file (TOML, settings.flags_file) that seeds flags at startup.

    # flags.toml, kept in git next to the deployment
    [routes]
    "GET /users/{user_id}" = "async"
    "GET /users" = { mode = "canary", percent = 10 }

A seed only fills a route that has no stored flag yet: a flip made later through the admin
API or the CLI wins over the file, and the history names "flags-file" for seeded rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway._compat import tomllib
from gateway.exceptions import FlagError, SettingsError, UnknownRouteError
from gateway.flags.table import Flag, check_change
from gateway.modes import Implementation

__all__ = ["read_flags_file"]

_EXAMPLE = (
    '[routes]\n"GET /users" = "async"\n"GET /users/{user_id}" = { mode = "canary", percent = 10 }'
)


def read_flags_file(
    path: str | Path, routes: Mapping[str, Sequence[Implementation]]
) -> dict[str, Flag]:
    """Read and check the file; raise SettingsError naming the file, the key and the problem."""
    where = f"GATEWAY_FLAGS_FILE={str(path)!r}"
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(f"{where} cannot be read: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where} is not valid TOML: {exc}.") from None
    table = data.get("routes")
    if not isinstance(table, dict) or set(data) - {"routes"}:
        raise SettingsError(f"{where}: expected one [routes] table, e.g.\n{_EXAMPLE}")
    return {key: _flag(where, key, value, routes) for key, value in table.items()}


def _flag(where: str, key: str, value: Any, routes: Mapping[str, Sequence[Implementation]]) -> Flag:
    if isinstance(value, str):
        mode, percent = value, None
    elif isinstance(value, dict) and isinstance(value.get("mode"), str):
        unknown = set(value) - {"mode", "percent"}
        if unknown:
            raise SettingsError(
                f"{where}: route {key!r} has unknown fields {sorted(unknown)}; expected mode "
                "and percent."
            )
        mode, percent = value["mode"], value.get("percent")
    else:
        raise SettingsError(
            f"{where}: route {key!r} = {value!r}; expected a mode name or "
            '{ mode = "canary", percent = 10 }.'
        )
    try:
        return check_change(key, mode, percent, routes)
    except (FlagError, UnknownRouteError) as exc:
        raise SettingsError(f"{where}: {exc}") from None
