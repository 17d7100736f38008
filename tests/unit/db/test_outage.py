"""Database outages: which real driver errors count, and what a request gets while one lasts."""

from __future__ import annotations

import logging
import sqlite3
import time

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from gateway import AsyncDB, Gateway, Settings, SyncDB
from gateway.db.errors import Cause, database_unavailable
from gateway.db.outage import Outage
from gateway.flags.store import MemoryFlagStore
from gateway.testing import free_port
from tests.conftest import started_client


def raised(call) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError(f"{call} raised nothing")


async def araised(call) -> BaseException:
    try:
        await call()
    except BaseException as exc:
        return exc
    raise AssertionError(f"{call} raised nothing")


def refused_url(driver: str) -> str:
    return f"postgresql+{driver}://postgres@127.0.0.1:{free_port()}/postgres"


def connect_once(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def test_refused_connections_are_outages(tmp_path):
    assert database_unavailable(raised(lambda: connect_once(refused_url("psycopg")))) is (
        Cause.UNREACHABLE
    )
    missing = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    assert database_unavailable(raised(lambda: connect_once(missing))) is Cause.UNREACHABLE


@pytest.mark.anyio
async def test_asyncpg_refusal_is_raw_and_still_an_outage():
    engine = create_async_engine(refused_url("asyncpg"))

    async def connect() -> None:
        async with engine.connect():
            pass

    error = await araised(connect)
    await engine.dispose()
    assert isinstance(error, OSError), type(error)  # SQLAlchemy does not wrap it
    assert database_unavailable(error) is Cause.UNREACHABLE


def test_an_oserror_of_the_app_itself_is_no_outage(tmp_path):
    error = raised(lambda: open(tmp_path / "absent"))  # noqa: SIM115
    assert database_unavailable(error) is None
    assert database_unavailable(ConnectionRefusedError(111, "refused by some other service")) is (
        None
    )


def test_pool_timeout_is_its_own_cause(sqlite_url):
    engine = create_engine(sqlite_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    try:
        with engine.connect():
            error = raised(engine.connect)
    finally:
        engine.dispose()
    assert database_unavailable(error) is Cause.POOL_TIMEOUT


@pytest.mark.postgres
def test_plain_sql_errors_are_not_outages(postgres_url):
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            connection.commit()
            duplicate = raised(lambda: connection.execute(text("INSERT INTO t VALUES (1)")))
            connection.rollback()
            syntax = raised(lambda: connection.execute(text("SELEC 1")))
            connection.rollback()
            connection.execute(text("SET statement_timeout = 10"))
            cancelled = raised(lambda: connection.execute(text("SELECT pg_sleep(1)")))
    finally:
        engine.dispose()
    assert isinstance(duplicate, IntegrityError) and database_unavailable(duplicate) is None
    assert isinstance(syntax, ProgrammingError) and database_unavailable(syntax) is None
    assert isinstance(cancelled, OperationalError), type(cancelled)  # QueryCanceled, 57014
    assert database_unavailable(cancelled) is None


@pytest.mark.postgres
def test_a_terminated_connection_is_an_outage(postgres_url):
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as victim, engine.connect() as killer:
            pid = victim.execute(text("SELECT pg_backend_pid()")).scalar_one()
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            error = raised(lambda: victim.execute(text("SELECT 1")))
    finally:
        engine.dispose()
    assert database_unavailable(error) is Cause.UNREACHABLE


def test_a_locked_sqlite_file_is_busy():
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorname = "SQLITE_BUSY"
    assert database_unavailable(error) is Cause.BUSY


def down_gateway(legacy: FastAPI | None = None) -> Gateway:
    """A gateway whose database port has nothing listening, and a legacy app of its own."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    settings = Settings.from_environ({}, database_url=url, pool_size=1, max_overflow=0)
    gateway = Gateway(settings, store=MemoryFlagStore())
    legacy = legacy or FastAPI()
    sync_side, async_side = APIRouter(), APIRouter()

    @sync_side.get("/sync")
    def read_sync(db: SyncDB) -> dict[str, int]:
        return {"one": db.execute(text("SELECT 1")).scalar_one()}

    @async_side.get("/async")
    async def read_async(db: AsyncDB) -> dict[str, int]:
        return {"one": (await db.execute(text("SELECT 1"))).scalar_one()}

    @legacy.get("/plain")
    def plain() -> dict[str, str]:
        return {"database": "not needed"}

    @legacy.get("/broken-sql")
    def broken_sql() -> None:
        raise ProgrammingError("SELEC 1", {}, Exception("syntax error at or near SELEC"))

    legacy.include_router(sync_side)
    gateway.include_legacy(legacy)
    gateway.include_async(async_side)
    return gateway


@pytest.mark.anyio
async def test_requests_that_need_the_database_get_503_with_retry_after(caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    gateway = down_gateway()
    app = gateway.build()
    async with LifespanManager(app) as manager:
        # As a server would: an unhandled error is a 500, not an exception in the test.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        answers = [await client.get(path) for path in ("/sync", "/async", "/sync", "/async")]
        plain = await client.get("/plain")
        broken = await client.get("/broken-sql")
        await client.aclose()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.json() == {
            "detail": "The database cannot be reached, so this request was not served; "
            "retry in 5 s.",
            "cause": "database_unreachable",
        }
    assert plain.status_code == 200
    assert broken.status_code == 500  # an ordinary SQL error keeps its normal answer
    assert caplog.text.count("database unavailable: answering 503") == 1, caplog.text
    responses = gateway.registry.get_sample_value(
        "gateway_db_unavailable_responses_total", {"cause": "database_unreachable"}
    )
    assert responses == 4
    assert gateway.registry.get_sample_value("gateway_db_outage") == 1


@pytest.mark.anyio
async def test_the_legacy_apps_own_handler_wins():
    legacy = FastAPI()

    @legacy.exception_handler(OperationalError)
    async def own(_request: Request, _exc: OperationalError) -> JSONResponse:
        return JSONResponse({"error": "db down, says the app"}, status_code=502)

    app = down_gateway(legacy).build()
    async for client in started_client(app):
        sync_answer = await client.get("/sync")  # psycopg: an OperationalError
        async_answer = await client.get("/async")  # asyncpg: a raw OSError, the gateway's
    assert (sync_answer.status_code, sync_answer.json()) == (
        502,
        {"error": "db down, says the app"},
    )
    assert async_answer.status_code == 503 and "retry-after" in async_answer.headers


def test_a_flapping_recovery_is_one_outage(caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    outage = Outage(settle=0.05)
    outage.failed("refused")
    outage.succeeded()  # a database starting up: one connection in ...
    outage.failed("the database system is starting up")  # ... the next one refused
    outage.succeeded()
    assert outage.down
    time.sleep(0.06)
    outage.succeeded()  # checkouts kept succeeding for `settle` seconds
    assert not outage.down
    assert caplog.text.count("database unavailable") == 1
    assert caplog.text.count("database available again") == 1
