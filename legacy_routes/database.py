"""The legacy app's database: its own engine, `SessionLocal` and `get_db`, as apps have them.

Nothing here knows the gateway. The URL comes from DATABASE_URL; without it the app uses
the gateway's GATEWAY_DATABASE_URL, then the gateway's embedded SQLite file, so `gateway
serve` with default settings keeps both implementations on one database.
"""

import os

import sqlalchemy
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

SQLALCHEMY_DATABASE_URL = (
    os.environ.get("DATABASE_URL")
    or os.environ.get("GATEWAY_DATABASE_URL")
    or "sqlite:///./gateway.db"
)


def _postgres_driver():
    # psycopg 3 has a SQLAlchemy dialect from 2.0 on; 1.4 speaks psycopg2.
    if not sqlalchemy.__version__.startswith("1."):
        try:
            import psycopg  # noqa: F401

            return "psycopg"
        except ImportError:
            pass
    return "psycopg2"


def make_engine(url):
    """An engine for `url`, with the driver this environment has for a bare postgresql://."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        url = f"postgresql+{_postgres_driver()}://{rest}"
    connect_args = {}
    if scheme.startswith("sqlite"):
        # Requests run in a threadpool; 30 s rides out another engine's write on the file.
        connect_args = {"check_same_thread": False, "timeout": 30}
    return create_engine(url, connect_args=connect_args, pool_pre_ping=True)


engine = make_engine(SQLALCHEMY_DATABASE_URL)
SessionLocal = sessionmaker(autoflush=False, bind=engine)


def get_db():
    """One Session per request, closed once the response is sent: `Depends(get_db)`."""
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
