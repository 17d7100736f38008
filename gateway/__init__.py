"""gateway: serve a legacy sync FastAPI app and its async rewrite side by side, route by route.

from gateway import Gateway, SyncDB, AsyncDB

gw = Gateway()                          # Gateway(settings, store=MemoryFlagStore()) in tests
gw.include_legacy(legacy_app)           # the legacy FastAPI app, unchanged
gw.include_async(migrated_router)       # async def routes on AsyncDB
app = gw.build()

`queries` holds helpers for migrated code (`await queries.first(db, stmt)` keeps LIMIT 1);
`keep_fastapi_handler` keeps a legacy route on FastAPI's own handler; `differs_from_legacy`
accepts a twin's deliberate differences from its legacy route; `add_check` adds a readiness
check.
"""

from gateway import queries
from gateway._version import __version__ as __version__
from gateway.admin.health import add_check
from gateway.app import Gateway
from gateway.db.database import AsyncDB, Database, SyncDB, get_async_session, get_session
from gateway.exceptions import (
    ContractError,
    DatabaseUnreachable,
    FlagError,
    GatewayError,
    RouteError,
    RouteKindError,
    SettingsError,
    UnknownModeError,
    UnknownRouteError,
)
from gateway.flags.store import FlagStore, MemoryFlagStore, SqlFlagStore
from gateway.flags.table import Flag, ModeTable
from gateway.legacy.plan import keep_fastapi_handler
from gateway.modes import Implementation, Mode
from gateway.routing.contract import differs_from_legacy
from gateway.settings import Settings
from gateway.shadow.runner import keep_out_of_shadow

__all__ = [
    "AsyncDB",
    "ContractError",
    "Database",
    "DatabaseUnreachable",
    "Flag",
    "FlagError",
    "FlagStore",
    "Gateway",
    "GatewayError",
    "Implementation",
    "MemoryFlagStore",
    "Mode",
    "ModeTable",
    "RouteError",
    "RouteKindError",
    "Settings",
    "SettingsError",
    "SqlFlagStore",
    "SyncDB",
    "UnknownModeError",
    "UnknownRouteError",
    "add_check",
    "differs_from_legacy",
    "get_async_session",
    "get_session",
    "keep_fastapi_handler",
    "keep_out_of_shadow",
    "queries",
]
