"""Log lines: one per notable event, text or JSON, never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi import APIRouter

from example import create_gateway
from gateway import Gateway, Settings
from gateway.logging import FIELDS, configure_logging, log_event, log_started
from tests.conftest import started_client

TOKEN = "ops-token-0123456789abcdef"
PASSWORD = "db-pass-0123456789"


@pytest.fixture
def restore_gateway_logger():
    logger = logging.getLogger("gateway")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def paired_gateway(settings: Settings) -> Gateway:
    legacy, migrated = APIRouter(), APIRouter()

    @legacy.get("/things/{thing_id}")
    def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    @migrated.get("/things/{thing_id}")
    async def thing_async(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    gw = Gateway(settings)
    gw.include_legacy(legacy)
    gw.include_async(migrated)
    gw.build()
    return gw


def test_json_lines_carry_the_event_fields(restore_gateway_logger):
    stream = io.StringIO()
    configure_logging(Settings.from_environ({}, log_json=True), stream=stream)
    log_event("route flipped", route="GET /x", old="legacy", new="async")
    line = json.loads(stream.getvalue().strip())
    assert line["message"] == "route flipped"
    assert (line["route"], line["old"], line["new"]) == ("GET /x", "legacy", "async")
    assert line["level"] == "info" and line["logger"] == "gateway"
    assert line["time"].endswith("Z")


def test_text_lines_are_one_line_with_key_values(restore_gateway_logger):
    stream = io.StringIO()
    configure_logging(Settings.from_environ({}), stream=stream)
    log_event("route flipped", route="GET /users/{user_id}", old="legacy", new="canary 10%")
    (line,) = stream.getvalue().splitlines()
    assert " INFO gateway route flipped route='GET /users/{user_id}' old=legacy " in line
    assert line.endswith("new='canary 10%'")


def test_secrets_never_reach_the_output(restore_gateway_logger):
    settings = Settings.from_environ(
        {},
        admin_tokens=f"ops={TOKEN}",
        database_url=f"postgresql://app:{PASSWORD}@127.0.0.1:1/app",
        log_json=True,
    )
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    logging.getLogger("gateway.auth").warning("bad header %s", f"Bearer {TOKEN}")
    log_event("oops", detail=f"url postgresql://app:{PASSWORD}@db/app", nested={"t": TOKEN})
    log_started(paired_gateway(settings).startup_summary())
    output = stream.getvalue()
    assert TOKEN not in output and PASSWORD not in output
    assert output.count("***") >= 4
    started = json.loads(output.splitlines()[-1])
    assert started["database"] == "postgresql://app:***@127.0.0.1:1/app"


@pytest.mark.anyio
async def test_startup_flip_and_stop_lines(sqlite_url, caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    gw = create_gateway(Settings.from_environ({}, database_url=sqlite_url, threadpool_size=12))
    gw.build()
    async for _client in started_client(gw.app):
        gw.modes.set_mode("GET /users/{user_id}", "canary", 25)
        gw.modes.set_mode("GET /users/{user_id}", "canary", 25)  # no change: no line
    records = [r for r in caplog.records if r.name == "gateway"]
    messages = [r.getMessage() for r in records]
    assert messages == [
        "legacy concurrency from the legacy app's engine pool",  # the example's engine: read
        "gateway started",
        "route flipped",
        "gateway stopped: pools closed",
    ]
    sized = getattr(records.pop(0), FIELDS)
    assert sized["legacy_concurrency"] > 0 and sized["engine"].startswith("sqlite")
    started = getattr(records[0], FIELDS)
    assert started["sync_engine"] == "sqlite+pysqlite"
    assert started["async_engine"] == "sqlite+aiosqlite"
    assert (started["pool_size"], started["threadpool"]) == (20, 12)
    assert started["modes"]["GET /users/{user_id}"] == "legacy"
    assert started["notes"] == gw.notes and len(started["notes"]) == 1
    flipped = getattr(records[1], FIELDS)
    assert (flipped["route"], flipped["old"], flipped["new"]) == (
        "GET /users/{user_id}",
        "legacy",
        "canary 25%",
    )


@pytest.mark.parametrize("log_json", [False, True])
def test_query_string_tokens_never_reach_uvicorn_access_lines(log_json, restore_gateway_logger):
    from uvicorn.logging import AccessFormatter

    access = logging.getLogger("uvicorn.access")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        settings = Settings.from_environ({}, admin_tokens=f"ops={TOKEN}", log_json=log_json)
        configure_logging(settings, stream=io.StringIO())
        unknown = "not-a-configured-token-42"
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/users?name=ada&token={unknown}&access_token={TOKEN}&API_KEY={unknown}",
            "1.1",
            200,
        )
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    line = stream.getvalue()
    assert unknown not in line and TOKEN not in line
    assert "/users?name=ada&token=***&access_token=***&API_KEY=***" in line
    assert "HTTP/1.1" in line and " 200" in line  # the rest of the line is kept
