"""Nearest-neighbour search over item embeddings, legacy style: `def`, sync Session, Query."""

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from sqlalchemy.orm import Session

from legacy_routes.database import get_db
from legacy_routes.schemas import MAX_ID
from legacy_routes.vector_models import Item, Neighbour

router = APIRouter(prefix="/items", tags=["items"])


@router.get("/{item_id}/neighbours", response_model=list[Neighbour])
def nearest_items(
    item_id: int = Path(ge=1, le=MAX_ID),
    limit: int = Query(5, ge=1, le=100),
    db: Session = Depends(get_db),
):
    item = db.query(Item).filter(Item.id == item_id).first()
    if item is None:
        raise HTTPException(status_code=404, detail=f"Item {item_id} not found")
    distance = Item.embedding.l2_distance(item.embedding)
    rows = (
        db.query(Item, distance.label("distance"))
        .filter(Item.id != item_id)
        .order_by(distance, Item.id)
        .limit(limit)
        .all()
    )
    return [Neighbour(id=row.id, name=row.name, distance=d) for row, d in rows]
