from typing import Any

from app import models, schemas
from fastapi import APIRouter, Depends
from migrated.deps import get_current_active_user

router = APIRouter()


@router.get("/me", response_model=schemas.User)
async def read_user_me(current_user: models.User = Depends(get_current_active_user)) -> Any:
    return current_user
