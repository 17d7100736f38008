"""Gateway: compose a legacy app and migrated routers into one FastAPI app, and own its parts.

    gw = Gateway(settings)                 # or Gateway(settings, store=MemoryFlagStore())
    gw.include_legacy(legacy_app)          # a FastAPI app object (unchanged) or an APIRouter
    gw.include_async(users_router)         # migrated `async def` routes
    app = gw.build()

What a request passes through, in order (the first two are Starlette's and the app's own):

    1. ServerErrorMiddleware      a 500 for anything unhandled (Starlette), naming the side
                                  (gateway.routing.server_errors)
    2. MetricsMiddleware          one RequestInfo in `current_request`, observed after the
                                  response, and the x-gateway-implementation header
                                  (gateway.metrics.recorder; ImplementationHeader without metrics)
    3. the legacy app's middleware, in its own order (CORS, sessions, ...)
    4. ExceptionMiddleware        the legacy app's exception handlers (Starlette)
    5. the router, first match wins:
         admin routes             {prefix}/routes, /history, /report, /live, /ready, the page,
                                  behind one PrefixGuard each (gateway.admin.mount)
         GET /metrics             (gateway.metrics.metering)
         one RouteTable           (gateway.routing.index) holding the rest in order, asking
                                  only those a path's literal segments leave possible:
         a PathGroup per path     (gateway.routing.dispatch) reads the route's flag and picks
                                  a side:
           legacy                 LegacyApp: the legacy fast path, one thread hand-off
                                  (gateway.legacy.fast_path), or FastAPI's own handler
           async                  FastAPI's own handler of the migrated route
         the legacy app's mounts, websockets and plain routes

The Gateway builds and owns every collaborator (flag store and follower, admin access,
health checks, metrics registry and recorder, GC policy); each part gets the narrow things it
uses. Pass `database=`, `registry=`, `store=`, `tokens=` or `throttle=` to replace one (tests
do).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from starlette.middleware import Middleware

from gateway._process.gc import GcPolicy
from gateway._process.workers import is_supervisor
from gateway._version import __version__
from gateway.admin.auth import AdminAccess, AdminTokens
from gateway.admin.health import Check, EngineWatch, HealthChecks, health_router
from gateway.admin.mount import admin_listener, mount_admin
from gateway.admin.rows import describe_entries, routes_summary
from gateway.admin.throttle import AdminThrottle
from gateway.canary.judge import CanaryJudge, judge_for
from gateway.concurrency import LegacyThreads, set_threadpool_size
from gateway.db.database import STATE_KEY, Database
from gateway.db.outage import Outage, install_outage_handlers
from gateway.exceptions import RouteError
from gateway.flags.board import board_watch
from gateway.flags.follower import FlagFollower
from gateway.flags.seed_file import read_flags_file
from gateway.flags.store import FlagStore, SqlFlagStore
from gateway.flags.table import Flag, ModeTable, parse_flag
from gateway.legacy.engines import size_legacy_threads
from gateway.legacy.fast_path import legacy_app_for
from gateway.legacy.overrides import share_overrides
from gateway.logging import configure_logging, log_started, log_stopped, watch_flips
from gateway.metrics.metering import Metering, metering_for, static_paths
from gateway.metrics.recorder import ImplementationHeader, MetricsMiddleware, Recorder
from gateway.modes import Implementation
from gateway.report.maker import report_maker
from gateway.routing.contract import Contract, check_contracts
from gateway.routing.dispatch import RouteEntry, collect, dispatch_routes, pair, request_key_reader
from gateway.routing.openapi import install_openapi, served_routes
from gateway.routing.overlaps import overlap_notes
from gateway.routing.server_errors import name_side_on_errors
from gateway.settings import Settings
from gateway.shadow.runner import ShadowRunner
from gateway.shadow.store import ShadowStore

if TYPE_CHECKING:
    from gateway.admin.listener import AdminListener

__all__ = ["Gateway"]

log = logging.getLogger("gateway")

Hook = Callable[["Gateway"], Awaitable[None] | None]


class Gateway:
    """Builds the one app that serves legacy and migrated routes side by side."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        database: Database | None = None,
        registry: CollectorRegistry | None = None,
        store: FlagStore | None = None,
        tokens: AdminTokens | None = None,
        throttle: AdminThrottle | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_environ()
        self._database = database
        # Each gateway has its own registry, so two gateways in one process never clash;
        # /metrics also shows the process-wide default registry (process_*, python_*).
        self.registry = registry if registry is not None else CollectorRegistry()
        self._store = store
        self._tokens = tokens
        self._throttle = throttle
        self.checks = HealthChecks()
        self.modes = ModeTable(default=parse_flag(self.settings.default_mode))
        self.entries: dict[str, RouteEntry] = {}
        self.contracts: dict[str, Contract] = {}  # per paired route, made by build()
        self.notes: list[str] = []  # why optional routes are absent; `gateway routes` prints them
        self.app: FastAPI | None = None
        self.follower: FlagFollower | None = None
        self.recorder: Recorder | None = None
        self.metering: Metering | None = None
        self.outage: Outage | None = None
        self.shadow: ShadowRunner | None = None
        self.judge: CanaryJudge | None = None
        self.legacy_threads = LegacyThreads(self.settings.effective_legacy_concurrency)
        self.gc = GcPolicy(
            freeze=self.settings.gc_freeze, thresholds=self.settings.gc_thresholds or None
        )
        self._legacy_app: FastAPI | None = None
        self._legacy_routers: list[tuple[APIRouter, dict[str, Any]]] = []
        self._async_routers: list[tuple[APIRouter, dict[str, Any]]] = []
        self._hosts: tuple[FastAPI, ...] = ()
        self._engine_watch: EngineWatch | None = None
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._admin_api: APIRouter | None = None  # also served on GATEWAY_ADMIN_PORT

    # -- composition -------------------------------------------------------------------

    def include_legacy(self, legacy: FastAPI | APIRouter, **include: Any) -> None:
        """Mount legacy routes: a whole FastAPI app object (once) or an APIRouter.

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
        """Run `hook(gateway)` at shutdown, before the pools close (last added runs first)."""
        self._shutdown.append(hook)
        return hook

    def add_check(self, name: str, check: Check) -> None:
        """Make GET {prefix}/ready also run `check` (async () -> None | "what is wrong")."""
        self.checks[name] = check

    @property
    def database(self) -> Database:
        """Both engines on GATEWAY_DATABASE_URL, made on first use."""
        if self._database is None:
            self._database = Database.from_settings(self.settings)
        return self._database

    @property
    def implementations(self) -> dict[str, list[Implementation]]:
        """Every route key with the implementations it has (what a flag change is checked on)."""
        return {key: entry.implementations for key, entry in self.entries.items()}

    # -- building ----------------------------------------------------------------------

    def build(self) -> FastAPI:
        """Check every route, pair them, hold each twin to its legacy route's contract
        (gateway.routing.contract), and return the composed FastAPI app."""
        self._not_built()
        settings = self.settings
        legacy_host = self._legacy_app or FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        async_host = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        for router, include in self._legacy_routers:
            legacy_host.include_router(router, **include)
        for router, include in self._async_routers:
            async_host.include_router(router, **include)
        legacy_routes, async_routes = served_routes(legacy_host), served_routes(async_host)
        size_legacy_threads(self.legacy_threads, settings, legacy_host, self.notes)
        self.entries, layout = pair(
            collect(
                legacy_routes,
                Implementation.LEGACY,
                lambda view: legacy_app_for(view, self.legacy_threads),
            ),
            collect(async_routes, Implementation.ASYNC),
        )
        self.contracts = check_contracts(self.entries)  # ContractError: a twin drops a guard
        self.modes = ModeTable(
            [k for k, e in self.entries.items() if e.paired], default=self.modes.default
        )
        self.shadow = ShadowRunner(
            self.database,
            timeout=settings.shadow_timeout,
            concurrency=settings.shadow_concurrency,
            keep_bodies=settings.shadow_keep_bodies,
            registry=self.registry,
            store=ShadowStore(settings.effective_flags_database_url, schema=settings.flags_schema),
        )
        self.follower = self._follower()
        ordered = dispatch_routes(
            layout,
            self.modes,
            request_key_reader(settings.canary_key),
            self.shadow,
            fresh=board_watch(self.follower.apply),  # gateway serve's workers
        )
        for note in overlap_notes(layout):  # templates that overlap but do not pair
            log.warning("%s", note)
            self.notes.append(note)

        recorder = self._recorder()
        self.judge = judge_for(settings, self.follower, registry=self.registry)
        if recorder is not None:  # the judge counts what the recorder observes
            recorder.listeners.append(self.judge.tally.observe)
        source = self._legacy_app
        header = settings.implementation_header  # which side served, on each route's answer
        if recorder is not None:
            middleware = [Middleware(MetricsMiddleware, recorder=recorder, header=header)]
        else:
            middleware = [Middleware(ImplementationHeader, header=header)] if header else []
        app = FastAPI(
            title=source.title if source else "gateway",
            version=source.version if source else __version__,
            openapi_url=source.openapi_url if source else "/openapi.json",
            docs_url=source.docs_url if source else "/docs",
            redoc_url=source.redoc_url if source else "/redoc",
            middleware=middleware,
            lifespan=self._lifespan,
        )
        share_overrides(app, (legacy_host, async_host))  # the composed app's reach both sides
        if source is not None:
            app.user_middleware.extend(source.user_middleware)
            app.exception_handlers.update(source.exception_handlers)
            app.state = source.state
        # After the app's own handlers: an outage 503 only where the app has no handler.
        registry = self.registry if recorder is not None else None
        self.outage = Outage(retry_after=settings.db_retry_after, registry=registry)
        install_outage_handlers(app, self.outage)
        if header:
            name_side_on_errors(app, self.entries, header)
        setattr(app.state, STATE_KEY, self.database)
        app.state.gateway = self
        app.state.gateway_metrics = recorder

        app.router.routes.extend(ordered)
        # A path the routes miss by a trailing slash redirects as the legacy app decides.
        app.router.redirect_slashes = legacy_host.router.redirect_slashes
        if recorder is not None and self.metering is not None:
            app.router.routes.insert(0, self.metering.route())
            recorder.static_paths = static_paths(app.router.routes)
        self._install_admin(app, recorder)
        legacy_keys = {k for k, e in self.entries.items() if e.legacy is not None}
        only_async = [
            e.async_.context
            for e in self.entries.values()
            if e.async_ is not None and e.key not in legacy_keys
        ]
        install_openapi(app, [*legacy_routes, *only_async], source)
        watch_flips(self.modes)
        self._hosts = (legacy_host, async_host)
        self.app = app
        return app

    def _follower(self) -> FlagFollower:
        settings = self.settings
        seeds: dict[str, Flag] = {}
        if settings.flags_file:  # read here, so a bad file stops `gateway serve` at once
            seeds = read_flags_file(settings.flags_file, self.implementations)
        factory = None  # a store of its own for the admin listener's loop
        if self._store is None:
            self._store = SqlFlagStore.from_settings(settings)
            factory = functools.partial(SqlFlagStore.from_settings, settings, one_trip_changes=True)
        return FlagFollower(
            self._store,
            self.modes,
            self.implementations,
            resync_interval=settings.flags_resync_interval,
            poll_interval=settings.flags_poll_interval,
            seeds=seeds,
            seed_source=settings.flags_file,
            registry=self.registry,
            store_factory=factory,
        )

    @property
    def admin_api(self) -> APIRouter | None:
        """The admin API's router (flips, history, routes, report), once built."""
        return self._admin_api

    def _recorder(self) -> Recorder | None:
        # The supervisor of several workers builds only to check; it serves nothing.
        if not self.settings.metrics or is_supervisor():
            return None
        self.metering = metering_for(
            self.registry,
            self.database,
            self.modes,
            admin_prefix=self.settings.admin_prefix,
            threads=self.legacy_threads,
            interval=self.settings.loop_lag_interval,
        )
        self.recorder = self.metering.recorder
        return self.recorder

    def _install_admin(self, app: FastAPI, recorder: Recorder | None) -> None:
        if self.follower is None:
            raise RouteError("build() makes the flag follower before the admin routes")
        # Every sync engine of the process: a legacy app's own engine fails like ours.
        self._engine_watch = EngineWatch(Engine)
        self._admin_api = mount_admin(
            app,
            prefix=self.settings.admin_prefix,
            access=AdminAccess.from_settings(
                self.settings, tokens=self._tokens, throttle=self._throttle
            ),
            health=health_router(self.database, self.checks, self.follower, self._engine_watch),
            follower=self.follower,
            describe_routes=self.describe_routes,
            report=self._report_maker(recorder),
            shadow=self.shadow.results if self.shadow is not None else None,
            judge=self.judge,
        )

    def _report_maker(self, recorder: Recorder | None) -> Callable[[float], dict[str, Any]] | None:
        if recorder is None or self.metering is None:
            return None
        return report_maker(self.metering, self.entries, self.modes)

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        configure_logging(self.settings)
        set_threadpool_size(self.settings.threadpool_size)
        self.legacy_threads.start()
        state: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            stack.callback(log_stopped)  # runs last: after both pools are closed
            if self._engine_watch is not None:
                stack.callback(self._engine_watch.close)
            if self.outage is not None:
                stack.enter_context(self.outage.watching())
            stack.push_async_callback(self.database.aclose)
            for hook in self._startup:
                await _run(hook, self)
            if self.follower is not None:
                await self.follower.start()
                stack.push_async_callback(self.follower.stop)
            if self.judge is not None:
                await self.judge.start()
                stack.push_async_callback(self.judge.stop)
            if self.metering is not None:
                self.metering.start()
                stack.push_async_callback(self.metering.stop)
            if self.shadow is not None:
                await self.shadow.start()
                stack.push_async_callback(self.shadow.aclose)
            for host in self._hosts:
                host_state = await stack.enter_async_context(host.router.lifespan_context(host))
                if host_state:
                    state.update(host_state)
            if (listener := self._admin_listener(app)) is not None:
                await listener.start()
                stack.push_async_callback(listener.stop)
            log_started(self.startup_summary())
            self.gc.apply()
            try:
                yield state
            finally:
                self.gc.restore()
                for hook in reversed(self._shutdown):
                    await _run(hook, self)

    def _admin_listener(self, app: FastAPI) -> AdminListener | None:
        """The admin API on GATEWAY_ADMIN_PORT, on a loop of its own (None when unset)."""
        if self._admin_api is None or self.follower is None:
            return None
        return admin_listener(self._admin_api, app, self.settings, self.follower)

    def _not_built(self) -> None:
        if self.app is not None:
            raise RouteError("This gateway is built already; include routes before build().")

    # -- reading -----------------------------------------------------------------------

    def describe_routes(self) -> list[dict[str, Any]]:
        """Every route: key, implementations, mode (for paired routes), where each lives,
        its kind (`kinds`: {"legacy": "def" or "async def", "async": "async def"}) and, for
        a paired route, its `contract` (gateway.routing.contract)."""
        return describe_entries(self.entries, self.modes, self.contracts)

    def startup_summary(self) -> dict[str, Any]:
        """What the startup log line says: engines, pools, threadpool, GC policy, routes."""
        database, settings = self.database, self.settings
        return {
            "database": database.masked_url,
            "sync_engine": database.sync_engine.url.drivername,
            "async_engine": database.async_engine.url.drivername,
            "pool_size": settings.pool_size,
            "max_overflow": settings.max_overflow,
            "threadpool": settings.threadpool_size,
            "legacy_concurrency": self.legacy_threads.size,
            "gc_freeze": settings.gc_freeze,
            "gc_threshold": settings.gc_threshold or "python",
            **routes_summary(self.entries, self.modes),
            "notes": self.notes,
        }


async def _run(hook: Hook, gateway: Gateway) -> None:
    result = hook(gateway)
    if result is not None:
        await result
