"""A tutorial-shaped app (tests/apps/tutorial/main.py on crud.py) and its own tests, run
against the legacy app and against the app made of `gateway translate`'s twins (no
hand-written twin), on PostgreSQL: the same tests pass on both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gateway import get_async_session
from gateway.translate.files import translate_files
from gateway.urls import derive_urls
from tests.apps.tutorial.database import SessionLocal
from tests.apps.tutorial.main import create_app
from tests.apps.tutorial.models import Base, seed
from tests.unit.translate.written import imported_translation

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.LegacyAPIWarning"),  # legacy Query.get
]

TUTORIAL = Path(__file__).resolve().parents[3] / "tests" / "apps" / "tutorial"


@pytest.fixture(scope="module")
def twin_main(tmp_path_factory) -> Iterator[Any]:
    translations = translate_files([TUTORIAL / "crud.py", TUTORIAL / "main.py"], packaged=True)
    assert [r.not_translated for r in translations] == [[], [], []]
    main = next(r for r in translations if r.module.endswith(".main"))
    assert len(main.translated) == 5 and main.fallbacks == []  # every route, none falls back
    directory = tmp_path_factory.mktemp("tutorial-twin")
    with imported_translation(translations, directory, "tutorial.main") as main_module:
        yield main_module


@pytest.fixture(params=["legacy", "translated"])
async def client(request, postgres_url, twin_main) -> AsyncIterator[httpx.AsyncClient]:
    sync_url, async_url = derive_urls(postgres_url)
    engine = create_engine(sync_url, poolclass=NullPool)
    async_engine = create_async_engine(async_url, poolclass=NullPool)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed(session)
    SessionLocal.configure(bind=engine)

    async def async_session() -> Any:
        async with AsyncSession(async_engine, expire_on_commit=False) as session:
            yield session

    if request.param == "legacy":
        app = create_app()
    else:
        app = twin_main.create_app()
        app.dependency_overrides[get_async_session] = async_session
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        SessionLocal.configure(bind=None)
        await async_engine.dispose()
        engine.dispose()


# The app's own tests.


async def test_create_user_then_read_it_with_no_items(client):
    created = await client.post("/users/", json={"email": "barbara@example.com", "name": "b"})
    assert created.status_code == 200, created.text
    user = created.json()
    assert user["email"] == "barbara@example.com" and user["items"] == []
    read = await client.get(f"/users/{user['id']}")
    assert read.json() == user


async def test_a_registered_email_is_refused(client):
    response = await client.post("/users/", json={"email": "ada@example.com", "name": "again"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Email already registered"}


async def test_users_list_their_items_with_each_owner(client):
    response = await client.get("/users/", params={"limit": 2})
    assert response.status_code == 200, response.text
    ada, grace = response.json()
    assert [i["title"] for i in ada["items"]] == ["lamp", "desk", "pen"]
    assert {i["owner"]["name"] for i in ada["items"]} == {"ada"}
    assert grace["items"][0]["owner"] == {"id": grace["id"], "name": "grace"}


async def test_an_unknown_user_is_404(client):
    response = await client.get("/users/999")
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


async def test_an_item_created_for_a_user_names_its_owner(client):
    response = await client.post("/users/2/items/", json={"title": "ink", "price": 4})
    assert response.status_code == 200, response.text
    assert response.json()["owner"] == {"id": 2, "name": "grace"}
    assert response.json()["title"] == "ink"


async def test_items_are_paged(client):
    first = await client.get("/items/", params={"skip": 0, "limit": 2})
    second = await client.get("/items/", params={"skip": 2, "limit": 2})
    assert [i["title"] for i in first.json()] == ["lamp", "desk"]
    assert [i["title"] for i in second.json()] == ["pen", "pen"]
    assert second.json()[1]["owner"]["name"] == "grace"
