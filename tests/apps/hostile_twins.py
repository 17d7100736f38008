"""A legacy app and a twin written to get out of shadow mode's rolled-back transaction.

    hostile = Hostile("connection_commit")
    gw = hostile_gateway(settings, hostile)     # POST /notes's twin commits its connection

Legacy writes one note per POST. The twin answers exactly as legacy does, and also writes a
row into `marks` (which legacy never touches) and tries what `hostile.action` names:

    connection_commit   (await db.connection()).commit()
    run_sync_commit     await db.run_sync(lambda s: s.connection().commit())
    sql:<statement>     await db.execute(text(statement)), e.g. sql:COMMIT
    many_commits        20 writes, each followed by a commit of the connection
    timeout             a write, then sleeps past the shadow timeout
    slow                a write, then sleeps `hostile.delay` (runs twice while learning)
    own_engine          an engine and an async_sessionmaker of its own
    gateway_database    the gateway's Database: its async engine, and sync sessions in a thread
    spawned_task        a task and a thread it leaves running write through engines
    text_other          a text() INSERT with another value (legacy used the ORM)
    wait                a write, then waits for `hostile.go` (the test restarts the server)

Each hostile twin swallows the exceptions isolation raises and goes on, as a twin that
"works" would. GET /notes/count (SQLite tests): `read_waits` reads and waits for
`hostile.go`; `read_writes` also tries to write on the read; `read_late` waits for
`hostile.go` before it reads; `read_wrong` counts one too many.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, create_engine, func, insert, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, declarative_base

from gateway import AsyncDB, Gateway, Settings, SyncDB
from gateway.urls import derive_urls

Base = declarative_base()


class Note(Base):
    __tablename__ = "notes"

    id = Column(Integer, primary_key=True)
    text = Column(String(200), nullable=False)


class Mark(Base):
    __tablename__ = "marks"

    id = Column(Integer, primary_key=True)
    by = Column(String(100), nullable=False)


class Audit(Base):
    __tablename__ = "audit"

    id = Column(Integer, primary_key=True)
    what = Column(String(200), nullable=False)


class NoteIn(BaseModel):
    text: str


@dataclass
class Hostile:
    """What the twin does, and the events a test drives it with."""

    action: str = ""
    url: str = ""
    mid: asyncio.Event = field(default_factory=asyncio.Event)  # the twin is mid-run
    go: asyncio.Event = field(default_factory=asyncio.Event)  # let it go on
    spawned_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    pid: int | None = None  # its backend (PostgreSQL)
    delay: float = 0.0  # how long `slow` takes
    finished: int = 0  # runs of `slow` that finished
    errors: list[str] = field(default_factory=list)  # what isolation said to it


def legacy_router() -> APIRouter:
    router = APIRouter()

    @router.post("/notes", status_code=201)
    def create_note(body: NoteIn, db: SyncDB):
        note = Note(text=body.text)
        db.add(note)
        db.commit()
        return {"id": note.id, "text": note.text}

    @router.post("/sql-notes", status_code=201)
    def create_sql_note(body: NoteIn, db: SyncDB):
        db.execute(text("INSERT INTO notes (text) VALUES (:t)"), {"t": body.text})
        db.commit()
        return {"text": body.text}

    @router.post("/audited-notes", status_code=201)
    def create_audited_note(body: NoteIn, db: SyncDB, background: BackgroundTasks):
        note = Note(text=body.text)
        db.add(note)
        db.commit()

        def audit() -> None:  # its own session, after the response
            db.add(Audit(what=f"note {body.text}"))
            db.commit()

        background.add_task(audit)
        return {"id": note.id, "text": note.text}

    @router.get("/notes/count")
    def count_notes(db: SyncDB):
        return {"notes": db.scalar(select(func.count()).select_from(Note))}

    return router


def async_router(hostile: Hostile) -> APIRouter:
    router = APIRouter()

    async def attempt(work: Any) -> None:
        try:
            await work
        except Exception as exc:  # what a twin that "works" does with an error
            hostile.errors.append(f"{type(exc).__name__}: {exc}")

    @router.post("/notes", status_code=201)
    async def create_note(body: NoteIn, db: AsyncDB, request: Request):
        note = Note(text=body.text)
        db.add(note)
        await db.flush()
        db.add(Mark(by=hostile.action))
        await db.flush()
        await escape(hostile, db, request, attempt)
        await db.commit()
        return {"id": note.id, "text": note.text}

    @router.post("/sql-notes", status_code=201)
    async def create_sql_note(body: NoteIn, db: AsyncDB):
        value = body.text + ("!" if hostile.action == "text_other" else "")
        await db.execute(text("INSERT INTO notes (text) VALUES (:t)"), {"t": value})
        await db.commit()
        return {"text": body.text}

    @router.post("/audited-notes", status_code=201)
    async def create_audited_note(body: NoteIn, db: AsyncDB, background: BackgroundTasks):
        note = Note(text=body.text)
        db.add(note)
        await db.commit()

        async def audit() -> None:
            db.add(Audit(what=f"note {body.text}"))
            await db.commit()

        background.add_task(audit)
        return {"id": note.id, "text": note.text}

    @router.get("/notes/count")
    async def count_notes(db: AsyncDB):
        if hostile.action == "read_late":  # a write lands after legacy read, before this
            hostile.mid.set()
            await hostile.go.wait()
        found = await db.scalar(select(func.count()).select_from(Note))
        if hostile.action == "read_writes":
            await attempt(db.execute(insert(Mark).values(by="read")))
        if hostile.action in ("read_waits", "read_writes"):
            hostile.mid.set()
            await hostile.go.wait()
        return {"notes": found + (1 if hostile.action == "read_wrong" else 0)}

    return router


async def escape(hostile: Hostile, db: Any, request: Request, attempt: Any) -> None:
    """What the hostile twin of POST /notes tries after its own write."""
    action = hostile.action
    if action == "connection_commit":
        await attempt((await db.connection()).commit())
    elif action == "run_sync_commit":
        await attempt(db.run_sync(lambda s: s.connection().commit()))
    elif action.startswith("sql:"):
        await attempt(db.execute(text(action[4:])))
    elif action == "many_commits":
        for i in range(20):
            db.add(Mark(by=f"many {i}"))
            await db.flush()
            await attempt((await db.connection()).commit())
    elif action == "timeout":
        await asyncio.sleep(3600)
    elif action == "slow":
        await asyncio.sleep(hostile.delay)
        hostile.finished += 1
    elif action == "own_engine":
        await attempt(_own_engine(hostile.url))
    elif action == "gateway_database":
        database = request.app.state.gateway_database
        await attempt(_write_with(database.async_engine))
        await attempt(asyncio.to_thread(_write_sync, database.sync_sessions))
    elif action == "spawned_task" and not hostile.spawned_tasks:  # once, not per learning run
        database = request.app.state.gateway_database
        hostile.spawned_tasks.append(asyncio.create_task(_spawned(hostile, database)))
    elif action == "wait":
        if db.bind.dialect.name == "postgresql":
            hostile.pid = (await db.execute(text("SELECT pg_backend_pid()"))).scalar()
        hostile.mid.set()
        await hostile.go.wait()
        db.add(Mark(by="after the wait"))
        await db.flush()


async def _write_with(engine: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(Mark).values(by="engine"))


def _write_sync(sessions: Any) -> None:
    with sessions() as session:
        session.add(Mark(by="sync session"))
        session.commit()


async def _own_engine(url: str) -> None:
    _, async_url = derive_urls(url)
    engine = create_async_engine(async_url)
    try:
        with contextlib.suppress(Exception):
            await _write_with(engine)
        async with async_sessionmaker(engine)() as session:
            session.add(Mark(by="own sessionmaker"))
            await session.commit()
    finally:
        await engine.dispose()


async def _spawned(hostile: Hostile, database: Any) -> None:
    await asyncio.sleep(0.05)  # after the twin's run
    for work in (_write_with(database.async_engine), asyncio.to_thread(_sync_engine, hostile)):
        try:
            await work
        except Exception as exc:
            hostile.errors.append(f"{type(exc).__name__}: {exc}")


def _sync_engine(hostile: Hostile) -> None:
    sync_url, _ = derive_urls(hostile.url)
    engine = create_engine(sync_url)
    try:
        with Session(engine) as session:
            session.add(Mark(by="thread"))
            session.commit()
    finally:
        engine.dispose()


def hostile_gateway(settings: Settings, hostile: Hostile) -> Gateway:
    """Both sides, not built; the tables are created at startup."""
    hostile.url = settings.effective_database_url
    gw = Gateway(settings)
    gw.include_legacy(legacy_router())
    gw.include_async(async_router(hostile))
    gw.on_startup(lambda gateway: Base.metadata.create_all(gateway.database.sync_engine))
    return gw
