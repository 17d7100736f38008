"""--check does not trust annotations for values a dependency provides: such a function is
sent through the app, or reported unchecked with why, never "verified" on a made-up value;
the requests sent through the app are generated from its OpenAPI schema."""

from __future__ import annotations

import sys

import pytest
from fastapi import Depends, FastAPI, Header
from pydantic import BaseModel

from gateway.translate.check.apps import dependency_parameters
from gateway.translate.check.requests import MAX_REQUESTS, Request, route_requests
from gateway.translate.check.runner import check_modules
from tests.unit.translate.written import load_code

pytestmark = [pytest.mark.anyio]

LEGACY = """
from fastapi import Depends
from sqlalchemy.orm import Session


def current_user_id() -> int:
    return 7


def get_db():
    yield None


def who(db: Session = Depends(get_db), current_user: int = Depends(current_user_id)) -> int:
    return current_user.id
"""

TWIN = """
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from check_dependencies_legacy import current_user_id


async def who(db: AsyncSession, current_user: int = Depends(current_user_id)) -> int:
    return current_user.id
"""


async def test_a_dependency_provided_value_is_not_generated_from_its_annotation(
    tmp_path, sqlite_url
):
    legacy = load_code(LEGACY, tmp_path, "check_dependencies_legacy")
    twin = load_code(TWIN, tmp_path, "check_dependencies_twin")
    try:
        [verdict] = await check_modules(legacy, twin, sqlite_url)
    finally:
        del sys.modules[legacy.__name__], sys.modules[twin.__name__]
    # Given 0 from `int`, both sides would raise the same AttributeError: "verified".
    assert verdict.status == "unchecked", str(verdict)
    assert verdict.detail.startswith("current_user (from current_user_id) come from dependencies")
    assert "no FastAPI app found at check_dependencies_legacy" not in verdict.detail
    assert "give it with --app" in verdict.detail or "not a route" in verdict.detail


def test_dependency_parameters_leave_out_the_session_and_plain_values():
    def provider() -> int:
        return 1

    def route(db: object = Depends(provider), user: int = Depends(provider), page: int = 0):
        return db, user, page

    assert dependency_parameters(route, "db") == {"user": "provider"}


class Item(BaseModel):
    name: str
    price: int


def test_requests_come_from_the_openapi_schema_and_find_rows():
    app = FastAPI()

    @app.put("/items/{item_id}")
    def put_item(item_id: int, item: Item, x_user: int = Header(), q: str | None = None):
        return item

    schema = app.openapi()
    operation = schema["paths"]["/items/{item_id}"]["put"]
    samples = {"id": [2, 1], "name": ["lamp"]}
    requests = list(
        route_requests("PUT", "/items/{item_id}", operation, schema["components"], samples)
    )
    assert 1 < len(requests) <= MAX_REQUESTS
    assert requests[0] == Request(
        "PUT", "/items/2", {}, {"x-user": "2"}, {"name": "made-name-0", "price": 1}
    )
    # Then each parameter departs from its first value in turn: another row, none (0),
    # an optional query parameter given, a body repeating an existing name.
    assert [str(r) for r in requests[1:5]] == [
        "PUT /items/2 [x-user: 2] {'name': 'lamp', 'price': 2}",
        "PUT /items/2 [x-user: 1] {'name': 'made-name-0', 'price': 1}",
        "PUT /items/2?q=no-such-value [x-user: 2] {'name': 'made-name-0', 'price': 1}",
        "PUT /items/1 [x-user: 2] {'name': 'made-name-0', 'price': 1}",
    ]
