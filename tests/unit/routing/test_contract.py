"""The pairing contract at build: a twin that drops a guard or a required input is refused,
other differences are warnings, a deliberate one is accepted on the twin and shown."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Security
from typer.testing import CliRunner

from gateway import ContractError, Gateway, MemoryFlagStore, Settings, differs_from_legacy
from gateway.cli.commands import cli
from gateway.routing import facts
from tests.apps.guarded import (
    API_KEY,
    USER_TOKEN,
    ItemIn,
    create_guarded_gateway,
    get_current_user,
    twin_router,
    verify_api_key,
)
from tests.conftest import started_client

pytestmark = pytest.mark.anyio

ROUTES = ["GET /api/items", "GET /api/items/search", "GET /api/items/{item_id}",
          "POST /api/items", "GET /api/me"]  # fmt: skip


@pytest.fixture
def sqlite_settings(tmp_path):
    return Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'g.db'}")


def build(settings, **twin):
    gateway = create_guarded_gateway(settings, twin_router(**twin), store=MemoryFlagStore())
    gateway.build()
    return gateway


def refusal(settings, **twin) -> str:
    with pytest.raises(ContractError) as raised:
        build(settings, **twin)
    return str(raised.value)


def test_a_twin_router_without_the_api_key_dependency_is_refused_naming_it(sqlite_settings):
    message = refusal(sqlite_settings, drop_api_key=True)
    assert message.startswith("5 async twins would accept requests their legacy route refuses")
    for key in ROUTES:
        assert f"      {key} (twin tests.apps.guarded.twin_router.<locals>." in message
    assert "legacy runs verify_api_key from a dependencies= list" in message
    assert "Fix: repeat dependencies=[Depends(verify_api_key)] on the twin's APIRouter" in message
    assert "legacy route refuses" in message.splitlines()[0]
    # One cause, said once: not again as its APIKeyHeader scheme, not once per route.
    assert "APIKeyHeader" not in message
    assert message.count("Fix:") == 1
    assert '@differs_from_legacy("why")' in message


def test_a_twin_with_the_dependency_pairs_silently(sqlite_settings, caplog):
    caplog.set_level(logging.INFO, logger="gateway.routing")
    gateway = build(sqlite_settings)
    assert {k: c.status for k, c in gateway.contracts.items()} == dict.fromkeys(ROUTES, "same")
    assert [r.getMessage() for r in caplog.records if "legacy route" in r.getMessage()] == []
    rows = {row["key"]: row for row in gateway.describe_routes()}
    assert rows["GET /api/me"]["contract"] == {"status": "same", "accepted": None,
                                              "differences": []}  # fmt: skip


def test_a_twin_missing_a_required_query_parameter_is_refused(sqlite_settings):
    message = refusal(sqlite_settings, drop_query=True)
    assert message.startswith("1 async twin would accept requests its legacy route refuses")
    assert "GET /api/items/search (twin" in message
    assert "legacy requires query 'q'; the twin does not take it" in message
    assert "Fix: take query 'q' in the twin, required as in legacy." in message


def test_a_twin_missing_the_oauth2_dependency_is_refused(sqlite_settings):
    message = refusal(sqlite_settings, drop_user=True)
    assert "GET /api/me (twin" in message
    assert "the security scheme OAuth2PasswordBearer (through get_current_user)" in message
    assert "Fix: depend on get_current_user" in message


def test_a_twin_with_another_response_model_is_a_warning_in_the_log_and_the_rows(
    sqlite_settings, caplog
):
    caplog.set_level(logging.WARNING, logger="gateway.routing")
    gateway = build(sqlite_settings, other_response=True)
    contract = gateway.contracts["GET /api/items/{item_id}"]
    assert contract.status == "warnings"
    assert [d.message for d in contract.differences] == [
        'response model differs at properties.price: legacy {"type": "number"}, the twin has none'
    ]
    warned = [r.getMessage() for r in caplog.records if r.name == "gateway.routing"]
    assert warned == [
        "1 twin(s) differ from their legacy route (gateway routes shows how): "
        "GET /api/items/{item_id}"
    ]


async def test_an_accepted_twin_serves_and_is_flagged_in_the_rows_and_the_admin_api(
    sqlite_settings, caplog
):
    reason = "the v2 API is public: the ingress checks keys"
    caplog.set_level(logging.WARNING, logger="gateway.routing")
    gateway = create_guarded_gateway(
        Settings.from_environ({}, database_url=sqlite_settings.database_url, default_mode="async"),
        twin_router(drop_api_key=True, accept=reason),
        store=MemoryFlagStore(),
    )
    app = gateway.build()
    async for client in started_client(app):
        served = await client.get("/api/items/7")  # no key: the twin serves, as accepted
        assert (served.status_code, served.headers["x-gateway-implementation"]) == (200, "async")
        listed = (await client.get("/_gateway/routes")).json()["routes"]
    row = next(r for r in listed if r["key"] == "GET /api/items/{item_id}")
    assert row["contract"]["status"] == "accepted"
    assert row["contract"]["accepted"] == reason
    assert [d["severity"] for d in row["contract"]["differences"]] == ["refused"]
    assert "verify_api_key" in row["contract"]["differences"][0]["message"]
    assert any("accepted by @differs_from_legacy" in r.getMessage() for r in caplog.records)


async def test_legacy_still_refuses_what_an_accepted_twin_serves(sqlite_settings):
    gateway = create_guarded_gateway(
        sqlite_settings, twin_router(drop_api_key=True, accept="public"), store=MemoryFlagStore()
    )
    async for client in started_client(gateway.build()):
        refused = await client.get("/api/items/7")
        allowed = await client.get("/api/items/7", headers={"X-API-Key": API_KEY})
    assert (refused.status_code, refused.headers["x-gateway-implementation"]) == (401, "legacy")
    assert allowed.status_code == 200


def test_accepting_one_twin_refuses_the_others_still(sqlite_settings):
    message = refusal(sqlite_settings, drop_api_key=True, accept_one="public item pages")
    assert message.startswith("4 async twins")
    assert "GET /api/items/{item_id}" not in message


def test_differs_from_legacy_needs_a_reason():
    with pytest.raises(TypeError, match="differs_from_legacy takes a reason"):
        differs_from_legacy("  ")
    with pytest.raises(TypeError, match=r'write @differs_from_legacy\("why'):

        @differs_from_legacy  # type: ignore[arg-type]
        async def forgot_the_reason(): ...


# -- smaller shapes, one difference each -------------------------------------------------


class LooseItem(ItemIn):
    price: float = 0.0


def contract_of(tmp_path, legacy: APIRouter | FastAPI, twin: APIRouter):
    gateway = Gateway(
        Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'g.db'}"),
        store=MemoryFlagStore(),
    )
    gateway.include_legacy(legacy)
    gateway.include_async(twin)
    gateway.build()
    (contract,) = gateway.contracts.values()
    return contract


def test_an_app_wide_dependency_of_the_legacy_app_is_a_guard_too(tmp_path):
    legacy = FastAPI(dependencies=[Depends(verify_api_key)])
    twin = APIRouter()
    legacy.get("/ping")(lambda: {"ok": True})

    @twin.get("/ping")
    async def ping():
        return {"ok": True}

    with pytest.raises(ContractError) as raised:
        contract_of(tmp_path, legacy, twin)
    assert "GET /ping (twin" in str(raised.value)
    assert "Fix: repeat dependencies=[Depends(verify_api_key)]" in str(raised.value)
    # Fixed as the message says: the include repeats it.
    gateway = Gateway(Settings.from_environ({}, database_url=f"sqlite:///{tmp_path / 'h.db'}"))
    gateway.include_legacy(legacy)
    gateway.include_async(twin, dependencies=[Depends(verify_api_key)])
    gateway.build()
    assert gateway.contracts["GET /ping"].status == "same"


def test_a_guard_the_twin_takes_as_a_parameter_or_hidden_from_the_schema_is_kept(tmp_path):
    legacy, twin = APIRouter(dependencies=[Depends(verify_api_key)]), APIRouter()
    legacy.get("/hidden", include_in_schema=False)(lambda: {})

    @twin.get("/hidden", include_in_schema=False)
    async def hidden(_: None = Depends(verify_api_key)):
        return {}

    assert contract_of(tmp_path, legacy, twin).status == "same"


def test_a_scope_the_twin_does_not_ask_for_is_refused(tmp_path):
    legacy, twin = APIRouter(), APIRouter()

    @legacy.delete("/items/{item_id}")
    def remove(item_id: int, user: str = Security(get_current_user, scopes=["items:write"])):
        return None

    @twin.delete("/items/{item_id}")
    async def remove_async(item_id: int, user: str = Depends(get_current_user)):
        return None

    with pytest.raises(ContractError, match=r"scopes \['items:write'\]; the twin does not ask"):
        contract_of(tmp_path, legacy, twin)


def test_a_required_input_made_optional_or_a_required_body_field_dropped_is_refused(tmp_path):
    legacy, twin = APIRouter(), APIRouter()

    @legacy.post("/items")
    def create(body: ItemIn, x_request_id: str = Header()):
        return None

    @twin.post("/items")
    async def create_async(body: LooseItem, x_request_id: str | None = Header(None)):
        return None

    with pytest.raises(ContractError) as raised:
        contract_of(tmp_path, legacy, twin)
    assert "legacy requires header 'x-request-id'; the twin makes it optional" in str(raised.value)
    assert "legacy requires the body field 'price'; the twin does not" in str(raised.value)


def test_inputs_and_types_only_one_side_has_are_warnings(tmp_path):
    legacy, twin = APIRouter(), APIRouter()

    @legacy.get("/items")
    def items(limit: int = 10, verbose: bool = False):
        return []

    @twin.get("/items", status_code=202)
    async def items_async(limit: str = "10", tenant: str = Header()):
        return []

    contract = contract_of(tmp_path, legacy, twin)
    assert contract.status == "warnings"
    assert sorted(d.message for d in contract.differences) == [
        "legacy accepts query 'verbose'; the twin ignores it",
        "query 'limit' differs at default: legacy 10, the twin \"10\"",
        "status code: legacy answers 200, the twin 202",
        "the twin requires header 'tenant', which legacy does not take: requests legacy "
        "serves get a 422 from the twin",
    ]


def test_a_body_embedded_differently_is_a_warning_not_a_refusal(tmp_path):
    legacy, twin = APIRouter(), APIRouter()

    @legacy.put("/note")
    def note(text: str = Body(embed=True)):
        return None

    @twin.put("/note")
    async def note_async(text: str = Body()):
        return None

    (difference,) = contract_of(tmp_path, legacy, twin).differences
    assert difference.severity == "warning"
    assert difference.message.startswith("request body differs at ")


def test_a_schema_fastapi_cannot_describe_still_checks_guards_and_inputs(
    sqlite_settings, monkeypatch, caplog
):
    def broken(**kwargs):
        raise ValueError("no JSON schema for SomeType\nmore detail")

    monkeypatch.setattr(facts, "get_openapi", broken)
    message = refusal(sqlite_settings, drop_query=True)
    assert "legacy requires query 'q'; the twin does not take it" in message
    assert next(r.getMessage() for r in caplog.records if r.name == "gateway.routing") == (
        "the pairing contract compares no types, bodies or response models: the OpenAPI "
        "document of these routes fails (ValueError: no JSON schema for SomeType)"
    )
    # Response models are compared on the document: without one, that difference is unseen.
    contracts = build(sqlite_settings, other_response=True).contracts
    assert contracts["GET /api/items/{item_id}"].status == "same"


def test_the_mark_may_go_above_the_route_decorator(tmp_path):
    legacy, twin = APIRouter(dependencies=[Depends(verify_api_key)]), APIRouter()
    legacy.get("/open")(lambda: {})

    @differs_from_legacy("the twin is public")
    @twin.get("/open")
    async def open_route():
        return {}

    contract = contract_of(tmp_path, legacy, twin)
    assert (contract.status, contract.accepted) == ("accepted", "the twin is public")


def test_model_fields_named_like_schema_words_are_compared():
    schemas = {"Doc": {"title": "Doc", "properties": {"title": {"type": "string"}}}}
    resolved = facts.resolve({"$ref": "#/components/schemas/Doc"}, schemas)
    assert resolved == {"properties": {"title": {"type": "string"}}}


# -- `gateway routes` ----------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def env(tmp_path):
    return {"GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}


def test_gateway_routes_flags_accepted_twins_in_its_table_and_json(env):
    listed = runner.invoke(cli, ["routes", "tests.apps.guarded:create_accepted_app"], env=env)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ROUTE", "IMPLEMENTATIONS", "KIND", "MODE", "CONTRACT"]
    row = next(line for line in lines if line.startswith("GET /api/me "))
    assert row.split()[-1] == "accepted"
    reason = "the v2 API is public: the ingress checks keys"
    assert (
        f"accepted: GET /api/me ({reason}): legacy runs verify_api_key from a dependencies= "
        "list (router, include, app or route); the twin does not"
    ) in lines
    as_json = runner.invoke(
        cli, ["routes", "tests.apps.guarded:create_accepted_app", "--json"], env=env
    )
    rows = {r["key"]: r for r in json.loads(as_json.stdout)}
    assert rows["GET /api/me"]["contract"]["status"] == "accepted"


def test_gateway_routes_shows_a_warning(env):
    listed = runner.invoke(cli, ["routes", "tests.apps.guarded:create_warning_app"], env=env)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if line.startswith("GET /api/items/{"))
    assert row.endswith("1 warning")
    assert "warning: GET /api/items/{item_id}: response model differs" in listed.stdout


def test_gateway_routes_of_a_refused_app_says_why_one_item_a_line(env):
    listed = runner.invoke(cli, ["routes", "tests.apps.guarded:create_refused_app"], env=env)
    assert listed.exit_code == 1
    lines = listed.output.splitlines()
    assert lines[0].startswith("gateway: 5 async twins would accept requests")
    assert "      GET /api/me (twin tests.apps.guarded.twin_router.<locals>.me)" in lines
    assert any(line.startswith("    Fix: repeat dependencies=[Depends(verify_api_key)]")
               for line in lines)  # fmt: skip


# -- the check runs at build only ----------------------------------------------------------


async def test_requests_never_run_the_contract_check(sqlite_settings, monkeypatch):
    gateway = create_guarded_gateway(sqlite_settings, twin_router(), store=MemoryFlagStore())
    app = gateway.build()

    def not_per_request(*args, **kwargs):
        raise AssertionError("the contract check ran during a request")

    monkeypatch.setattr(facts, "route_facts", not_per_request)
    monkeypatch.setattr(facts, "get_openapi", not_per_request)
    headers = {"X-API-Key": API_KEY, "Authorization": f"Bearer {USER_TOKEN}"}
    async for client in started_client(app):
        answers = [
            await client.get("/api/items", headers=headers),
            await client.post("/api/items", json={"name": "x", "price": 1}, headers=headers),
            await client.get("/api/me", headers=headers),
        ]
    assert [a.status_code for a in answers] == [200, 201, 200]
