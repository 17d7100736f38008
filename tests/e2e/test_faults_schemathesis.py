"""Fault: inputs generated from the example app's OpenAPI, sent to it in both modes at once.

Two example gateways on two fresh PostgreSQL databases, one serving every paired route by
its legacy side and one by its async side, get the same generated request in the same order
(so their data stays in step). Each pair of answers must agree on status and body, and
neither may be a 500. Deterministic: derandomized generation, a bounded number of examples.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager

import anyio.from_thread
import httpx
import pytest
import schemathesis
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from example import create_app
from gateway import Settings
from gateway._compat import SYNC_POSTGRES_DRIVER
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES = 100  # per operation that takes input; about 40 s for the example on this machine
SENT = ("headers", "params", "json", "content")  # what httpx takes of a case


@pytest.fixture(scope="module")
def databases(postgres_server: str) -> Iterator[dict[str, str]]:
    admin = create_engine(
        make_url(POSTGRES_ADMIN_URL).set(drivername=SYNC_POSTGRES_DRIVER),
        isolation_level="AUTOCOMMIT",
    )
    names = {mode: f"gateway_test_{mode}_{uuid.uuid4().hex[:8]}" for mode in ("legacy", "async")}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        base = make_url(postgres_server)
        yield {
            mode: base.set(database=name).render_as_string(hide_password=False)
            for mode, name in names.items()
        }
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Client:
    """A blocking face on an in-process httpx client (hypothesis calls the test synchronously)."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient):
        self.portal, self.client = portal, client

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        return self.portal.call(lambda: self.client.request(method, url, **kwargs))

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)

    def post(self, url: str, json: object) -> httpx.Response:
        return self.request("POST", url, json=json)


@asynccontextmanager
async def started(app) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture(scope="module")
def clients(databases: dict[str, str]) -> Iterator[dict[str, Client]]:
    with ExitStack() as stack:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
        opened: dict[str, Client] = {}
        for mode, url in databases.items():
            app = create_app(
                Settings.from_environ(
                    {}, database_url=url, default_mode=mode, pool_size=2, max_overflow=2
                )
            )
            client = stack.enter_context(portal.wrap_async_context_manager(started(app)))
            opened[mode] = Client(portal, client)
            for name in ("ada", "grace"):  # the same rows on both sides, so reads find some
                user = {"name": name, "email": f"{name}@example.com"}
                assert opened[mode].post("/users", json=user).status_code == 201
        yield opened


def operations(clients: dict[str, Client]) -> list:
    document = clients["legacy"].get("/openapi.json").json()
    return [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]


def test_legacy_and_async_answer_every_generated_input_alike(clients):
    checked: dict[str, int] = {}
    found = operations(clients)
    assert len(found) >= 7, [operation.label for operation in found]
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_alike(case) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            method, url = kwargs.pop("method"), kwargs.pop("url")
            sent = {k: v for k, v in kwargs.items() if k in SENT}
            if kwargs.get("cookies"):  # httpx wants cookies on the client; a header says the same
                cookie = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
                sent["headers"] = {**sent.get("headers", {}), "Cookie": cookie}
            answers = {
                mode: client.request(method, url, **sent) for mode, client in clients.items()
            }
            for mode, answer in answers.items():
                assert answer.status_code < 500, (mode, case.as_curl_command(), answer.text[:300])
            legacy, migrated = answers["legacy"], answers["async"]
            assert (legacy.status_code, _body(legacy)) == (
                migrated.status_code,
                _body(migrated),
            ), case.as_curl_command()
            checked[operation.label] = checked.get(operation.label, 0) + 1

        answers_alike()
    print(f"\nschemathesis differential: {sum(checked.values())} inputs, {checked}")
    assert set(checked) == {operation.label for operation in found}


def _body(response) -> object:
    try:
        return response.json()
    except ValueError:
        return response.text
