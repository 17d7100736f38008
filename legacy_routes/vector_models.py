"""The pgvector model: items with an embedding, classic declarative style.

Its own metadata, so `Base.metadata.create_all` on SQLite never meets the vector type.
"""

from pgvector.sqlalchemy import Vector
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import declarative_base

DIMENSIONS = 3

VectorBase = declarative_base()


class Item(VectorBase):
    __tablename__ = "items"

    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    embedding = Column(Vector(DIMENSIONS), nullable=False)


class Neighbour(BaseModel):
    id: int
    name: str
    distance: float
