"""The gateway's tables kept out of the app's migrations: a schema of their own on PostgreSQL,
tables an earlier version left in `public` kept in use, or another database altogether."""

from __future__ import annotations

import logging

import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, text
from sqlalchemy.engine import make_url

from gateway import Gateway, Settings
from gateway._compat import SYNC_POSTGRES_DRIVER
from gateway.flags.store import SqlFlagStore
from gateway.flags.table import Flag
from gateway.modes import Mode

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ASYNC = Flag(Mode.ASYNC, 100)
LEGACY = Flag(Mode.LEGACY, 0)
TABLES = {"gateway_flags", "gateway_flag_history"}


def sync_engine(url: str):
    return create_engine(make_url(url).set(drivername=SYNC_POSTGRES_DRIVER))


def app_tables(url: str) -> None:
    """The app's own table, made the way its migrations would."""
    engine = sync_engine(url)
    metadata = MetaData()
    Table("books", metadata, Column("id", Integer, primary_key=True), Column("title", String))
    metadata.create_all(engine)
    engine.dispose()


async def flip(store: SqlFlagStore, key: str = "GET /books") -> None:
    await store.prepare()
    await store.change(key, ASYNC, actor="test", reason="", default=LEGACY)


async def test_alembic_style_reflection_of_the_app_schema_does_not_see_the_flag_tables(
    postgres_url,
):
    app_tables(postgres_url)
    store = SqlFlagStore(postgres_url)
    try:
        await flip(store)
        assert store.where.endswith("(schema gateway)")
    finally:
        await store.aclose()
    engine = sync_engine(postgres_url)
    try:
        reflected = MetaData()
        reflected.reflect(bind=engine, schema=None)  # what autogenerate compares against
        assert set(reflected.tables) == {"books"}
        assert set(inspect(engine).get_table_names(schema="gateway")) == TABLES
    finally:
        engine.dispose()


async def test_tables_an_earlier_version_left_in_public_stay_in_use_and_say_how_to_move(
    postgres_url, caplog
):
    old = SqlFlagStore(postgres_url, schema=None)  # where earlier versions made them
    try:
        await flip(old)
    finally:
        await old.aclose()
    with caplog.at_level(logging.WARNING, logger="gateway.flags"):
        store = SqlFlagStore(postgres_url)
        try:
            assert (await store.load())["GET /books"].flag == ASYNC
            await flip(store, "GET /authors")
            assert store.schema == "public"
        finally:
            await store.aclose()
    [line] = [r.getMessage() for r in caplog.records if "ALTER TABLE" in r.getMessage()]
    assert "the flag tables are in schema 'public'" in line
    engine = sync_engine(postgres_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        assert inspect(engine).get_table_names(schema="gateway") == []
        # Moved as the line says, the next store finds them in their own schema.
        statements = line.split("gateway runs: ")[1]
        with engine.begin() as connection:
            for statement in statements.split(";"):
                connection.execute(text(statement))
    finally:
        engine.dispose()
    caplog.clear()
    moved = SqlFlagStore(postgres_url)
    try:
        assert set(await moved.load()) == {"GET /books", "GET /authors"}
        assert moved.schema == "gateway"
        assert [len(await moved.history())] == [2]
    finally:
        await moved.aclose()
    assert not [r for r in caplog.records if "ALTER TABLE" in r.getMessage()]


async def test_an_empty_schema_setting_means_the_search_path(postgres_url):
    settings = Settings.from_environ({}, database_url=postgres_url, flags_schema="")
    store = SqlFlagStore.from_settings(settings)
    try:
        await flip(store)
    finally:
        await store.aclose()
    engine = sync_engine(postgres_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


async def test_flags_database_url_keeps_the_app_database_free_of_gateway_tables(
    postgres_url, tmp_path
):
    flags_url = f"sqlite:///{tmp_path / 'flags.db'}"
    settings = Settings.from_environ(
        {}, database_url=postgres_url, flags_database_url=flags_url, pool_size=2
    )
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/books")
    def books():
        return []

    @migrated.get("/books")
    async def books_async():
        return []

    gateway = Gateway(settings)
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    async with LifespanManager(gateway.build()):
        assert gateway.follower is not None
    engine = sync_engine(postgres_url)
    try:
        found = inspect(engine)
        everywhere = {
            name
            for schema in found.get_schema_names()
            if schema not in ("information_schema", "pg_catalog")
            for name in found.get_table_names(schema=schema)
        }
        assert everywhere.isdisjoint(TABLES), everywhere
    finally:
        engine.dispose()
    flags_engine = create_engine(flags_url)
    try:
        assert set(inspect(flags_engine).get_table_names()) >= TABLES
    finally:
        flags_engine.dispose()
