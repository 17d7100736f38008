"""User CRUD, migrated: `async def` routes, AsyncSession, gateway.queries helpers."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway import AsyncDB, queries
from legacy_routes.models import User
from legacy_routes.schemas import MAX_ID, NO_NUL, UserCreate, UserOut, UserPatch

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=list[UserOut])
async def list_users(db: AsyncDB):
    return await queries.fetch_all(db, select(User).order_by(User.id))


@router.get("/first", response_model=UserOut)
async def first_user(db: AsyncDB):
    user = await queries.first(db, select(User).order_by(User.id))
    if user is None:
        raise HTTPException(status_code=404, detail="No users yet")
    return user


@router.get("/by-name/{name}", response_model=UserOut)
async def user_by_name(*, name: str = Path(pattern=NO_NUL), db: AsyncDB):
    user = await queries.one_or_none(db, select(User).where(User.name == name))
    if user is None:
        raise HTTPException(status_code=404, detail=f"No user named {name!r}")
    return user


@router.get("/{user_id}", response_model=UserOut)
async def read_user(*, user_id: int = Path(ge=1, le=MAX_ID), db: AsyncDB):
    user = await queries.first(db, select(User).where(User.id == user_id))
    if user is None:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return user


@router.post("", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, db: AsyncDB):
    user = User(name=body.name, email=body.email)
    db.add(user)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise HTTPException(status_code=409, detail=f"User {body.name!r} exists") from None
    return user


@router.patch("/{user_id}", response_model=UserOut)
async def rename_user(*, user_id: int = Path(ge=1, le=MAX_ID), body: UserPatch, db: AsyncDB):
    try:
        count = await queries.update(db, User, User.id == user_id, name=body.name)
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise HTTPException(status_code=409, detail=f"User {body.name!r} exists") from None
    if not count:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return await queries.first(db, select(User).where(User.id == user_id))


@router.delete("/{user_id}", status_code=204)
async def delete_user(*, user_id: int = Path(ge=1, le=MAX_ID), db: AsyncDB):
    count = await queries.delete(db, User, User.id == user_id)
    await db.commit()
    if not count:
        raise HTTPException(status_code=404, detail=f"User {user_id} not found")
    return Response(status_code=204)
