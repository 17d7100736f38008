from app import crud
from app.core.config import settings
from app.schemas.user import UserCreate
from app.tests.utils import random_email, random_lower_string
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session


def test_get_users_superuser_me(client: TestClient, superuser_headers) -> None:
    r = client.get(f"{settings.API_V1_STR}/users/me", headers=superuser_headers)
    current_user = r.json()
    assert current_user
    assert current_user["is_active"] is True
    assert current_user["is_superuser"]
    assert current_user["email"] == settings.FIRST_SUPERUSER


def test_get_users_normal_user_me(client: TestClient, normal_user_headers) -> None:
    r = client.get(f"{settings.API_V1_STR}/users/me", headers=normal_user_headers)
    current_user = r.json()
    assert current_user["is_active"] is True
    assert current_user["is_superuser"] is False
    assert current_user["email"] == "user@example.com"


def test_create_user_new_email(client: TestClient, superuser_headers, db: Session) -> None:
    username, password = random_email(), random_lower_string()
    data = {"email": username, "password": password}
    r = client.post(f"{settings.API_V1_STR}/users/", headers=superuser_headers, json=data)
    assert 200 <= r.status_code < 300
    created_user = r.json()
    db.expire_all()
    user = crud.user.get_by_email(db, email=username)
    assert user
    assert user.email == created_user["email"]


def test_create_user_existing_username(client: TestClient, superuser_headers, db) -> None:
    username, password = random_email(), random_lower_string()
    crud.user.create(db, obj_in=UserCreate(email=username, password=password))
    data = {"email": username, "password": password}
    r = client.post(f"{settings.API_V1_STR}/users/", headers=superuser_headers, json=data)
    assert r.status_code == 400
    assert "_id" not in r.json()


def test_create_user_invalid_body(client: TestClient, superuser_headers) -> None:
    data = {"email": "ab", "password": "pw"}
    r = client.post(f"{settings.API_V1_STR}/users/", headers=superuser_headers, json=data)
    assert r.status_code == 422
    # pydantic 1's error body, as the app has always answered it
    assert r.json() == {
        "detail": [
            {
                "loc": ["body", "email"],
                "msg": "ensure this value has at least 3 characters",
                "type": "value_error.any_str.min_length",
                "ctx": {"limit_value": 3},
            },
            {
                "loc": ["body", "password"],
                "msg": "ensure this value has at least 4 characters",
                "type": "value_error.any_str.min_length",
                "ctx": {"limit_value": 4},
            },
        ]
    }


def test_create_user_by_normal_user(client: TestClient, normal_user_headers) -> None:
    data = {"email": random_email(), "password": random_lower_string()}
    r = client.post(f"{settings.API_V1_STR}/users/", headers=normal_user_headers, json=data)
    assert r.status_code == 400


def test_get_existing_user(client: TestClient, superuser_headers, db: Session) -> None:
    username, password = random_email(), random_lower_string()
    user = crud.user.create(db, obj_in=UserCreate(email=username, password=password))
    r = client.get(f"{settings.API_V1_STR}/users/{user.id}", headers=superuser_headers)
    assert 200 <= r.status_code < 300
    assert r.json()["email"] == username
    missing = client.get(f"{settings.API_V1_STR}/users/999999", headers=superuser_headers)
    assert missing.status_code == 404


def test_retrieve_users(client: TestClient, superuser_headers, db: Session) -> None:
    for _ in range(2):
        crud.user.create(db, obj_in=UserCreate(email=random_email(), password="secret"))
    r = client.get(f"{settings.API_V1_STR}/users/", headers=superuser_headers)
    all_users = r.json()
    assert len(all_users) > 1
    for item in all_users:
        assert "email" in item
        assert "hashed_password" not in item


def test_update_user_me(client: TestClient, normal_user_headers) -> None:
    r = client.put(
        f"{settings.API_V1_STR}/users/me", headers=normal_user_headers, json={"full_name": "Ann"}
    )
    assert r.status_code == 200
    assert r.json()["full_name"] == "Ann"
