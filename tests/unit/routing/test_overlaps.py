"""Pairing diagnostics: templates that overlap across the two sides but do not pair."""

from __future__ import annotations

import logging

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from typer.testing import CliRunner

from gateway import Gateway, MemoryFlagStore, Settings
from gateway.cli.commands import cli


def build(tmp_path, legacy: APIRouter, migrated: APIRouter) -> Gateway:
    settings = Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'gw.db'}")
    gateway = Gateway(settings, store=MemoryFlagStore())
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    gateway.build()
    return gateway


def renamed_parameter():
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/books/{book_id}")
    def read_book(book_id: int):
        return {"side": "legacy"}

    @migrated.get("/books/{id}")
    async def read_book_async(id: int):
        return {"side": "async"}

    return legacy, migrated


def test_same_path_apart_from_parameter_names_is_reported_with_the_fix(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="gateway"):
        gateway = build(tmp_path, *renamed_parameter())
    assert not gateway.entries["GET /books/{book_id}"].paired
    [note] = gateway.notes
    assert note.startswith(
        "GET /books/{book_id} (legacy, "
        "tests.unit.routing.test_overlaps.renamed_parameter.<locals>.read_book)"
        " and GET /books/{id} (async, "
    )
    assert "differ only in parameter names, so they do not pair and legacy serves" in note
    assert note.endswith("rename the async route's path to /books/{book_id} (and its "
                         "parameters to match) to pair them")  # fmt: skip
    assert [r.getMessage() for r in caplog.records if r.name == "gateway"] == [note]


def test_a_different_convertor_is_not_the_same_path(tmp_path):
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/files/{name:path}")
    def a_file(name: str):
        return name

    @migrated.get("/files/{name_}")
    async def a_file_async(name_: str):
        return name_

    assert build(tmp_path, legacy, migrated).notes == []


def test_an_async_static_path_behind_a_legacy_template(tmp_path):
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/books/{book_id}")
    def read_book(book_id: int):
        return {"side": "legacy"}

    @migrated.get("/books/{book_id}")
    async def read_book_async(book_id: int):
        return {"side": "async"}

    @migrated.get("/books/latest")  # after its template's twin: placed after the template
    async def latest_book():
        return {"side": "async"}

    gateway = build(tmp_path, legacy, migrated)
    [note] = gateway.notes
    assert note.startswith("GET /books/latest (async, tests.unit.routing.test_overlaps.")
    assert "is never reached: GET /books/{book_id} (legacy+async) comes first" in note
    assert "declare it in its router before the async twin of GET /books/{book_id}" in note


@pytest.mark.anyio
async def test_the_fix_it_names_works(tmp_path):
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/books/{book_id}")
    def read_book(book_id: str):
        return {"side": "legacy"}

    @migrated.get("/books/latest")  # declared first, as the note says
    async def latest_book():
        return {"side": "async", "latest": True}

    @migrated.get("/books/{book_id}")
    async def read_book_async(book_id: str):
        return {"side": "async"}

    gateway = build(tmp_path, legacy, migrated)
    assert gateway.notes == []
    assert gateway.app is not None
    async with (
        LifespanManager(gateway.app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gw"
        ) as client,
    ):
        assert (await client.get("/books/latest")).json() == {"side": "async", "latest": True}
        assert (await client.get("/books/7")).json() == {"side": "legacy"}


def test_a_legacy_static_path_behind_an_async_only_template(tmp_path):
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/authors")
    def authors():
        return []

    @legacy.get("/books/latest")
    def latest_book():
        return {"side": "legacy"}

    @migrated.get("/books/{slug}")  # async-only, placed before the next paired route
    async def book_by_slug(slug: str):
        return {"side": "async"}

    @migrated.get("/authors")
    async def authors_async():
        return []

    gateway = build(tmp_path, legacy, migrated)
    [note] = gateway.notes
    assert note.startswith(
        "GET /books/latest (legacy) no longer answers as the legacy app alone: the "
        "async-only GET /books/{slug} (async, tests.unit.routing.test_overlaps."
    )


def test_overlaps_within_one_side_are_the_apps_own(tmp_path):
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/books/{book_id}")
    def read_book(book_id: str):
        return {}

    @legacy.get("/books/latest")  # the legacy app alone never reaches it either
    def latest_book():
        return {}

    @migrated.get("/books/{book_id}")
    async def read_book_async(book_id: str):
        return {}

    assert build(tmp_path, legacy, migrated).notes == []


@pytest.fixture
def overlapping_app(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'gw.db'}")
    return "tests.unit.routing.test_overlaps:create_overlapping_app"


def create_overlapping_app():
    gateway = Gateway(store=MemoryFlagStore())
    legacy, migrated = renamed_parameter()
    gateway.include_legacy(legacy)
    gateway.include_async(migrated)
    return gateway.build()


def test_gateway_routes_prints_the_notes(overlapping_app):
    result = CliRunner().invoke(cli, ["routes", overlapping_app])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1
    assert "differ only in parameter names" in notes[0]
