"""Find the app a command names ('module:attribute', as uvicorn takes it) and build it.

    target = AppTarget("mypkg.main:create_app", app_dir="src")
    app = target.load()           # imports, calls a factory, checks it is a gateway
    gateway = gateway_of(app)

    # No composition module yet: mount a legacy app and migrated routers as they are.
    target = AppTarget(legacy="mypkg.main:app", async_=("mypkg.migrated:router",))

Every command that needs an app (`serve`, `routes`, `flags --app`) goes through here, and
`gateway serve --workers N` hands the same `AppTarget` to uvicorn as the factory each
worker calls, so each process builds its app exactly once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from uvicorn.importer import ImportFromStringError, import_from_string

from gateway.app import Gateway
from gateway.exceptions import AppLoadError, SettingsError
from gateway.legacy.engines import legacy_engines
from gateway.routing.openapi import served_routes
from gateway.settings import Settings
from gateway.urls import mask_url

__all__ = ["DEFAULT_APP", "AppTarget", "gateway_of", "legacy_settings"]

log = logging.getLogger("gateway")

# The app every command uses when none is named; change it here only.
DEFAULT_APP = "example:create_app"


def _wrap(path: str) -> str:
    return (
        f"serve it through the gateway as it is with --legacy {path} "
        "(and --async mypkg.migrated:router for migrated routes), or wrap it in a module "
        "of yours: gw = Gateway(); gw.include_legacy(app); app = gw.build(); then serve "
        "that module's app"
    )


@dataclass(frozen=True)
class AppTarget:
    """An import path to an app or an app factory, and where to import it from.

    `factory=None` calls the object when it is a callable that is not an app (uvicorn
    warns and does the same); `True` always calls it. `app_dir` goes first on sys.path,
    "" meaning the current directory, as with uvicorn's `--app-dir`.

    With `legacy` (and `async_`), `path` is not imported: a `Gateway` with default
    settings mounts the legacy app (or router, or a factory of one) and every migrated
    APIRouter, or every API route of a migrated FastAPI app, and builds.
    """

    path: str = DEFAULT_APP
    factory: bool | None = None
    app_dir: str = ""
    legacy: str | None = None
    async_: tuple[str, ...] = ()

    @classmethod
    def from_options(
        cls,
        app: str | None,
        *,
        legacy: str | None = None,
        async_: list[str] | tuple[str, ...] | None = None,
        app_dir: str = "",
        factory: bool | None = None,
    ) -> AppTarget:
        """What a command line names: APP, or --legacy with any --async, never both."""
        async_ = tuple(async_ or ())
        if legacy is None and async_:
            raise AppLoadError(
                f"--async {async_[0]} needs --legacy naming the legacy app it is paired with"
            )
        if legacy is not None:
            if app is not None:
                raise AppLoadError(
                    f"got both an app ({app}) and --legacy {legacy}; name a gateway app, "
                    "or the legacy app with --legacy and --async, not both"
                )
            return cls(legacy, factory=factory, app_dir=app_dir, legacy=legacy, async_=async_)
        return cls(app or DEFAULT_APP, factory=factory, app_dir=app_dir)

    @property
    def described(self) -> str:
        """How the command line named it, for messages."""
        if self.legacy is None:
            return self.path
        return " ".join([f"--legacy {self.legacy}", *(f"--async {a}" for a in self.async_)])

    def load(self) -> FastAPI:
        """Import and build the app; raise AppLoadError in one line if that fails."""
        if self.app_dir not in sys.path:
            sys.path.insert(0, self.app_dir)
        if self.legacy is not None:
            return self._compose(self.legacy)
        found = self._import(self.path)
        app = found() if self._calls(found) else found
        if not isinstance(app, FastAPI):
            made = f"{self.path}() returned" if app is not found else f"{self.path} is"
            raise AppLoadError(f"{made} {type(app).__name__}; expected a FastAPI app")
        gateway_of(app, self.path)
        return app

    def __call__(self) -> FastAPI:
        # uvicorn calls a factory with no arguments, in each worker and after each reload.
        return self.load()

    def _compose(self, legacy_path: str) -> FastAPI:
        legacy = self._mountable(legacy_path, "--legacy")
        if isinstance(legacy, FastAPI) and _built_by(legacy) is not None:
            raise AppLoadError(
                f"--legacy {legacy_path} is a gateway app already; serve it as APP instead"
            )
        gateway = Gateway(legacy_settings(legacy, legacy_path))
        gateway.include_legacy(legacy)
        for path in self.async_:
            migrated = self._mountable(path, "--async")
            if isinstance(migrated, FastAPI):
                # Its API routes only: the composed app serves one set of docs pages.
                router = APIRouter()
                router.routes.extend(served_routes(migrated))
                migrated = router
            gateway.include_async(migrated)
        return gateway.build()

    def _mountable(self, path: str, option: str) -> FastAPI | APIRouter:
        found = self._import(path)
        if isinstance(found, FastAPI | APIRouter):
            return found
        if callable(found):
            made = found()
            if isinstance(made, FastAPI | APIRouter):
                return made
            raise AppLoadError(
                f"{option} {path}() returned {type(made).__name__}; "
                "expected a FastAPI app or an APIRouter"
            )
        raise AppLoadError(
            f"{option} {path} is {type(found).__name__}; expected a FastAPI app, an "
            "APIRouter or a function that returns one"
        )

    def _import(self, path: str) -> Any:
        module = path.partition(":")[0]
        try:
            return import_from_string(path)
        except ImportFromStringError as exc:
            hint = "" if module in sys.modules else self._hint()
            raise AppLoadError(f"cannot load app {path!r}: {exc}{hint}") from None
        except ModuleNotFoundError as exc:
            if exc.name and f"{module}.".startswith(f"{exc.name}."):  # a package on the path
                message = f"cannot load app {path!r}: no module named {exc.name!r}"
                raise AppLoadError(message + self._hint()) from None
            raise AppLoadError(f"importing {path!r} failed: {exc}") from None
        except ImportError as exc:
            raise AppLoadError(f"importing {path!r} failed: {exc}") from None

    def _calls(self, found: Any) -> bool:
        if self.factory:
            return True
        return self.factory is None and callable(found) and not isinstance(found, FastAPI)

    def _hint(self) -> str:
        where = f"directory {self.app_dir!r}" if self.app_dir else "the current directory"
        return f" (looked in {where} and on sys.path; --app-dir names another directory)"


def legacy_settings(
    legacy: FastAPI | APIRouter, path: str, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings of a gateway around the legacy app `legacy`: GATEWAY_* from `environ`,
    and without GATEWAY_DATABASE_URL, the database of the engine the legacy app's code uses
    (said in a log line, its password hidden). AppLoadError, in one line, when there is no
    such engine, or more than one database: never an embedded file nobody asked for."""
    settings = Settings.from_environ(environ)
    if settings.database_url:
        return settings
    overrides = legacy.dependency_overrides if isinstance(legacy, FastAPI) else {}
    routes = served_routes(legacy) if isinstance(legacy, FastAPI) else legacy.routes
    engines = legacy_engines(routes, overrides)
    urls = list(dict.fromkeys(e.url.render_as_string(hide_password=False) for e in engines))
    if len(urls) != 1:
        found = (
            "found no SQLAlchemy engine in its routes' dependencies"
            if not urls
            else f"found {len(urls)} databases ({', '.join(mask_url(u) for u in urls)})"
        )
        raise AppLoadError(
            f"--legacy {path}: GATEWAY_DATABASE_URL is not set and the gateway {found}; "
            "set GATEWAY_DATABASE_URL to the legacy app's database (postgresql://user:"
            "password@host/db, or sqlite:///path/to/file.db)"
        )
    try:
        chosen = Settings.from_environ(environ, database_url=urls[0])
    except SettingsError as exc:
        raise AppLoadError(
            f"--legacy {path}: GATEWAY_DATABASE_URL is not set and the legacy app's database "
            f"cannot be shared ({exc}); set GATEWAY_DATABASE_URL"
        ) from None
    log.warning(
        "GATEWAY_DATABASE_URL is not set: using the legacy app's database %s, found in its "
        "routes' dependencies (flags, shadow results and async twins use it too)",
        mask_url(urls[0]),
    )
    return chosen


def gateway_of(app: FastAPI, path: str = "the app") -> Gateway:
    """The `Gateway` that built `app`; AppLoadError saying how to wrap a plain FastAPI app."""
    gateway = _built_by(app)
    if gateway is None:
        raise AppLoadError(
            f"{path} is a plain FastAPI app, not built by gateway.Gateway; " + _wrap(path)
        )
    return gateway


def _built_by(app: FastAPI) -> Gateway | None:
    # A mounted legacy app shares its state with the gateway app, so `state.gateway` alone
    # does not tell the gateway's app from the app it mounted.
    gateway = getattr(app.state, "gateway", None)
    return gateway if isinstance(gateway, Gateway) and gateway.app is app else None
