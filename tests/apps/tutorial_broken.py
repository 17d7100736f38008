"""Hand-broken translations of tests/apps/tutorial/crud.py, one per semantic: each function
is what a careless codemod writes, and `gateway translate --check` must call each one
"differs". The comment on each says what was lost."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from gateway import queries
from tests.apps.tutorial.models import Item, User
from tests.apps.tutorial.schemas import UserCreate


async def get_user(db: AsyncSession, user_id: int):
    # a query instead of Session.get: no identity map, and a LIMIT the original has not
    return await queries.first(db, select(User).where(User.id == user_id))


async def get_user_with_items(db: AsyncSession, user_id: int):
    # .options(...).get(): the options dropped
    return await db.get(User, user_id)


async def get_user_by_email(db: AsyncSession, email: str):
    # Result.first() without LIMIT 1
    return (await db.execute(select(User).where(User.email == email))).scalars().first()


async def first_user_with_items(db: AsyncSession):
    # first() with a joined eager load, LIMIT dropped
    stmt = select(User).options(joinedload(User.items)).order_by(User.id)
    return (await db.execute(stmt)).unique().scalars().first()


async def get_users(db: AsyncSession, skip: int = 0, limit: int = 100):
    # offset dropped
    return await queries.fetch_all(db, select(User).order_by(User.id).limit(limit))


async def users_with_items(db: AsyncSession):
    # a join to a collection without .unique(): each user once per item
    return (await db.execute(select(User).join(User.items).order_by(User.id))).scalars().all()


async def users_owning(db: AsyncSession, title: str):
    # the join dropped: a cartesian product filtered on the other table
    stmt = select(User).where(Item.title == title).order_by(User.id)
    return (await db.execute(stmt)).unique().scalars().all()


async def item_of_owner(db: AsyncSession, email: str, title: str):
    # filter_by before the join: it filters the wrong entity
    stmt = select(Item).filter_by(email=email).join(Item.owner).where(Item.title == title)
    return (await db.execute(stmt)).unique().scalars().one()


async def exactly_one_item(db: AsyncSession, owner_id: int):
    # one() as first(): no MultipleResultsFound
    return await queries.first(db, select(Item).where(Item.owner_id == owner_id))


async def price_of(db: AsyncSession, title: str):
    # Session.scalar: the first row's value where Query.scalar() raises on several
    return await db.scalar(select(Item.price).where(Item.title == title))


async def count_active(db: AsyncSession):
    # a count of the table, not of the filtered query
    return (await db.execute(select(func.count()).select_from(User))).scalar_one()


async def count_owners_joined(db: AsyncSession):
    # the join's rows are what the legacy count counts
    return (await db.execute(select(func.count(User.id.distinct())))).scalar_one()


async def count_distinct_titles(db: AsyncSession):
    # distinct dropped
    return (await db.execute(select(func.count(Item.title)))).scalar_one()


async def titles(db: AsyncSession):
    # column rows as scalars: the second column lost
    return (await db.execute(select(Item.title, Item.price).order_by(Item.id))).scalars().all()


async def emails_of_active(db: AsyncSession):
    # with_entities as entities: users instead of rows of emails
    stmt = select(User).where(User.is_active).order_by(User.email)
    return (await db.execute(stmt)).scalars().all()


async def user_exists(db: AsyncSession, email: str):
    # EXISTS of the full select instead of the Query's SELECT 1
    return (await db.execute(select(select(User).where(User.email == email).exists()))).scalar()


async def spend_per_owner(db: AsyncSession):
    # group_by without the join
    stmt = select(User.name, func.count(Item.id), func.sum(Item.price)).group_by(User.name)
    return (await db.execute(stmt.order_by(User.name))).all()


async def second_and_third_items(db: AsyncSession):
    # q[1:3] as offset 1 limit 3
    return await queries.fetch_all(db, select(Item).order_by(Item.id).offset(1).limit(3))


async def page_with_total(db: AsyncSession, owner_id: int, limit: int = 2):
    # the reused query's count taken of the table
    query = select(Item).where(Item.owner_id == owner_id)
    total = (await db.execute(select(func.count()).select_from(Item))).scalar_one()
    page = await queries.fetch_all(db, query.order_by(Item.id).limit(limit))
    return {"total": total, "items": [(item.id, item.title) for item in page]}


async def item_owner_names(db: AsyncSession, limit: int = 10):
    # a relationship read without an eager load: MissingGreenlet
    items = await queries.fetch_all(db, select(Item).order_by(Item.id).limit(limit))
    return [(item.title, item.owner.name) for item in items]


async def create_user(db: AsyncSession, user: UserCreate):
    # db.add forgotten
    db_user = User(email=user.email, name=user.name)
    await db.commit()
    return db_user


async def create_user_checked(db: AsyncSession, user: UserCreate):
    # the helper's check dropped
    db_user = User(email=user.email, name=user.name)
    db.add(db_user)
    await db.commit()
    await db.refresh(db_user)
    return db_user


async def rename_user(db: AsyncSession, user_id: int, name: str):
    # the rowcount replaced by a constant
    await queries.update(db, User, User.id == user_id, name=name)
    await db.commit()
    return 1


async def delete_items_titled(db: AsyncSession, title: str):
    # only the first match deleted
    item = await queries.first(db, select(Item).where(Item.title == title))
    if item is None:
        return 0
    await db.delete(item)
    await db.commit()
    return 1


async def delete_user(db: AsyncSession, user_id: int):
    # the items left behind
    user = await db.get(User, user_id)
    if user is None:
        return False
    await queries.delete(db, User, User.id == user_id)
    await db.commit()
    return True


async def upsert_item_price(db: AsyncSession, item_id: int, price: int):
    # an attribute read after rollback() expired it: MissingGreenlet
    merged = await db.merge(Item(id=item_id, title="merged", price=price, owner_id=1))
    await db.flush()
    await db.rollback()
    return merged.id
