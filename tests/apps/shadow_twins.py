"""A small legacy app and its async twin, with switchable bugs, for the shadow-mode tests.

    gw = twins_gateway(settings, bugs={"no_commit"})   # the async twin forgets to commit

Bugs (each breaks one route of the twin the way real translations break):
    ilike       GET /authors?q=      filter ilike for like (differs on PostgreSQL only)
    field       GET /authors/{id}    the name upper-cased in the body
    status      POST /authors        200 instead of 201
    no_commit   PUT /authors/{id}/bio  the update is never committed
    no_where    PUT /authors/{id}/bio  the UPDATE lost its WHERE
    no_limit    GET /first-author    .first() without LIMIT 1 (same body, more work)
    lazy        GET /authors/{id}/books   a lazy relationship load under AsyncSession
    slow        GET /authors/{id}    takes longer than the shadow timeout
    raises      POST /authors        raises after its INSERT was flushed
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from sqlalchemy import Column, ForeignKey, Integer, String, select, update
from sqlalchemy.orm import declarative_base, relationship

from gateway import AsyncDB, Gateway, Settings, SyncDB

Base = declarative_base()


class Author(Base):
    __tablename__ = "authors"

    id = Column(Integer, primary_key=True)
    name = Column(String(100), unique=True, nullable=False)
    bio = Column(String(200), nullable=True)
    books = relationship("Book", back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "books"

    id = Column(Integer, primary_key=True)
    title = Column(String(100), nullable=False)
    author_id = Column(ForeignKey("authors.id"), nullable=False)
    author = relationship("Author", back_populates="books")


class AuthorIn(BaseModel):
    name: str


class BioIn(BaseModel):
    bio: str


def _out(author: Author) -> dict[str, object]:
    return {"id": author.id, "name": author.name}


def legacy_router() -> APIRouter:
    router = APIRouter()

    @router.get("/authors")
    def search_authors(q: str, db: SyncDB):
        rows = db.query(Author).filter(Author.name.like(f"%{q}%")).order_by(Author.id).all()
        return [_out(a) for a in rows]

    @router.get("/authors/{author_id}")
    def read_author(author_id: int, db: SyncDB):
        author = db.query(Author).filter(Author.id == author_id).first()
        if author is None:
            raise HTTPException(404, f"Author {author_id} not found")
        return _out(author)

    @router.post("/authors", status_code=201)
    def create_author(body: AuthorIn, db: SyncDB):
        author = Author(name=body.name)
        db.add(author)
        db.commit()
        db.refresh(author)
        return _out(author)

    @router.patch("/authors/{author_id}")
    def rename_author(author_id: int, body: AuthorIn, db: SyncDB):
        count = db.query(Author).filter(Author.id == author_id).update({Author.name: body.name})
        db.commit()
        if not count:
            raise HTTPException(404, f"Author {author_id} not found")
        return {"updated": count}

    @router.put("/authors/{author_id}/bio")
    def set_bio(author_id: int, body: BioIn, db: SyncDB):
        count = db.query(Author).filter(Author.id == author_id).update({Author.bio: body.bio})
        db.commit()
        if not count:
            raise HTTPException(404, f"Author {author_id} not found")
        return {"updated": count}

    @router.get("/authors/{author_id}/books")
    def author_books(author_id: int, db: SyncDB):
        author = db.query(Author).filter(Author.id == author_id).first()
        if author is None:
            raise HTTPException(404, f"Author {author_id} not found")
        return [book.title for book in author.books]

    @router.get("/first-author")
    def first_author(db: SyncDB):
        author = db.query(Author).order_by(Author.id).first()
        return _out(author) if author else None

    return router


def async_router(bugs: frozenset[str] = frozenset()) -> APIRouter:
    router = APIRouter()

    @router.get("/authors")
    async def search_authors(q: str, db: AsyncDB):
        column = Author.name
        match = column.ilike(f"%{q}%") if "ilike" in bugs else column.like(f"%{q}%")
        rows = (await db.execute(select(Author).where(match).order_by(Author.id))).scalars()
        return [_out(a) for a in rows]

    @router.get("/authors/{author_id}")
    async def read_author(author_id: int, db: AsyncDB):
        if "slow" in bugs:
            await asyncio.sleep(5)
        query = select(Author).where(Author.id == author_id).limit(1)
        author = (await db.execute(query)).scalars().first()
        if author is None:
            raise HTTPException(404, f"Author {author_id} not found")
        found = _out(author)
        if "field" in bugs:
            found["name"] = str(found["name"]).upper()
        return found

    @router.post("/authors", status_code=201)
    async def create_author(body: AuthorIn, db: AsyncDB):
        author = Author(name=body.name)
        db.add(author)
        if "raises" in bugs:
            await db.flush()
            raise RuntimeError("the twin failed after its INSERT")
        await db.commit()
        if "status" in bugs:
            from fastapi.responses import JSONResponse

            return JSONResponse(_out(author), status_code=200)
        return _out(author)

    @router.patch("/authors/{author_id}")
    async def rename_author(author_id: int, body: AuthorIn, db: AsyncDB):
        statement = update(Author).where(Author.id == author_id).values(name=body.name)
        count = (await db.execute(statement)).rowcount
        await db.commit()
        if not count:
            raise HTTPException(404, f"Author {author_id} not found")
        return {"updated": count}

    @router.put("/authors/{author_id}/bio")
    async def set_bio(author_id: int, body: BioIn, db: AsyncDB):
        statement = update(Author).values(bio=body.bio)
        if "no_where" not in bugs:
            statement = statement.where(Author.id == author_id)
        count = (await db.execute(statement)).rowcount
        if "no_commit" not in bugs:
            await db.commit()
        if not count:
            raise HTTPException(404, f"Author {author_id} not found")
        return {"updated": 1 if "no_where" in bugs else count}

    @router.get("/authors/{author_id}/books")
    async def author_books(author_id: int, db: AsyncDB):
        query = select(Author).where(Author.id == author_id).limit(1)
        author = (await db.execute(query)).scalars().first()
        if author is None:
            raise HTTPException(404, f"Author {author_id} not found")
        if "lazy" in bugs:
            return [book.title for book in author.books]  # MissingGreenlet under AsyncSession
        rows = await db.execute(select(Book.title).where(Book.author_id == author_id))
        return list(rows.scalars())

    @router.get("/first-author")
    async def first_author(db: AsyncDB):
        query = select(Author).order_by(Author.id)
        if "no_limit" not in bugs:
            query = query.limit(1)
        author = (await db.execute(query)).scalars().first()
        return _out(author) if author else None

    return router


SEED = [("ada", ["Notes on the Engine"]), ("grace", ["COBOL", "Nanoseconds"]), ("alan", [])]


def twins_gateway(settings: Settings, bugs: frozenset[str] | set[str] = frozenset()) -> Gateway:
    """Both sides, not built; the tables are created and seeded at startup."""
    gw = Gateway(settings)
    gw.include_legacy(legacy_router())
    gw.include_async(async_router(frozenset(bugs)))

    def prepare(gateway: Gateway) -> None:
        from sqlalchemy.orm import Session

        Base.metadata.create_all(gateway.database.sync_engine)
        with Session(gateway.database.sync_engine) as session:
            if session.query(Author).count():
                return
            for name, titles in SEED:
                session.add(Author(name=name, books=[Book(title=t) for t in titles]))
            session.commit()

    gw.on_startup(prepare)
    return gw
