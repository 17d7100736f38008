"""The example users service: every route, both implementations, same assertions."""

from __future__ import annotations

import pytest

from gateway import Settings
from gateway.example import SEED_USERS, create_gateway, prepare_database
from tests.conftest import started_client

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
