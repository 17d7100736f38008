import random
import string

from app import crud
from app.core.config import settings
from app.schemas.user import UserCreate
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session


def random_lower_string() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=32))


def random_email() -> str:
    return f"{random_lower_string()}@{random_lower_string()}.com"


def user_authentication_headers(client: TestClient, email: str, password: str) -> dict[str, str]:
    data = {"username": email, "password": password}
    r = client.post(f"{settings.API_V1_STR}/login/access-token", data=data)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def superuser_token_headers(client: TestClient) -> dict[str, str]:
    return user_authentication_headers(
        client, settings.FIRST_SUPERUSER, settings.FIRST_SUPERUSER_PASSWORD
    )


def authentication_token_from_email(
    *, client: TestClient, email: str, db: Session
) -> dict[str, str]:
    password = random_lower_string()
    user = crud.user.get_by_email(db, email=email)
    if not user:
        crud.user.create(db, obj_in=UserCreate(email=email, password=password))
    else:
        crud.user.update(db, db_obj=user, obj_in={"password": password})
    return user_authentication_headers(client=client, email=email, password=password)
