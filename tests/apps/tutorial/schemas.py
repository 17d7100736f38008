"""Pydantic bodies and answers; ItemOut nests its owner, UserOut its items."""

from pydantic import BaseModel, ConfigDict


class ItemCreate(BaseModel):
    title: str
    price: int = 0


class OwnerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    price: int
    owner: OwnerOut


class UserCreate(BaseModel):
    email: str
    name: str


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    items: list[ItemOut] = []
