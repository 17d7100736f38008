"""Nearest-neighbour search over item embeddings, migrated: `async def`, AsyncSession."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import select

from gateway import AsyncDB, queries
from legacy_routes.schemas import MAX_ID
from legacy_routes.vector_models import Item, Neighbour

router = APIRouter(prefix="/items", tags=["items"])


@router.get("/{item_id}/neighbours", response_model=list[Neighbour])
async def nearest_items(
    *, item_id: int = Path(ge=1, le=MAX_ID), db: AsyncDB, limit: int = Query(5, ge=1, le=100)
):
    item = await queries.first(db, select(Item).where(Item.id == item_id))
    if item is None:
        raise HTTPException(status_code=404, detail=f"Item {item_id} not found")
    distance = Item.embedding.l2_distance(item.embedding)
    statement = (
        select(Item, distance.label("distance"))
        .where(Item.id != item_id)
        .order_by(distance, Item.id)
        .limit(limit)
    )
    rows = (await db.execute(statement)).all()
    return [Neighbour(id=row.id, name=row.name, distance=d) for row, d in rows]
