"""Users (in a table named "user", which PostgreSQL quotes), posts with owners and tags,
votes and views."""

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .database import Base

post_tags = Table(
    "corpus_post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("corpus_posts.id"), primary_key=True),
    Column("tag_id", ForeignKey("corpus_tags.id"), primary_key=True),
)


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(default=True)

    posts: Mapped[list["Post"]] = relationship(back_populates="owner", order_by="Post.id")


class Post(Base):
    __tablename__ = "corpus_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    views: Mapped[int] = mapped_column(default=0)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"))

    owner: Mapped[User] = relationship(back_populates="posts")
    tags: Mapped[list["Tag"]] = relationship(secondary=post_tags, order_by="Tag.id")


class Tag(Base):
    __tablename__ = "corpus_tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Vote(Base):
    __tablename__ = "corpus_votes"

    post_id: Mapped[int] = mapped_column(ForeignKey("corpus_posts.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)


def seed(session) -> None:
    """Three users (one inactive), four posts, tags on two of them, three votes."""
    ada = User(email="ada@example.com", name="ada")
    grace = User(email="grace@example.com", name="grace")
    alan = User(email="alan@example.com", name="alan", is_active=False)
    red, blue = Tag(name="red"), Tag(name="blue")
    posts = [
        Post(title="lamps", owner=ada, tags=[blue, red]),
        Post(title="desks", owner=ada),
        Post(title="pens", owner=grace, tags=[red]),
        Post(title="chalk", owner=alan),
    ]
    session.add_all([ada, grace, alan, *posts])
    session.flush()
    session.add_all(
        [
            Vote(post_id=posts[0].id, user_id=grace.id),
            Vote(post_id=posts[0].id, user_id=alan.id),
            Vote(post_id=posts[2].id, user_id=ada.id),
        ]
    )
    session.commit()
