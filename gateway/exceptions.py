"""Every error the gateway raises on purpose.

GatewayError
 ├── SettingsError          a GATEWAY_* setting has a value we cannot use
 ├── DatabaseUnreachable    an engine could not connect at startup
 ├── RouteError             a route cannot be mounted as given
 │    ├── RouteKindError    a legacy route is not `def`, or an async one not `async def`
 │    └── ContractError     an async twin drops a guard or a required input of its legacy route
 ├── UnknownRouteError      a route key that names no route (lists the closest keys)
 ├── FlagError              a mode or percentage that is not accepted
 │    └── UnknownModeError  a mode name that is not one of the valid ones
 ├── AppLoadError           the app a command names cannot be imported, or is no gateway
 ├── ShadowEscape           a twin in shadow mode tried to commit or leave its transaction
 └── CommandError           a `gateway` command cannot do what it was asked
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AppLoadError",
    "CommandError",
    "ContractError",
    "DatabaseUnreachable",
    "FlagError",
    "GatewayError",
    "RouteError",
    "RouteKindError",
    "SettingsError",
    "ShadowEscape",
    "UnknownModeError",
    "UnknownRouteError",
]


class GatewayError(Exception):
    """Base class: catch this to handle any error the gateway raises on purpose."""


class SettingsError(GatewayError, ValueError):
    """A GATEWAY_* setting is invalid; the message names it, its value and what is accepted."""


class DatabaseUnreachable(GatewayError):
    """The database could not be reached at startup; the URL in the message is masked."""


class RouteError(GatewayError):
    """A route cannot be mounted as given."""


class RouteKindError(RouteError, TypeError):
    """A legacy route is not a plain `def`, or a migrated route is not `async def`."""


class ContractError(RouteError):
    """Async twins that drop a guard or a required input of their legacy route; the message
    names each route, what it lacks and the fix (gateway.routing.contract)."""


class UnknownRouteError(GatewayError, LookupError):
    """A route key names no route. `.suggestions` holds the closest known keys."""

    def __init__(self, key: str, known: Iterable[str]) -> None:
        known = list(known)
        self.key = key
        self.suggestions = closest(key, known)
        hint = (
            f" Did you mean {', '.join(repr(s) for s in self.suggestions)}?"
            if self.suggestions
            else f" Known keys: {', '.join(sorted(known)[:10]) or '(none)'}."
        )
        super().__init__(f"No route with key {key!r}.{hint}")


class FlagError(GatewayError, ValueError):
    """A flag change that is not accepted; `.field` names the offending field."""

    def __init__(self, message: str, *, field: str = "mode") -> None:
        self.field = field
        super().__init__(message)


class UnknownModeError(FlagError):
    """A mode name that is not one of the valid ones."""


class AppLoadError(GatewayError):
    """An app path ('module:attribute') that cannot be imported, or that is not a gateway."""


class ShadowEscape(GatewayError):
    """Raised in a twin running in shadow mode that tried to commit, end its transaction or
    open a connection of its own (gateway.db.isolation); the attempt is reported as
    `escaped`."""


class CommandError(GatewayError):
    """A `gateway` command failed (a gateway unreachable, a request refused); one line."""


def closest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates most like `word`, best first (case-insensitive)."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def first_line(exc: BaseException) -> str:
    """An exception's message in one line (its first), or its type name when it has none.

    Driver errors carry the SQL and a hint on later lines; logs and 503 bodies want one.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
