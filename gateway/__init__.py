"""gateway: serve a legacy sync FastAPI app and its async rewrite side by side, route by route.

from gateway import Gateway, SyncDB, AsyncDB

gw = Gateway()                          # Gateway(settings, store=MemoryFlagStore()) in tests
gw.include_legacy(legacy_app)           # the legacy FastAPI app, unchanged
gw.include_async(migrated_router)       # async def routes on AsyncDB
app = gw.build()

`queries` holds helpers for migrated code (`await queries.first(db, stmt)` keeps LIMIT 1);
`keep_fastapi_handler` keeps a legacy route on FastAPI's own handler; `add_check` adds a
readiness check.
"""

from gateway import queries
from gateway.app import Gateway
from gateway.database import AsyncDB, Database, SyncDB, get_async_session, get_session
from gateway.exceptions import (
    DatabaseUnreachable,
    FlagError,
    GatewayError,
    RouteError,
    RouteKindError,
    SettingsError,
    UnknownModeError,
    UnknownRouteError,
)
from gateway.flag_store import FlagStore, MemoryFlagStore, SqlFlagStore
from gateway.flags import Flag, Implementation, Mode, ModeTable
from gateway.health import add_check
from gateway.legacy_plan import keep_fastapi_handler
from gateway.settings import Settings
from gateway.shadow import keep_out_of_shadow

__all__ = [
    "AsyncDB",
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
    "get_async_session",
    "get_session",
    "keep_fastapi_handler",
    "keep_out_of_shadow",
    "queries",
]

__version__ = "0.1.0"
