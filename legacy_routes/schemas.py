"""Request and response bodies, and the limits every input is checked against.

PostgreSQL refuses NUL in text and ids beyond its `integer`; checked here, such input is a
422 naming the field instead of a database error.
"""

from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**31 - 1  # PostgreSQL's integer, the type of every id column
NO_NUL = r"^[^\x00]*$"


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    email: str = Field(min_length=3, max_length=200, pattern=NO_NUL)


class UserPatch(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
