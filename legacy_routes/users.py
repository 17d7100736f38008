"""User CRUD, legacy style: `def` routes, sync Session, `db.query(...)`."""

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from legacy_routes.database import get_db
from legacy_routes.models import User
from legacy_routes.schemas import MAX_ID, NO_NUL, UserCreate, UserOut, UserPatch

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=list[UserOut])
def list_users(db: Session = Depends(get_db)):
    return db.query(User).order_by(User.id).all()


@router.get("/first", response_model=UserOut)
def first_user(db: Session = Depends(get_db)):
    user = db.query(User).order_by(User.id).first()
    if user is None:
        raise HTTPException(status_code=404, detail="No users yet")
    return user


@router.get("/by-name/{name}", response_model=UserOut)
def user_by_name(name: str = Path(pattern=NO_NUL), db: Session = Depends(get_db)):
    user = db.query(User).filter(User.name == name).one_or_none()
    if user is None:
        raise HTTPException(status_code=404, detail=f"No user named {name!r}")
    return user


@router.get("/{user_id}", response_model=UserOut)
def read_user(*, user_id: int = Path(ge=1, le=MAX_ID), db: Session = Depends(get_db)):
    user = db.query(User).filter(User.id == user_id).first()
    if user is None:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return user


@router.post("", response_model=UserOut, status_code=201)
def create_user(body: UserCreate, db: Session = Depends(get_db)):
    user = User(name=body.name, email=body.email)
    db.add(user)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise HTTPException(status_code=409, detail=f"User {body.name!r} exists") from None
    db.refresh(user)
    return user


@router.patch("/{user_id}", response_model=UserOut)
def rename_user(
    *, user_id: int = Path(ge=1, le=MAX_ID), body: UserPatch, db: Session = Depends(get_db)
):
    try:
        count = db.query(User).filter(User.id == user_id).update({User.name: body.name})
        db.commit()
    except IntegrityError:
        db.rollback()
        raise HTTPException(status_code=409, detail=f"User {body.name!r} exists") from None
    if not count:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return db.query(User).filter(User.id == user_id).first()


@router.delete("/{user_id}", status_code=204)
def delete_user(*, user_id: int = Path(ge=1, le=MAX_ID), db: Session = Depends(get_db)):
    count = db.query(User).filter(User.id == user_id).delete()
    db.commit()
    if not count:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return Response(status_code=204)
