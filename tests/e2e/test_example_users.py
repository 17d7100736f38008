"""The example users service: every route, both implementations, same assertions."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from example import SEED_USERS, create_gateway, prepare_database
from gateway import Settings
from legacy_routes.database import make_engine
from legacy_routes.main import create_legacy_app
from legacy_routes.models import Base
from legacy_routes.schemas import MAX_ID
from tests.conftest import POSTGRES_ADMIN_URL, started_client

pytestmark = pytest.mark.anyio

MODES = ["legacy", "async"]


@pytest.fixture
async def gateway(settings: Settings):
    gw = create_gateway(settings)
    gw.on_startup(lambda g: prepare_database(g, seed_count=len(SEED_USERS)))
    gw.build()
    return gw


@pytest.fixture
async def client(gateway):
    async for client in started_client(gateway.app):
        yield client


@pytest.fixture(params=MODES)
def mode(request, gateway) -> str:
    for key in gateway.modes:
        gateway.modes.set_mode(key, request.param)
    return request.param


async def test_list_users(client, mode):
    response = await client.get("/users")
    assert response.status_code == 200
    assert [u["name"] for u in response.json()] == [name for name, _ in SEED_USERS]
    assert response.json()[0] == {"id": 1, "name": "ada", "email": "ada@example.com"}


async def test_first_user(client, mode):
    response = await client.get("/users/first")
    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "ada", "email": "ada@example.com"}


async def test_user_by_name(client, mode):
    response = await client.get("/users/by-name/grace")
    assert response.json() == {"id": 2, "name": "grace", "email": "grace@example.com"}
    missing = await client.get("/users/by-name/nobody")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No user named 'nobody'"}


async def test_read_user(client, mode):
    response = await client.get("/users/3")
    assert response.status_code == 200
    assert response.json() == {"id": 3, "name": "alan", "email": "alan@example.com"}
    missing = await client.get("/users/999")
    assert (missing.status_code, missing.json()) == (404, {"detail": "User 999 not found"})


async def test_read_user_validation_error(client, mode):
    response = await client.get("/users/not-a-number")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "user_id"]


@pytest.mark.parametrize("user_id", ["0", "-1", str(MAX_ID + 1), "99999999999999999999"])
async def test_user_id_outside_postgres_integer_is_422(client, mode, user_id):
    for method, body in [("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)]:
        response = await client.request(method, f"/users/{user_id}", json=body)
        assert response.status_code == 422, (method, user_id, response.text)
        assert response.json()["detail"][0]["loc"] == ["path", "user_id"]


async def test_largest_user_id_is_a_plain_404(client, mode):
    response = await client.get(f"/users/{MAX_ID}")
    assert (response.status_code, response.json()) == (404, {"detail": f"User {MAX_ID} not found"})


async def test_nul_in_text_is_422_naming_the_field(client, mode):
    by_name = await client.get("/users/by-name/a%00b")
    assert by_name.status_code == 422, by_name.text
    assert by_name.json()["detail"][0]["loc"] == ["path", "name"]
    created = await client.post("/users", json={"name": "a\x00b", "email": "e\x00@example.com"})
    assert created.status_code == 422, created.text
    locs = {tuple(e["loc"]) for e in created.json()["detail"]}
    assert locs == {("body", "name"), ("body", "email")}
    renamed = await client.patch("/users/1", json={"name": "\x00"})
    assert renamed.status_code == 422, renamed.text
    assert renamed.json()["detail"][0]["loc"] == ["body", "name"]
    assert (await client.get("/users/1")).json()["name"] == "ada"


async def test_create_user(client, mode):
    response = await client.post("/users", json={"name": "linus", "email": "l@example.com"})
    assert response.status_code == 201
    assert response.json() == {"id": 6, "name": "linus", "email": "l@example.com"}
    again = await client.post("/users", json={"name": "linus", "email": "l@example.com"})
    assert (again.status_code, again.json()) == (409, {"detail": "User 'linus' exists"})
    bad = await client.post("/users", json={"name": ""})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("body", "name"), ("body", "email")}


async def test_rename_user(client, mode):
    response = await client.patch("/users/2", json={"name": "hopper"})
    assert response.status_code == 200
    assert response.json() == {"id": 2, "name": "hopper", "email": "grace@example.com"}
    assert (await client.get("/users/by-name/hopper")).json()["id"] == 2
    missing = await client.patch("/users/999", json={"name": "x"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "User 999 not found"})
    clash = await client.patch("/users/2", json={"name": "ada"})
    assert (clash.status_code, clash.json()) == (409, {"detail": "User 'ada' exists"})


async def test_delete_user(client, mode):
    response = await client.delete("/users/5")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get("/users/5")).status_code == 404
    again = await client.delete("/users/5")
    assert (again.status_code, again.json()) == (404, {"detail": "User 5 not found"})


async def test_both_modes_give_identical_responses(client, gateway):
    requests = [
        ("GET", "/users", None),
        ("GET", "/users/first", None),
        ("GET", "/users/by-name/alan", None),
        ("GET", "/users/4", None),
        ("GET", "/users/404", None),
        ("GET", "/users/x", None),
        ("POST", "/users", {"name": "grace", "email": "dup@example.com"}),
        ("POST", "/users", {"name": 1}),
        ("PATCH", "/users/999", {"name": "nobody"}),
        ("DELETE", "/users/999", None),
        ("GET", f"/users/{MAX_ID + 1}", None),
        ("GET", "/users/0", None),
        ("GET", "/users/by-name/%00", None),
        ("POST", "/users", {"name": "nul\x00", "email": "n@example.com"}),
        ("PATCH", f"/users/{MAX_ID + 1}", {"name": "\x00"}),
        ("DELETE", "/users/-5", None),
    ]
    seen = {}
    for mode in MODES:
        for key in gateway.modes:
            gateway.modes.set_mode(key, mode)
        seen[mode] = []
        for method, path, body in requests:
            response = await client.request(method, path, json=body)
            seen[mode].append(
                (response.status_code, response.headers["content-type"], response.text)
            )
    assert seen["legacy"] == seen["async"]


async def test_openapi_lists_each_path_once(client):
    schema = (await client.get("/openapi.json")).json()
    assert sorted(schema["paths"]) == [
        "/users",
        "/users/by-name/{name}",
        "/users/first",
        "/users/{user_id}",
    ]
    assert sorted(schema["paths"]["/users/{user_id}"]) == ["delete", "get", "patch"]
    assert schema["info"]["title"] == "Users service"


# -- the legacy app on its own: no gateway import, its own engine, closed by its lifespan --


def test_legacy_app_imports_nothing_from_the_gateway():
    code = (
        "import sys, legacy_routes.main, legacy_routes.items\n"
        "legacy_routes.main.create_legacy_app('sqlite:///unused.db', with_items=True)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gateway', 'example')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        (
            {"DATABASE_URL": "postgresql://app@db/app", "GATEWAY_DATABASE_URL": "sqlite:///g.db"},
            "postgresql+psycopg://app@db/app",
        ),
        ({"GATEWAY_DATABASE_URL": "postgres://gw@db/gw"}, "postgresql+psycopg://gw@db/gw"),
        ({}, "sqlite:///./gateway.db"),
    ],
)
def test_legacy_database_url_comes_from_its_own_variable_then_the_gateways(environ, url):
    names = ("DATABASE_URL", "GATEWAY_DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in names} | environ
    code = "from legacy_routes.database import engine; print(engine.url)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == url


async def test_legacy_app_alone_serves_from_its_own_engine(database_url):
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    app = create_legacy_app(database_url)
    async for client in started_client(app):
        created = await client.post("/users", json={"name": "ada", "email": "ada@example.com"})
        assert created.status_code == 201, created.text
        assert (await client.get("/users/1")).json() == created.json()
        assert (await client.get(f"/users/{MAX_ID + 1}")).status_code == 422
        if database_url.startswith("postgresql"):
            assert _connections(database_url) >= 1  # the legacy pool keeps its connection
    if database_url.startswith("postgresql"):
        _wait_for_no_connections(database_url)


@pytest.mark.postgres
async def test_stopping_the_gateway_closes_the_legacy_pool(postgres_url):
    settings = Settings.from_environ({}, database_url=postgres_url, pool_size=2)
    gw = create_gateway(settings)
    gw.on_startup(lambda g: prepare_database(g, seed_count=len(SEED_USERS)))
    gw.build()
    gw.modes.set_mode("GET /users/{user_id}", "legacy")
    async for client in started_client(gw.app):
        assert (await client.get("/users/1")).json()["name"] == "ada"
    _wait_for_no_connections(postgres_url)


def _connections(database_url: str) -> int:
    """Sessions open on the test database, counted from the admin database."""
    name = make_url(database_url).database
    admin = create_engine(
        make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg"), poolclass=NullPool
    )
    try:
        with admin.connect() as connection:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name")
            return int(connection.execute(query, {"name": name}).scalar_one())
    finally:
        admin.dispose()


def _wait_for_no_connections(database_url: str) -> None:
    # A closed connection's backend leaves pg_stat_activity a moment after the socket closes;
    # the deadline only stops a hang.
    deadline = time.monotonic() + 10
    while (count := _connections(database_url)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert count == 0, f"{count} connections still open on the database after shutdown"
