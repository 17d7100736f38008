from sqlalchemy.orm import Session

from ..models import User
from ..schemas import UserCreate, UserUpdate
from .base import CRUDBase


class CRUDUser(CRUDBase[User, UserCreate, UserUpdate]):
    def get_by_email(self, db: Session, *, email: str) -> User | None:
        return db.query(User).filter(User.email == email).first()

    def create(self, db: Session, *, obj_in: UserCreate) -> User:
        if self.get_by_email(db, email=obj_in.email) is not None:
            raise ValueError(f"{obj_in.email} is taken")
        return super().create(db, obj_in=obj_in)

    def deactivate_all_but(self, db: Session, *, keep: int) -> int:
        count = db.query(User).filter(User.id != keep).update({"is_active": False})
        db.commit()
        return count

    def deactivate_domain(self, db: Session, *, domain: str) -> int:
        q = db.query(User).filter(User.email.endswith(domain))
        count = q.update({"is_active": False}, synchronize_session=False)
        db.commit()
        return count

    def is_active(self, user: User) -> bool:
        return user.is_active


user = CRUDUser(User)
