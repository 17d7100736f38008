"""The seed's pgvector model: items with an embedding, shared by both implementations.

Its own metadata, so `Base.metadata.create_all` on SQLite never meets the vector type.
"""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from pydantic import BaseModel
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DIMENSIONS = 3


class VectorBase(DeclarativeBase):
    pass


class Item(VectorBase):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    embedding: Mapped[list[float]] = mapped_column(Vector(DIMENSIONS))


class Neighbour(BaseModel):
    id: int
    name: str
    distance: float
