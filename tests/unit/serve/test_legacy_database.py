"""Honest defaults for `--legacy`: without GATEWAY_DATABASE_URL the gateway uses the database
of the legacy app's own engine and says so (password hidden), or refuses in one line; it
never falls back to a SQLite file in the working directory. The legacy concurrency follows
the legacy engine's pool, with a warning when a setting exceeds it."""

from __future__ import annotations

import logging
import sys
import textwrap

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gateway._compat import SYNC_POSTGRES_DRIVER
from gateway.cli.commands import cli
from gateway.legacy.engines import legacy_concurrency
from gateway.serve.loader import AppTarget, gateway_of
from gateway.testing import serve_in_subprocess
from tests.conftest import started_client

TOKEN = "legacy-db-test-token-0123456789abcdef"
PASSWORD = "s3cret-not-logged"  # the server trusts local connections: any password works
POOL_SIZE, MAX_OVERFLOW = 4, 3

SHOP = """
    import os

    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine(os.environ["SHOP_DATABASE_URL"], pool_size=4, max_overflow=3)
    SessionLocal = sessionmaker(bind=engine)


    def get_db():
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()


    app = FastAPI()


    @app.get("/ping")
    def ping(db: Session = Depends(get_db)):
        return {"one": db.execute(text("SELECT 1")).scalar_one()}
"""
MIGRATED = """
    from fastapi import APIRouter
    from sqlalchemy import text

    from gateway import AsyncDB

    router = APIRouter()


    @router.get("/ping")
    async def ping(db: AsyncDB):
        return {"one": (await db.execute(text("SELECT 1"))).scalar_one()}
"""
BARE = """
    from fastapi import FastAPI

    app = FastAPI()


    @app.get("/hello")
    def hello():
        return {"hello": "world"}
"""
COMPOSE = ["--legacy", "shop:app", "--async", "shop_migrated:router"]


def files_in(directory) -> set[str]:
    return {
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if "__pycache__" not in p.parts and p.is_file()
    }


@pytest.fixture
def written_modules(monkeypatch):
    """sys.path restored, and the modules the tests write dropped from sys.modules afterwards,
    and only them: putting back a copy of the whole of sys.modules would also drop what a
    test imported first (httpx's transports), and a later import would make new classes."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in ("shop", "shop_migrated", "bare"):
        sys.modules.pop(name, None)


@pytest.fixture
def shop(tmp_path, monkeypatch, postgres_url, written_modules):
    """A PostgreSQL legacy app of someone else's in a fresh working directory, its engine on
    SHOP_DATABASE_URL (with a password), and no GATEWAY_DATABASE_URL."""
    for name, source in {"shop.py": SHOP, "shop_migrated.py": MIGRATED, "bare.py": BARE}.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    url = make_url(postgres_url).set(drivername=SYNC_POSTGRES_DRIVER, password=PASSWORD)
    monkeypatch.setenv("SHOP_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("GATEWAY_FLAGS_DATABASE_URL", raising=False)
    monkeypatch.delenv("GATEWAY_LEGACY_CONCURRENCY", raising=False)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKENS", f"ops={TOKEN}")
    return tmp_path


def stored_flags(postgres_url: str) -> dict[str, str]:
    engine = create_engine(make_url(postgres_url).set(drivername=SYNC_POSTGRES_DRIVER))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT route_key, mode FROM gateway.gateway_flags"))
            return {route: mode for route, mode in rows}
    finally:
        engine.dispose()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_legacy_without_database_url_uses_the_legacy_engines_database(
    shop, postgres_url, caplog
):
    before = files_in(shop)
    target = AppTarget.from_options(None, legacy="shop:app", async_=["shop_migrated:router"])
    with caplog.at_level(logging.WARNING, logger="gateway"):
        app = target.load()
    gateway = gateway_of(app)
    assert make_url(gateway.settings.database_url).database == make_url(postgres_url).database
    [said] = [r.getMessage() for r in caplog.records if "GATEWAY_DATABASE_URL" in r.getMessage()]
    assert "using the legacy app's database postgresql+" in said
    assert PASSWORD not in said and ":***@" in said
    assert gateway.legacy_threads.size == POOL_SIZE + MAX_OVERFLOW  # the legacy engine's pool
    try:
        async for client in started_client(app):
            flipped = await client.put(
                "/_gateway/routes/GET /ping",
                json={"mode": "async", "reason": "test"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert flipped.status_code == 200, flipped.text
            served = await client.get("/ping")
            assert served.json() == {"one": 1}
            assert served.headers["x-gateway-implementation"] == "async"
    finally:
        sys.modules["shop"].engine.dispose()
    assert stored_flags(postgres_url) == {"GET /ping": "async"}  # in the app's database
    assert files_in(shop) == before  # no gateway.db, no flags file: nothing new here


@pytest.mark.postgres
def test_routes_with_legacy_creates_no_file_in_the_working_directory(shop, postgres_url, caplog):
    before = files_in(shop)
    runner = CliRunner()
    listed = runner.invoke(cli, ["routes", *COMPOSE])
    assert listed.exit_code == 0, listed.output
    assert "GET /ping" in listed.stdout
    said = caplog.text  # the CLI's stderr, outside pytest (the root logger has no handler)
    assert "using the legacy app's database" in said and PASSWORD not in said
    sys.modules["shop"].engine.dispose()
    assert files_in(shop) == before


def test_legacy_without_a_findable_engine_refuses_in_one_line(
    tmp_path, monkeypatch, written_modules
):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "bare.py").write_text(textwrap.dedent(BARE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["routes", "--legacy", "bare:app"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "gateway: --legacy bare:app: GATEWAY_DATABASE_URL is not set and the gateway found "
        "no SQLAlchemy engine in its routes' dependencies; set GATEWAY_DATABASE_URL to the "
        "legacy app's database (postgresql://user:password@host/db, or "
        "sqlite:///path/to/file.db)"
    ]
    assert files_in(tmp_path) == {"bare.py"}


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_legacy_on_postgres_without_database_url_stores_flags_there(shop, postgres_url):
    before = files_in(shop)
    env = {"GATEWAY_DATABASE_URL": "", "GATEWAY_WORKERS": ""}
    args = ("--async=shop_migrated:router", "--app-dir", str(shop))
    with serve_in_subprocess(
        "--legacy=shop:app", env=env, ready_path="/ping", extra_args=args
    ) as base:
        flipped = httpx.put(
            f"{base}/_gateway/routes/GET /ping",
            json={"mode": "async", "reason": "test"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert flipped.status_code == 200, flipped.text
        assert httpx.get(f"{base}/ping").headers["x-gateway-implementation"] == "async"
    assert stored_flags(postgres_url) == {"GET /ping": "async"}
    assert files_in(shop) == before


@pytest.mark.postgres
def test_a_legacy_concurrency_above_the_legacy_pool_is_kept_and_warned_about(shop, monkeypatch):
    monkeypatch.setenv("GATEWAY_LEGACY_CONCURRENCY", "20")
    target = AppTarget.from_options(None, legacy="shop:app", async_=["shop_migrated:router"])
    try:
        gateway = gateway_of(target.load())
    finally:
        sys.modules["shop"].engine.dispose()
    assert gateway.legacy_threads.size == 20
    assert gateway.startup_summary()["legacy_concurrency"] == 20
    [warning] = [note for note in gateway.notes if "GATEWAY_LEGACY_CONCURRENCY" in note]
    assert warning.startswith(
        "GATEWAY_LEGACY_CONCURRENCY=20 exceeds the legacy app's engine pool (7 connections: "
        "pool_size + max_overflow)"
    )


@pytest.mark.parametrize(
    ("configured", "capacity", "size", "warns"),
    [
        (0, None, 30, False),  # nothing readable: the gateway's own pool (20 + 10)
        (0, 15, 15, False),  # unset: the legacy engine's pool
        (10, 15, 10, False),
        (30, 15, 30, True),  # set above the legacy pool: kept, and said
    ],
)
def test_legacy_concurrency_follows_the_legacy_pool(configured, capacity, size, warns):
    found, warning = legacy_concurrency(configured, 30, capacity)
    assert found == size
    assert (warning is not None) == warns
    if warns:
        assert warning.startswith(
            "GATEWAY_LEGACY_CONCURRENCY=30 exceeds the legacy app's engine pool (15 connections"
        )
