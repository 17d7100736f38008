from app.core.config import settings
from fastapi.testclient import TestClient


def test_get_access_token(client: TestClient) -> None:
    login_data = {
        "username": settings.FIRST_SUPERUSER,
        "password": settings.FIRST_SUPERUSER_PASSWORD,
    }
    r = client.post(f"{settings.API_V1_STR}/login/access-token", data=login_data)
    tokens = r.json()
    assert r.status_code == 200
    assert "access_token" in tokens
    assert tokens["access_token"]


def test_wrong_password(client: TestClient, db) -> None:
    login_data = {"username": settings.FIRST_SUPERUSER, "password": "wrong"}
    r = client.post(f"{settings.API_V1_STR}/login/access-token", data=login_data)
    assert r.status_code == 400
    assert r.json() == {"detail": "Incorrect email or password"}


def test_use_access_token(client: TestClient, superuser_headers) -> None:
    r = client.post(f"{settings.API_V1_STR}/login/test-token", headers=superuser_headers)
    result = r.json()
    assert r.status_code == 200
    assert result["email"] == settings.FIRST_SUPERUSER


def test_bad_token_is_refused(client: TestClient) -> None:
    r = client.get(f"{settings.API_V1_STR}/users/me", headers={"Authorization": "Bearer x.y"})
    assert r.status_code == 403
    assert client.get(f"{settings.API_V1_STR}/users/me").status_code == 401
