"""A legacy app holding personal data and an async twin that fails the ways real twins fail,
for the tests of what shadow results show.

    gw = results_gateway(settings)          # both sides, not built; tables made at startup
    gateway serve tests.apps.shadow_results:create_app      # the same, served

The twin's routes:
    POST /users              writes the name upper-cased: its writes and body differ
    GET  /tasks/{task_id}    returns the ORM task: its lazy `assignee` raises MissingGreenlet
    GET  /users/{id}/card    leaves out a field of its response model: ResponseValidationError
    GET  /reports/{name}     a helper of the twin raises, with a message over two lines
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import Column, ForeignKey, Integer, String, select
from sqlalchemy.orm import declarative_base, relationship

from gateway import AsyncDB, Gateway, Settings, SyncDB

Base = declarative_base()
EMAIL = "ada.lovelace@example.com"  # a written value no log line or response may show


class User(Base):
    __tablename__ = "users"

    id = Column(Integer, primary_key=True)
    email = Column(String(200), unique=True, nullable=False)
    name = Column(String(100), nullable=False)


class Task(Base):
    __tablename__ = "tasks"

    id = Column(Integer, primary_key=True)
    title = Column(String(100), nullable=False)
    assignee_id = Column(ForeignKey("users.id"), nullable=False)
    assignee = relationship("User")


class UserIn(BaseModel):
    email: str
    name: str


class UserOut(BaseModel):
    id: int
    email: str
    name: str

    model_config = {"from_attributes": True}


class TaskOut(BaseModel):
    id: int
    title: str
    assignee: UserOut

    model_config = {"from_attributes": True}


class Card(BaseModel):
    id: int
    email: str
    nickname: str


def legacy_router() -> APIRouter:
    router = APIRouter()

    @router.post("/users", status_code=201)
    def create_user(body: UserIn, db: SyncDB):
        user = User(email=body.email, name=body.name)
        db.add(user)
        db.commit()
        return {"id": user.id, "email": user.email, "name": user.name}

    @router.get("/tasks/{task_id}", response_model=TaskOut)
    def read_task(task_id: int, db: SyncDB):
        return db.get(Task, task_id)

    @router.get("/users/{user_id}/card", response_model=Card)
    def user_card(user_id: int, db: SyncDB):
        user = db.get(User, user_id)
        return {"id": user.id, "email": user.email, "nickname": user.name.lower()}

    @router.get("/reports/{name}")
    def report(name: str):
        return {"report": name}

    return router


def _render(name: str) -> dict[str, str]:
    raise ValueError(f"cannot render {name!r}:\nno template for this report")  # twin's line


def async_router() -> APIRouter:
    router = APIRouter()

    @router.post("/users", status_code=201)
    async def create_user(body: UserIn, db: AsyncDB):
        user = User(email=body.email, name=body.name.upper())
        db.add(user)
        await db.commit()
        return {"id": user.id, "email": user.email, "name": user.name}

    @router.get("/tasks/{task_id}", response_model=TaskOut)
    async def read_task(task_id: int, db: AsyncDB):
        return (await db.execute(select(Task).where(Task.id == task_id))).scalar_one()

    @router.get("/users/{user_id}/card", response_model=Card)
    async def user_card(user_id: int, db: AsyncDB):
        user = (await db.execute(select(User).where(User.id == user_id))).scalar_one()
        return {"id": user.id, "email": user.email}

    @router.get("/reports/{name}")
    async def report(name: str):
        return _render(name)

    return router


def results_gateway(settings: Settings, twins: APIRouter | None = None) -> Gateway:
    """The legacy app and `twins` (by default this module's), not built; at startup the
    tables are made and a user with EMAIL and a task assigned to them are added."""
    gw = Gateway(settings)
    gw.include_legacy(legacy_router())
    gw.include_async(twins if twins is not None else async_router())

    def prepare(gateway: Gateway) -> None:
        from sqlalchemy.orm import Session

        Base.metadata.create_all(gateway.database.sync_engine)
        with Session(gateway.database.sync_engine) as session:
            if session.query(User).count():
                return
            user = User(email=EMAIL, name="Ada")
            session.add_all([user, Task(title="translate the notes", assignee=user)])
            session.commit()

    gw.on_startup(prepare)
    return gw


def create_app(settings: Settings | None = None) -> FastAPI:
    """The built app, for `gateway serve` (settings from GATEWAY_* variables)."""
    return results_gateway(settings or Settings()).build()
