"""The fast path reaches the dependency shapes real apps have (bench/apps/real_shapes.py).

A structural fact, not a timing: which `def` routes the gateway serves with one hand-off
(two behind an async auth dependency on a sync session), and why each other one keeps
FastAPI's handler, as `gateway routes` says it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from bench.apps import real_shapes
from bench.apps.real_shapes import TOKEN, create_app
from gateway import Gateway, Settings
from gateway._compat import SYNC_POSTGRES_DRIVER
from gateway.cli.commands import cli
from gateway.legacy.fast_path import LegacyApp
from tests.conftest import started_client

DEF_ROUTES = (
    real_shapes.AUTH_ROUTES
    + real_shapes.CLASS_ROUTES
    + real_shapes.PLAIN_ROUTES
    + real_shapes.FORM_ROUTES
)


def _gateway(legacy: FastAPI, database_url: str) -> Gateway:
    gateway = Gateway(
        Settings.from_environ({}, database_url=database_url), registry=CollectorRegistry()
    )
    gateway.include_legacy(legacy)
    gateway.build()
    return gateway


def shapes_gateway() -> FastAPI:
    """For `gateway routes`: the app on an engine that never connects."""
    legacy, _ = create_app("sqlite:///never-created.db")
    app = _gateway(legacy, "sqlite:///never-created.db").app
    assert app is not None
    return app


def test_at_least_80_percent_of_the_def_routes_take_the_fast_path() -> None:
    legacy, engine = create_app("sqlite:///never-created.db")
    gateway = _gateway(legacy, "sqlite:///never-created.db")
    engine.dispose()
    legacy_sides = [e.legacy for e in gateway.entries.values() if e.legacy is not None]
    defs = [s for s in legacy_sides if not s.path.startswith("/async")]
    fast = [s for s in defs if isinstance(s.app, LegacyApp)]
    assert len(defs) == DEF_ROUTES == 226
    assert len(fast) / len(defs) >= 0.80
    assert len(fast) == DEF_ROUTES - real_shapes.FORM_ROUTES  # 222 of 226: 98 %
    kept = {s.path: s.fallback for s in defs if not isinstance(s.app, LegacyApp)}
    assert kept == {
        f"/forms{i}": "the body is a form or has files" for i in range(real_shapes.FORM_ROUTES)
    }


def test_gateway_routes_names_why_each_other_route_keeps_fastapis_handler(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = "tests.unit.legacy.test_real_shapes:shapes_gateway"
    result = CliRunner().invoke(cli, ["routes", "--verbose", target])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    forms = {
        f"note: POST /forms{i} runs on FastAPI's own handler: the body is a form or has files"
        for i in range(real_shapes.FORM_ROUTES)
    }
    assert forms <= set(notes)
    async_notes = [n for n in notes if n.startswith("note: GET /async")]
    assert len(async_notes) == real_shapes.ASYNC_ROUTES
    assert len(notes) == real_shapes.FORM_ROUTES + real_shapes.ASYNC_ROUTES


async def _answers(app: Any) -> list[tuple[int, Any, str | None, str | None]]:
    found = []
    bearer = {"authorization": f"Bearer {TOKEN}"}
    async for client in started_client(app):
        requests: list[tuple[str, dict[str, str]]] = [
            ("/api/things0/7", bearer),
            ("/api/things160/8", bearer),
            ("/api/things1/9", {}),
            ("/api/things1/9", {"authorization": "Bearer wrong"}),
            ("/api/things1/x", bearer),
            ("/cached0/docs0", {}),
            ("/cached1/docs53", bearer),
            ("/cached1/docs53", {}),
            ("/plain6", {}),
        ]
        for path, headers in requests:
            response: httpx.Response = await client.get(path, headers=headers)
            found.append(
                (
                    response.status_code,
                    response.json(),
                    response.headers.get("last-modified"),
                    response.headers.get("www-authenticate"),
                )
            )
    return found


@pytest.mark.anyio
@pytest.mark.postgres
async def test_the_shapes_answer_as_the_app_alone_on_postgres(postgres_url: str) -> None:
    # The legacy app brings its own sync driver, as a real one does.
    url = make_url(postgres_url).set(drivername=SYNC_POSTGRES_DRIVER)
    url = url.render_as_string(hide_password=False)
    alone_app, alone_engine = create_app(url)
    composed_legacy, composed_engine = create_app(url)
    try:
        alone = await _answers(alone_app)
        gateway = _gateway(composed_legacy, postgres_url)
        composed = await _answers(gateway.app)
    finally:
        alone_engine.dispose()
        composed_engine.dispose()
    assert composed == alone
    assert alone[0] == (
        200,
        {"route": 0, "thing": 7, "user": "ada", "same_session": True},
        None,
        None,
    )
    assert alone[2][0] == alone[3][0] == 401 and alone[3][3] == "Bearer"
    assert alone[4][0] == 422
    assert alone[5][2] == alone[6][2] == "Fri, 02 Jan 2026 03:04:05 GMT"
    assert alone[7][0] == 401
