from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.orm import Session

from .. import crud
from ..database import get_db
from ..models import User
from ..schemas import UserCreate, UserOut, UserUpdate
from .deps import get_current_active_user
from .utils import page_of_users

router = APIRouter()


@router.get("/", response_model=list[UserOut])
def read_users(db: Session = Depends(get_db), skip: int = 0, limit: int = 100):
    return crud.user.get_multi(db, skip=skip, limit=limit)


@router.get("/page", response_model=list[UserOut])
def read_page(skip: int = 0, db=Depends(get_db)):
    return page_of_users(db_session=db, skip=skip, limit=2)


@router.post("/", response_model=UserOut)
def create_user(user_in: UserCreate, db: Session = Depends(get_db)):
    try:
        return crud.user.create(db, obj_in=user_in)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


@router.put("/me", response_model=UserOut)
def update_me(
    user_in: UserUpdate,
    db: Session = Depends(get_db),
    current_user: User = Depends(get_current_active_user),
):
    return crud.user.update(db, db_obj=current_user, obj_in=user_in)


@router.get("/{user_id}", response_model=UserOut)
def read_user(
    user_id: int,
    current_user: User = Depends(get_current_active_user),
    db: Session = Depends(get_db),
):
    found = crud.user.get(db, id=user_id)
    if found == current_user:
        return found
    if found is None:
        raise HTTPException(status_code=404, detail="no such user")
    return found


@router.post("/deactivate-others")
def deactivate_others(
    db: Session = Depends(get_db), current_user: User = Depends(get_current_active_user)
):
    return {"deactivated": crud.user.deactivate_all_but(db, keep=current_user.id)}


@router.post("/deactivate-domain")
def deactivate_domain(domain: str, db: Session = Depends(get_db)):
    return {"deactivated": crud.user.deactivate_domain(db, domain=domain)}
