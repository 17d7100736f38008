from app.core.config import settings
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session


def test_create_item(client: TestClient, superuser_headers) -> None:
    data = {"title": "Foo", "description": "Fighters"}
    r = client.post(f"{settings.API_V1_STR}/items/", headers=superuser_headers, json=data)
    assert r.status_code == 200
    content = r.json()
    assert content["title"] == data["title"]
    assert content["description"] == data["description"]
    assert "id" in content
    assert "owner_id" in content


def test_read_item(client: TestClient, superuser_headers, db: Session) -> None:
    data = {"title": "Bar", "description": None}
    created = client.post(f"{settings.API_V1_STR}/items/", headers=superuser_headers, json=data)
    item_id = created.json()["id"]
    r = client.get(f"{settings.API_V1_STR}/items/{item_id}", headers=superuser_headers)
    assert r.status_code == 200
    assert r.json() == created.json()
    assert r.json()["description"] is None


def test_items_of_their_owner_only(client: TestClient, normal_user_headers, superuser_headers):
    mine = client.post(
        f"{settings.API_V1_STR}/items/", headers=normal_user_headers, json={"title": "mine"}
    ).json()
    theirs = client.post(
        f"{settings.API_V1_STR}/items/", headers=superuser_headers, json={"title": "theirs"}
    ).json()
    listed = client.get(f"{settings.API_V1_STR}/items/", headers=normal_user_headers).json()
    assert mine in listed
    assert all(item["owner_id"] == mine["owner_id"] for item in listed)
    r = client.get(f"{settings.API_V1_STR}/items/{theirs['id']}", headers=normal_user_headers)
    assert r.status_code == 400
    assert r.json() == {"detail": "Not enough permissions"}


def test_update_and_delete_item(client: TestClient, superuser_headers) -> None:
    created = client.post(
        f"{settings.API_V1_STR}/items/", headers=superuser_headers, json={"title": "old"}
    ).json()
    url = f"{settings.API_V1_STR}/items/{created['id']}"
    updated = client.put(url, headers=superuser_headers, json={"description": "new"})
    assert updated.json() == {**created, "description": "new"}
    assert client.delete(url, headers=superuser_headers).json()["id"] == created["id"]
    assert client.get(url, headers=superuser_headers).status_code == 404
    assert client.delete(url, headers=superuser_headers).status_code == 404


def test_item_body_is_validated(client: TestClient, superuser_headers) -> None:
    r = client.post(f"{settings.API_V1_STR}/items/", headers=superuser_headers, json={})
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {"loc": ["body", "title"], "msg": "field required", "type": "value_error.missing"}
        ]
    }
