from .item import Item, ItemCreate, ItemUpdate
from .token import Token, TokenPayload
from .user import User, UserCreate, UserUpdate

__all__ = [
    "Item",
    "ItemCreate",
    "ItemUpdate",
    "Token",
    "TokenPayload",
    "User",
    "UserCreate",
    "UserUpdate",
]
