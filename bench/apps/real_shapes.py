"""A legacy app in the proportions of a real 250-route one, for the fast path's reach.

Of its 226 `def` routes, 161 sit behind a router-level `async def get_current_user` that
depends on a sync `Session` generator (`generate_session`), 54 on a custom `APIRoute`
class that sets `last-modified` and `Cache-Control` from the JSON body (half of them behind
the same auth), 7 are plain and 4 take forms; 21 endpoints are `async def`. Its own engine,
as a real legacy app has:

    app, engine = create_app("postgresql+psycopg://...")

The tests hold what it shows (tests/unit/legacy/test_real_shapes.py: 222 of its 226 `def`
routes on the fast path, the same answers alone and composed); bench.instructions measures
a route behind the auth dependency alone and through the gateway (`create_bare_app`,
`create_gateway_app`).
"""

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

__all__ = [
    "AUTHORIZATION",
    "AUTH_ROUTES",
    "CLASS_ROUTES",
    "FORM_ROUTES",
    "MEASURED",
    "PLAIN_ROUTES",
    "TOKEN",
    "create_app",
    "create_bare_app",
    "create_gateway_app",
]  # fmt: skip

AUTH_ROUTES = 161
CLASS_ROUTES = 54
PLAIN_ROUTES = 7
FORM_ROUTES = 4
ASYNC_ROUTES = 21
TOKEN = "token-of-ada"
UPDATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/token")


class CacheControlRoute(APIRoute):
    """Sets `last-modified` and `Cache-Control` from the JSON body's `updated_at`."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def cached(request: Request) -> Response:
            response: Response = await handler(request)
            if b'"updated_at"' in response.body:
                response.headers["last-modified"] = format_datetime(UPDATED, usegmt=True)
                response.headers["cache-control"] = "private, max-age=60"
            return response

        return cached


def create_app(database_url: str) -> tuple[FastAPI, Engine]:
    """The legacy app and its engine (dispose it when done)."""
    engine = create_engine(database_url, poolclass=QueuePool, pool_size=2, max_overflow=0)
    SessionLocal = sessionmaker(engine)

    def generate_session() -> Iterator[Session]:
        session = SessionLocal()
        try:
            yield session
        finally:
            session.close()

    async def get_current_user(
        token: Annotated[str, Depends(oauth2_scheme)],
        db: Annotated[Session, Depends(generate_session)],
    ) -> dict[str, Any]:
        # As real apps do: a sync query in an `async def` dependency.
        found = db.execute(text("SELECT CAST(:token AS text)"), {"token": token}).scalar_one()
        if found != TOKEN:
            raise HTTPException(401, "Invalid credentials", {"WWW-Authenticate": "Bearer"})
        return {"name": "ada", "session": id(db)}

    app = FastAPI(title="real shapes")
    authed = APIRouter(prefix="/api", dependencies=[Depends(get_current_user)])
    for i in range(AUTH_ROUTES):
        authed.add_api_route(
            f"/things{i}/{{thing_id}}",
            _authed_endpoint(i, generate_session, get_current_user),
            methods=["GET"],
        )
    app.include_router(authed)
    for half in (0, 1):
        cached = APIRouter(
            prefix=f"/cached{half}",
            route_class=CacheControlRoute,
            dependencies=[Depends(get_current_user)] if half else [],
        )
        for i in range(half * CLASS_ROUTES // 2, (half + 1) * CLASS_ROUTES // 2):
            cached.add_api_route(
                f"/docs{i}", _cached_endpoint(i, generate_session), methods=["GET"]
            )
        app.include_router(cached)
    for i in range(PLAIN_ROUTES):
        app.add_api_route(f"/plain{i}", _plain_endpoint(i, generate_session), methods=["GET"])
    for i in range(FORM_ROUTES):
        app.add_api_route(f"/forms{i}", _form_endpoint(i), methods=["POST"])
    for i in range(ASYNC_ROUTES):
        app.add_api_route(f"/async{i}", _async_endpoint(i), methods=["GET"])
    return app, engine


def _authed_endpoint(i: int, generate_session: Any, get_current_user: Any) -> Callable[..., Any]:
    def read_thing(
        thing_id: int,
        user: Annotated[dict[str, Any], Depends(get_current_user)],
        db: Annotated[Session, Depends(generate_session)],
    ) -> dict[str, Any]:
        value = db.execute(text("SELECT CAST(:v AS integer)"), {"v": thing_id}).scalar_one()
        return {
            "route": i,
            "thing": value,
            "user": user["name"],
            "same_session": user["session"] == id(db),
        }

    read_thing.__name__ = f"read_thing_{i}"
    return read_thing


def _cached_endpoint(i: int, generate_session: Any) -> Callable[..., Any]:
    def read_doc(db: Annotated[Session, Depends(generate_session)]) -> dict[str, Any]:
        return {
            "doc": i,
            "updated_at": UPDATED.isoformat(),
            "one": db.execute(text("SELECT 1")).scalar_one(),
        }

    read_doc.__name__ = f"read_doc_{i}"
    return read_doc


def _plain_endpoint(i: int, generate_session: Any) -> Callable[..., Any]:
    def read_plain(db: Annotated[Session, Depends(generate_session)]) -> dict[str, int]:
        return {"plain": i, "one": db.execute(text("SELECT 1")).scalar_one()}

    read_plain.__name__ = f"read_plain_{i}"
    return read_plain


def _form_endpoint(i: int) -> Callable[..., Any]:
    def submit(name: Annotated[str, Form()]) -> dict[str, Any]:
        return {"form": i, "name": name}

    submit.__name__ = f"submit_{i}"
    return submit


def _async_endpoint(i: int) -> Callable[..., Any]:
    async def status() -> dict[str, int]:
        return {"async": i}

    status.__name__ = f"status_{i}"
    return status


# -- bench.instructions' cases: a route behind the async auth dependency, bare and composed --

MEASURED = "/api/things0/{}"  # the first route behind the auth dependency: little routing
AUTHORIZATION = (b"authorization", b"Bearer " + TOKEN.encode())


def _sync_url() -> str:
    from sqlalchemy.engine import make_url

    from bench.apps.common import AppSettings

    url = make_url(AppSettings.from_environ().database_url).set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def create_bare_app() -> FastAPI:
    """The app alone on FastAPI, on GATEWAY_DATABASE_URL (case real_shapes_bare)."""
    app, _engine = create_app(_sync_url())
    return app


def create_gateway_app() -> FastAPI:
    """The same app mounted unchanged in the gateway (case real_shapes_gateway)."""
    from gateway import Gateway, Settings

    legacy, _engine = create_app(_sync_url())
    gateway = Gateway(Settings.from_environ())
    gateway.include_legacy(legacy)
    return gateway.build()
