"""A tutorial-style legacy app of someone else's, written into a directory by tests.

`write_bookshop(directory)` makes the package `bookshop` there: two related models, `crud.py`
with `db.query`, a `get_db` generator, plain `def` routes, its own engine on DATABASE_URL;
and `bookshop/migrated.py`, the async twins of some routes, using the gateway's AsyncDB.
Nothing in the legacy part imports the gateway.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

__all__ = ["write_bookshop"]

FILES = {
    "__init__.py": "",
    "database.py": """
        import os

        from sqlalchemy import create_engine
        from sqlalchemy.orm import declarative_base, sessionmaker

        URL = os.environ.get("DATABASE_URL", "sqlite:///./bookshop.db")
        engine = create_engine(URL, connect_args={"check_same_thread": False})
        SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)
        Base = declarative_base()


        def get_db():
            db = SessionLocal()
            try:
                yield db
            finally:
                db.close()
    """,
    "models.py": """
        from sqlalchemy import Column, ForeignKey, Integer, String
        from sqlalchemy.orm import relationship

        from .database import Base


        class Author(Base):
            __tablename__ = "authors"
            id = Column(Integer, primary_key=True)
            name = Column(String, unique=True, nullable=False)
            books = relationship("Book", back_populates="author")


        class Book(Base):
            __tablename__ = "books"
            id = Column(Integer, primary_key=True)
            title = Column(String, nullable=False)
            author_id = Column(Integer, ForeignKey("authors.id"))
            author = relationship("Author", back_populates="books")
    """,
    "crud.py": """
        from . import models


        def get_authors(db):
            return db.query(models.Author).order_by(models.Author.id).all()


        def get_author(db, author_id):
            return db.query(models.Author).filter(models.Author.id == author_id).first()


        def create_author(db, name):
            author = models.Author(name=name)
            db.add(author)
            db.commit()
            db.refresh(author)
            return author


        def get_books(db):
            return db.query(models.Book).order_by(models.Book.id).all()


        def get_book(db, book_id):
            return db.query(models.Book).filter(models.Book.id == book_id).first()


        def create_book(db, author_id, title):
            book = models.Book(title=title, author_id=author_id)
            db.add(book)
            db.commit()
            db.refresh(book)
            return book
    """,
    "main.py": """
        from fastapi import Depends, FastAPI, HTTPException
        from pydantic import BaseModel
        from sqlalchemy.orm import Session

        from . import crud, models
        from .database import engine, get_db

        models.Base.metadata.create_all(bind=engine)
        app = FastAPI(title="bookshop")


        class AuthorIn(BaseModel):
            name: str


        class BookIn(BaseModel):
            title: str


        def author_out(author):
            return {"id": author.id, "name": author.name}


        def book_out(book):
            return {"id": book.id, "title": book.title, "author_id": book.author_id}


        @app.get("/authors")
        def read_authors(db: Session = Depends(get_db)):
            return [author_out(a) for a in crud.get_authors(db)]


        @app.post("/authors", status_code=201)
        def create_author(body: AuthorIn, db: Session = Depends(get_db)):
            return author_out(crud.create_author(db, body.name))


        @app.get("/authors/{author_id}")
        def read_author(author_id: int, db: Session = Depends(get_db)):
            author = crud.get_author(db, author_id)
            if author is None:
                raise HTTPException(status_code=404, detail="Author not found")
            return author_out(author)


        @app.post("/authors/{author_id}/books", status_code=201)
        def create_book(author_id: int, body: BookIn, db: Session = Depends(get_db)):
            return book_out(crud.create_book(db, author_id, body.title))


        @app.get("/books")
        def read_books(db: Session = Depends(get_db)):
            return [book_out(b) for b in crud.get_books(db)]


        @app.get("/books/{book_id}")
        def read_book(book_id: int, db: Session = Depends(get_db)):
            book = crud.get_book(db, book_id)
            if book is None:
                raise HTTPException(status_code=404, detail="Book not found")
            return book_out(book)
    """,
    "migrated.py": """
        from fastapi import APIRouter, HTTPException
        from sqlalchemy import select

        from gateway import AsyncDB

        from .main import author_out, book_out
        from .models import Author, Book

        router = APIRouter()


        @router.get("/authors")
        async def read_authors(db: AsyncDB):
            rows = await db.scalars(select(Author).order_by(Author.id))
            return [author_out(a) for a in rows]


        @router.get("/authors/{author_id}")
        async def read_author(author_id: int, db: AsyncDB):
            author = await db.get(Author, author_id)
            if author is None:
                raise HTTPException(status_code=404, detail="Author not found")
            return author_out(author)


        @router.get("/books/{id}")  # not /books/{book_id}: the gateway says it cannot pair
        async def read_book(id: int, db: AsyncDB):
            book = await db.get(Book, id)
            if book is None:
                raise HTTPException(status_code=404, detail="Book not found")
            return book_out(book)
    """,
}


def write_bookshop(directory: Path) -> Path:
    """Write the `bookshop` package into `directory`; return the package's path."""
    package = directory / "bookshop"
    package.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (package / name).write_text(textwrap.dedent(text).lstrip())
    return package
