"""gateway: serve a legacy sync FastAPI app and its async rewrite side by side, route by route.

from gateway import Gateway, SyncDB, AsyncDB

gw = Gateway()
gw.include_legacy(legacy_app)
gw.include_async(migrated_router)
app = gw.build()
"""

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
from gateway.flags import Flag, Implementation, Mode, ModeTable
from gateway.settings import Settings

__all__ = [
    "AsyncDB",
    "Database",
    "DatabaseUnreachable",
    "Flag",
    "FlagError",
    "Gateway",
    "GatewayError",
    "Implementation",
    "Mode",
    "ModeTable",
    "RouteError",
    "RouteKindError",
    "Settings",
    "SettingsError",
    "SyncDB",
    "UnknownModeError",
    "UnknownRouteError",
    "get_async_session",
    "get_session",
]

__version__ = "0.1.0"
