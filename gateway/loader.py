"""Find the app a command names ('module:attribute', as uvicorn takes it) and build it.

    target = AppTarget("mypkg.main:create_app", app_dir="src")
    app = target.load()           # imports, calls a factory, checks it is a gateway
    gateway = gateway_of(app)

Every command that needs an app (`serve`, `routes`, `flags --app`) goes through here, and
`gateway serve --workers N` hands the same `AppTarget` to uvicorn as the factory each
worker calls, so each process builds its app exactly once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from uvicorn.importer import ImportFromStringError, import_from_string

from gateway.app import Gateway
from gateway.exceptions import AppLoadError

__all__ = ["DEFAULT_APP", "AppTarget", "gateway_of"]

# The app every command uses when none is named; change it here only.
DEFAULT_APP = "example:create_app"

_WRAP = (
    "wrap it in a module of yours: gw = Gateway(); gw.include_legacy(app); "
    "app = gw.build(); then serve that module's app"
)


@dataclass(frozen=True)
class AppTarget:
    """An import path to an app or an app factory, and where to import it from.

    `factory=None` calls the object when it is a callable that is not an app (uvicorn
    warns and does the same); `True` always calls it. `app_dir` goes first on sys.path,
    "" meaning the current directory, as with uvicorn's `--app-dir`.
    """

    path: str = DEFAULT_APP
    factory: bool | None = None
    app_dir: str = ""

    def load(self) -> FastAPI:
        """Import and build the app; raise AppLoadError in one line if that fails."""
        if self.app_dir not in sys.path:
            sys.path.insert(0, self.app_dir)
        module = self.path.partition(":")[0]
        try:
            found = import_from_string(self.path)
        except ImportFromStringError as exc:
            hint = "" if module in sys.modules else self._hint()
            raise AppLoadError(f"cannot load app {self.path!r}: {exc}{hint}") from None
        except ModuleNotFoundError as exc:
            if exc.name and f"{module}.".startswith(f"{exc.name}."):  # a package on the path
                message = f"cannot load app {self.path!r}: no module named {exc.name!r}"
                raise AppLoadError(message + self._hint()) from None
            raise AppLoadError(f"importing {self.path!r} failed: {exc}") from None
        except ImportError as exc:
            raise AppLoadError(f"importing {self.path!r} failed: {exc}") from None
        app = found() if self._calls(found) else found
        if not isinstance(app, FastAPI):
            made = f"{self.path}() returned" if app is not found else f"{self.path} is"
            raise AppLoadError(f"{made} {type(app).__name__}; expected a FastAPI app")
        gateway_of(app, self.path)
        return app

    def __call__(self) -> FastAPI:
        # uvicorn calls a factory with no arguments, in each worker and after each reload.
        return self.load()

    def _calls(self, found: Any) -> bool:
        if self.factory:
            return True
        return self.factory is None and callable(found) and not isinstance(found, FastAPI)

    def _hint(self) -> str:
        where = f"directory {self.app_dir!r}" if self.app_dir else "the current directory"
        return f" (looked in {where} and on sys.path; --app-dir names another directory)"


def gateway_of(app: FastAPI, path: str = "the app") -> Gateway:
    """The `Gateway` that built `app`; AppLoadError saying how to wrap a plain FastAPI app."""
    gateway = getattr(app.state, "gateway", None)
    if not isinstance(gateway, Gateway):
        raise AppLoadError(f"{path} is a plain FastAPI app, not built by gateway.Gateway; {_WRAP}")
    return gateway
