import os
from collections.abc import Generator

import pytest
from app.api import deps
from app.db.init_db import init_db
from app.main import app
from app.tests.utils import authentication_token_from_email, superuser_token_headers
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

# The tests' own database: get_db is overridden so no request reaches the app's real one.
engine = create_engine(os.environ["TEST_DATABASE_URL"], pool_size=2, max_overflow=2)
TestingSessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)


def override_get_db() -> Generator:
    db = TestingSessionLocal()
    try:
        yield db
    finally:
        db.close()


app.dependency_overrides[deps.get_db] = override_get_db


@pytest.fixture(scope="session")
def db() -> Generator:
    session = TestingSessionLocal()
    init_db(session)
    yield session
    session.close()
    engine.dispose()


@pytest.fixture(scope="module")
def client() -> Generator:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def superuser_headers(client: TestClient, db: Session) -> dict[str, str]:
    return superuser_token_headers(client)


@pytest.fixture(scope="module")
def normal_user_headers(client: TestClient, db: Session) -> dict[str, str]:
    return authentication_token_from_email(client=client, email="user@example.com", db=db)
