from app import models, schemas
from app.api.deps import reusable_oauth2
from app.core import security
from fastapi import Depends, HTTPException, status
from pydantic import ValidationError
from sqlalchemy import select

from gateway import AsyncDB


async def get_current_active_user(
    db: AsyncDB, token: str = Depends(reusable_oauth2)
) -> models.User:
    try:
        token_data = schemas.TokenPayload(**security.decode_token(token))
    except (ValueError, ValidationError):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN, detail="Could not validate credentials"
        ) from None
    user = (await db.execute(select(models.User).where(models.User.id == token_data.sub))).scalar()
    if not user:
        raise HTTPException(status_code=404, detail="User not found")
    if not user.is_active:
        raise HTTPException(status_code=400, detail="Inactive user")
    return user
