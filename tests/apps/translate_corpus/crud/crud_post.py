from sqlalchemy import func
from sqlalchemy.orm import Session

from ..models import Post, Vote
from ..schemas import PostCreate, PostUpdate
from .base import CRUDBase


class CRUDPost(CRUDBase[Post, PostCreate, PostUpdate]):
    def create_with_owner(self, db: Session, *, obj_in: PostCreate, owner_id: int) -> Post:
        db_obj = Post(**obj_in.model_dump(), owner_id=owner_id)
        db.add(db_obj)
        db.commit()
        db.refresh(db_obj)
        return db_obj

    def get_multi_by_owner(self, db: Session, *, owner_id: int) -> list[Post]:
        return db.query(Post).filter(Post.owner_id == owner_id).order_by(Post.id).all()

    def count_by_owner(self, db: Session, *, owner_id: int) -> int:
        return db.query(Post).filter(Post.owner_id == owner_id).count()

    def with_votes(self, db: Session, *, limit: int = 10):
        votes = func.count(Vote.user_id).label("votes")
        return (
            db.query(Post, votes)
            .outerjoin(Vote, Vote.post_id == Post.id)
            .group_by(Post.id)
            .order_by(Post.id)
            .limit(limit)
            .all()
        )


post = CRUDPost(Post)
