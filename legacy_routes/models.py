"""The users table, classic declarative style (imports on SQLAlchemy 1.4, 2.0 and 2.1)."""

from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class User(Base):
    __tablename__ = "users"

    id = Column(Integer, primary_key=True)
    name = Column(String(100), unique=True, nullable=False)
    email = Column(String(200), nullable=False)
