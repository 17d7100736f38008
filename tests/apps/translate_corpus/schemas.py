"""Bodies and answers; PostOut nests its owner, PostWithVotes a post and a count."""

from pydantic import BaseModel, ConfigDict


class UserCreate(BaseModel):
    email: str
    name: str


class UserUpdate(BaseModel):
    name: str | None = None
    is_active: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    is_active: bool


class PostCreate(BaseModel):
    title: str


class PostUpdate(BaseModel):
    title: str | None = None


class PostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    views: int
    owner: UserOut


class PostWithVotes(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    Post: PostOut
    votes: int
