"""Gateway: compose a legacy app (or routers) and migrated routers into one FastAPI app.

gw = Gateway(settings)
gw.include_legacy(legacy_app)          # a FastAPI app object or an APIRouter
gw.include_async(users_router)         # async def routes
app = gw.build()
gw.modes.set_mode("GET /users/{user_id}", "async")
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute

from gateway.concurrency import set_threadpool_size
from gateway.database import STATE_KEY, Database
from gateway.exceptions import RouteError
from gateway.flags import Flag, Implementation, ModeTable, parse_flag
from gateway.routing import (
    PathGroup,
    PrefixGuard,
    RouteEntry,
    collect,
    pair,
    request_key_reader,
)
from gateway.settings import Settings

__all__ = ["Gateway"]

log = logging.getLogger("gateway")

Hook = Callable[["Gateway"], Awaitable[None] | None]


class Gateway:
    """Builds the one app that serves legacy and migrated routes side by side."""

    def __init__(self, settings: Settings | None = None, *, database: Database | None = None):
        self.settings = settings if settings is not None else Settings.from_environ()
        self._database = database
        self._legacy_app: FastAPI | None = None
        self._legacy_routers: list[tuple[APIRouter, dict[str, Any]]] = []
        self._async_routers: list[tuple[APIRouter, dict[str, Any]]] = []
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self.entries: dict[str, RouteEntry] = {}
        self.modes = ModeTable(default=parse_flag(self.settings.default_mode))
        self.app: FastAPI | None = None
        # Where metrics register; None means prometheus_client's global REGISTRY.
        self.metrics_registry: CollectorRegistry | None = None
        self.notes: list[str] = []  # why optional routes are absent; `gateway routes` prints them

    # -- composition -------------------------------------------------------------------

    def include_legacy(self, legacy: FastAPI | APIRouter, **include: Any) -> None:
        """Mount legacy `def` routes: a whole FastAPI app object (once) or an APIRouter.

        An app keeps its middleware, exception handlers, lifespan, dependency_overrides,
        OpenAPI URL and operation ids; `include` goes to `include_router` for routers.
        """
        self._not_built()
        if isinstance(legacy, FastAPI):
            if self._legacy_app is not None:
                raise RouteError("include_legacy got a second FastAPI app; mount one app only.")
            if include:
                raise RouteError(
                    f"include_legacy(app) takes no include options, got {sorted(include)}; "
                    "set prefixes inside the legacy app."
                )
            self._legacy_app = legacy
        elif isinstance(legacy, APIRouter):
            self._legacy_routers.append((legacy, include))
        else:
            raise RouteError(
                f"include_legacy expects a FastAPI app or an APIRouter, got {type(legacy)!r}."
            )

    def include_async(self, router: APIRouter, **include: Any) -> None:
        """Mount migrated `async def` routes from an APIRouter (`include` as include_router)."""
        self._not_built()
        if not isinstance(router, APIRouter):
            raise RouteError(f"include_async expects an APIRouter, got {type(router)!r}.")
        self._async_routers.append((router, include))

    def on_startup(self, hook: Hook) -> Hook:
        """Run `hook(gateway)` at startup, after the engines exist and before legacy hooks."""
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        self._shutdown.append(hook)
        return hook

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database.from_settings(self.settings)
        return self._database

    # -- building ----------------------------------------------------------------------

    def build(self) -> FastAPI:
        """Check every route, pair them, and return the composed FastAPI app."""
        self._not_built()
        legacy_host = self._legacy_app or FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        app = FastAPI(
            title=legacy_host.title if self._legacy_app else "gateway",
            version=legacy_host.version if self._legacy_app else "0.1.0",
            openapi_url=legacy_host.openapi_url if self._legacy_app else "/openapi.json",
            docs_url=legacy_host.docs_url if self._legacy_app else "/docs",
            redoc_url=legacy_host.redoc_url if self._legacy_app else "/redoc",
            lifespan=self._lifespan,
        )
        async_host = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        async_host.dependency_overrides = app.dependency_overrides
        if self._legacy_app is None:
            legacy_host.dependency_overrides = app.dependency_overrides
        for router, include in self._legacy_routers:
            legacy_host.include_router(router, **include)
        for router, include in self._async_routers:
            async_host.include_router(router, **include)

        from gateway.legacy import legacy_app_for

        skip = _docs_paths(legacy_host)
        legacy_routes = [r for r in legacy_host.routes if getattr(r, "path", None) not in skip]
        skip_async = _docs_paths(async_host)
        async_routes = [r for r in async_host.routes if getattr(r, "path", None) not in skip_async]
        self.entries, ordered = pair(
            collect(legacy_routes, Implementation.LEGACY, legacy_app_for),
            collect(async_routes, Implementation.ASYNC),
        )
        self.modes = ModeTable(
            [k for k, e in self.entries.items() if e.paired], default=self.modes.default
        )
        reader = request_key_reader(self.settings.canary_key)
        for item in ordered:
            if isinstance(item, PathGroup):
                item.table = self.modes
                item.request_key = reader
        app.router.routes.extend(ordered)

        if self._legacy_app is not None:
            app.user_middleware = list(self._legacy_app.user_middleware)
            app.exception_handlers.update(self._legacy_app.exception_handlers)
            app.state = self._legacy_app.state
        setattr(app.state, STATE_KEY, self.database)
        app.state.gateway = self
        self._install_openapi(app, legacy_routes, async_routes)
        self._install_extensions(app)
        self._hosts = (legacy_host, async_host)
        self.app = app
        return app

    def _install_extensions(self, app: FastAPI) -> None:
        # Each concern lives in its own module; admin routes go first so no legacy
        # catch-all route can shadow them.
        from gateway.admin import admin_router
        from gateway.flag_follower import attach_store
        from gateway.health import health_router
        from gateway.logging import watch_flips
        from gateway.metrics import install_metrics
        from gateway.page import page_router
        from gateway.report import report_router

        prefix = self.settings.admin_prefix
        admin = APIRouter(prefix=prefix, include_in_schema=False)
        for router in (health_router(self), admin_router(self), report_router(self)):
            admin.include_router(router)
        admin.include_router(page_router(self))
        mounted = len(app.router.routes)
        app.include_router(admin)
        # Admin routes go in front, behind a prefix test so other requests skip them cheaply.
        guarded = [PrefixGuard(prefix, route) for route in app.router.routes[mounted:]]
        app.router.routes[:] = guarded + app.router.routes[:mounted]
        attach_store(self)
        install_metrics(self, app)
        watch_flips(self)

    def _install_openapi(
        self, app: FastAPI, legacy_routes: list[BaseRoute], async_routes: list[BaseRoute]
    ) -> None:
        legacy_keys = {k for k, e in self.entries.items() if e.legacy is not None}
        only_async = [
            e.async_.context
            for e in self.entries.values()
            if e.async_ is not None and e.key not in legacy_keys
        ]
        source = self._legacy_app

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is None:
                app.openapi_schema = get_openapi(
                    title=app.title,
                    version=app.version,
                    description=source.description if source else None,
                    routes=[*legacy_routes, *only_async],
                )
            return app.openapi_schema

        app.openapi = openapi  # type: ignore[method-assign]

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        from gateway.logging import configure_logging, log_started, log_stopped

        configure_logging(self.settings)
        set_threadpool_size(self.settings.threadpool_size)
        state: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            stack.callback(log_stopped, self)  # runs last: after both pools are closed
            stack.push_async_callback(self.database.aclose)
            for hook in self._startup:
                result = hook(self)
                if result is not None:
                    await result
            for host in self._hosts:
                host_state = await stack.enter_async_context(host.router.lifespan_context(host))
                if host_state:
                    state.update(host_state)
            log_started(self)
            frozen = freeze_startup_heap(self.settings.gc_freeze)
            thresholds = gc.get_threshold()
            if self.settings.gc_thresholds:
                gc.set_threshold(*self.settings.gc_thresholds)
            try:
                yield state
            finally:
                gc.set_threshold(*thresholds)
                if frozen:
                    gc.unfreeze()
                for hook in reversed(self._shutdown):
                    result = hook(self)
                    if result is not None:
                        await result

    def _not_built(self) -> None:
        if self.app is not None:
            raise RouteError("This gateway is built already; include routes before build().")

    # -- reading -----------------------------------------------------------------------

    def describe_routes(self) -> list[dict[str, Any]]:
        """Every route: key, implementations, mode (for paired routes) and where it lives."""
        rows = []
        for key, entry in self.entries.items():
            flag: Flag | None = self.modes.get(key) if entry.paired else None
            rows.append(
                {
                    "key": key,
                    "implementations": [i.value for i in entry.implementations],
                    "mode": flag.mode.value if flag else entry.implementations[0].value,
                    "percent": flag.percent if flag else None,
                    "paired": entry.paired,
                    "legacy": entry.legacy.where if entry.legacy else None,
                    "async": entry.async_.where if entry.async_ else None,
                }
            )
        return rows


def freeze_startup_heap(enabled: bool) -> bool:
    """Move every object alive after startup to the collector's permanent generation.

    The app, its routes, engines, models and metrics live as long as the process; left in
    the oldest generation, every full collection walks all of them again, and under many
    concurrent requests full collections are frequent. Objects created later are
    collected as before. True if it froze (the lifespan unfreezes at shutdown).
    """
    if not enabled:
        return False
    gc.freeze()
    return True


def _docs_paths(host: FastAPI) -> set[str]:
    paths = {host.openapi_url, host.docs_url, host.redoc_url}
    if host.docs_url:
        paths.add(host.docs_url + "/oauth2-redirect")
    if host.swagger_ui_oauth2_redirect_url:
        paths.add(host.swagger_ui_oauth2_redirect_url)
    return {p for p in paths if p}


def api_routes(routes: list[BaseRoute]) -> list[APIRoute]:
    return [r for r in routes if isinstance(r, APIRoute)]
