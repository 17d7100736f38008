"""CRUD helpers in the old tutorial style: `def f(db: Session, ...)` and `db.query(...)`.

One function per semantic the translator must keep (see gateway/translate/chains.py).
"""

from sqlalchemy import func
from sqlalchemy.orm import Session, joinedload

from tests.apps.tutorial import models
from tests.apps.tutorial.models import Item, User
from tests.apps.tutorial.schemas import ItemCreate, UserCreate


def get_user(db: Session, user_id: int):
    return db.query(User).get(user_id)


def get_user_with_items(db: Session, user_id: int):
    return db.query(User).options(joinedload(User.items)).get(user_id)


def get_user_by_email(db: Session, email: str):
    return db.query(User).filter(User.email == email).first()


def first_user_with_items(db: Session):
    # LIMIT 1 must stay, also with the joined eager load (a subquery then).
    return db.query(User).options(joinedload(User.items)).order_by(User.id).first()


def get_users(db: Session, skip: int = 0, limit: int = 100):
    return db.query(models.User).order_by(models.User.id).offset(skip).limit(limit).all()


def users_with_items(db: Session):
    # A join to a collection: the legacy Query returns each user once.
    return db.query(User).join(User.items).order_by(User.id).all()


def users_owning(db: Session, title: str):
    return db.query(User).join(Item).filter(Item.title == title).order_by(User.id).all()


def active_by_name(db: Session, name: str):
    return db.query(User).filter_by(is_active=True).filter_by(name=name).one_or_none()


def item_of_owner(db: Session, email: str, title: str):
    return db.query(Item).join(Item.owner).filter_by(email=email).filter(Item.title == title).one()


def exactly_one_item(db: Session, owner_id: int):
    return db.query(Item).filter(Item.owner_id == owner_id).one()


def price_of(db: Session, title: str):
    # Several items share a title: scalar() raises, where Session.scalar would not.
    return db.query(Item.price).filter(Item.title == title).scalar()


def count_active(db: Session):
    return db.query(User).filter(User.is_active).count()


def count_owners_joined(db: Session):
    return db.query(User).join(User.items).count()


def count_distinct_titles(db: Session):
    return db.query(Item.title).distinct().count()


def titles(db: Session):
    return db.query(Item.title, Item.price).order_by(Item.id).all()


def emails_of_active(db: Session):
    return (
        db.query(User).filter(User.is_active).with_entities(User.email).order_by(User.email).all()
    )


def user_exists(db: Session, email: str):
    return db.query(db.query(User).filter(User.email == email).exists()).scalar()


def spend_per_owner(db: Session):
    return (
        db.query(User.name, func.count(Item.id), func.sum(Item.price))
        .join(User.items)
        .group_by(User.name)
        .order_by(User.name)
        .all()
    )


def second_and_third_items(db: Session):
    return db.query(Item).order_by(Item.id)[1:3]


def page_of_items(db: Session, skip: int = 0, limit: int = 2):
    # A slice with variable bounds: negative ones slice in Python, so this is not certain.
    return db.query(Item).order_by(Item.id)[skip : skip + limit]


def page_with_total(db: Session, owner_id: int, limit: int = 2):
    query = db.query(Item).filter(Item.owner_id == owner_id)
    total = query.count()
    page = query.order_by(Item.id).limit(limit).all()
    return {"total": total, "items": [(item.id, item.title) for item in page]}


def item_owner_names(db: Session, limit: int = 10):
    items = db.query(Item).order_by(Item.id).limit(limit).all()
    return [(item.title, item.owner.name) for item in items]


def create_user(db: Session, user: UserCreate):
    db_user = User(email=user.email, name=user.name)
    db.add(db_user)
    db.commit()
    db.refresh(db_user)
    return db_user


def create_user_item(db: Session, item: ItemCreate, user_id: int):
    db_item = Item(**item.model_dump(), owner_id=user_id)
    db.add(db_item)
    db.commit()
    db.refresh(db_item)
    return db_item


def create_user_checked(db: Session, user: UserCreate):
    # A helper calling helpers: both become async, both awaited.
    if get_user_by_email(db, user.email) is not None:
        return None
    return create_user(db, user)


def rename_user(db: Session, user_id: int, name: str):
    count = db.query(User).filter(User.id == user_id).update({User.name: name})
    db.commit()
    return count


def deactivate_users(db: Session, name: str):
    count = (
        db.query(User)
        .filter(User.name == name)
        .update({"is_active": False}, synchronize_session="fetch")
    )
    db.commit()
    return count


def delete_items_titled(db: Session, title: str):
    count = db.query(Item).filter(Item.title == title).delete(synchronize_session=False)
    db.commit()
    return count


def delete_user(db: Session, user_id: int):
    user = db.query(User).get(user_id)
    if user is None:
        return False
    for item in db.query(Item).filter(Item.owner_id == user_id):
        db.delete(item)
    db.delete(user)
    db.commit()
    return True


def upsert_item_price(db: Session, item_id: int, price: int):
    merged = db.merge(Item(id=item_id, title="merged", price=price, owner_id=1))
    db.flush()
    db.rollback()
    return merged.id
