"""The current user, from a header, through the legacy session (FastAPI caches `get_db`
per request, so the route and this chain share one Session)."""

from fastapi import Depends, Header, HTTPException
from sqlalchemy.orm import Session

from .. import crud
from ..database import get_db
from ..models import User


def get_current_user(db: Session = Depends(get_db), x_user: int = Header()) -> User:
    user = crud.user.get(db, id=x_user)
    if user is None:
        raise HTTPException(status_code=401, detail="unknown user")
    return user


def get_current_active_user(current_user: User = Depends(get_current_user)) -> User:
    if not crud.user.is_active(current_user):
        raise HTTPException(status_code=400, detail="inactive user")
    return current_user
