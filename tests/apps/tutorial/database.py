"""The tutorial's session: a sessionmaker the app binds at start (tests bind it to theirs)."""

from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker(autoflush=False)


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
