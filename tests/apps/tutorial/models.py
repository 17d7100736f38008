"""Two related models, classic declarative style, as the FastAPI tutorial has them."""

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


class User(Base):
    __tablename__ = "tutorial_users"

    id = Column(Integer, primary_key=True)
    email = Column(String(100), unique=True, index=True, nullable=False)
    name = Column(String(100), nullable=False)
    is_active = Column(Boolean, default=True, nullable=False)

    items = relationship("Item", back_populates="owner", order_by="Item.id")


class Item(Base):
    __tablename__ = "tutorial_items"

    id = Column(Integer, primary_key=True)
    title = Column(String(100), index=True, nullable=False)
    price = Column(Integer, nullable=False, default=0)
    owner_id = Column(Integer, ForeignKey("tutorial_users.id"), nullable=False)

    owner = relationship("User", back_populates="items")


SEED = [
    ("ada@example.com", "ada", True, [("lamp", 30), ("desk", 120), ("pen", 2)]),
    ("grace@example.com", "grace", True, [("pen", 3)]),
    ("alan@example.com", "alan", False, []),
    ("edsger@example.com", "edsger", True, [("chalk", 1), ("board", 60)]),
]


def seed(session):
    """The rows every test starts from: four users, six items, one user without items."""
    for email, name, active, items in SEED:
        user = User(email=email, name=name, is_active=active)
        user.items = [Item(title=title, price=price) for title, price in items]
        session.add(user)
    session.commit()
