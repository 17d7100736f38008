from app import crud, schemas
from app.core.config import settings
from app.db import base
from sqlalchemy.orm import Session


def init_db(db: Session) -> None:
    base.Base.metadata.create_all(bind=db.get_bind())
    user = crud.user.get_by_email(db, email=settings.FIRST_SUPERUSER)
    if not user:
        user_in = schemas.UserCreate(
            email=settings.FIRST_SUPERUSER,
            password=settings.FIRST_SUPERUSER_PASSWORD,
            is_superuser=True,
        )
        crud.user.create(db, obj_in=user_in)
