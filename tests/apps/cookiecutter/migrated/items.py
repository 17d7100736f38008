from typing import Any

from app import models, schemas
from fastapi import APIRouter, Depends, HTTPException
from migrated.deps import get_current_active_user
from sqlalchemy import select

from gateway import AsyncDB

router = APIRouter()
Item = models.Item


@router.get("/", response_model=list[schemas.Item])
async def read_items(
    db: AsyncDB,
    skip: int = 0,
    limit: int = 100,
    current_user: models.User = Depends(get_current_active_user),
) -> Any:
    query = select(Item).order_by(Item.id).offset(skip).limit(limit)
    if not current_user.is_superuser:
        query = query.where(Item.owner_id == current_user.id)
    return (await db.execute(query)).scalars().all()


@router.post("/", response_model=schemas.Item)
async def create_item(
    *,
    db: AsyncDB,
    item_in: schemas.ItemCreate,
    current_user: models.User = Depends(get_current_active_user),
) -> Any:
    item = Item(**item_in.dict(), owner_id=current_user.id)
    db.add(item)
    await db.commit()
    await db.refresh(item)
    return item


@router.get("/{id}", response_model=schemas.Item)
async def read_item(
    *, db: AsyncDB, id: int, current_user: models.User = Depends(get_current_active_user)
) -> Any:
    item = await db.get(Item, id)
    if not item:
        raise HTTPException(status_code=404, detail="Item not found")
    if not current_user.is_superuser and (item.owner_id != current_user.id):
        raise HTTPException(status_code=400, detail="Not enough permissions")
    return item
