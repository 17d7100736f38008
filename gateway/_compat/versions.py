"""Which FastAPI, Starlette, pydantic and SQLAlchemy this process runs, as comparable tuples."""

from __future__ import annotations

import re
from importlib.metadata import version

__all__ = ["FASTAPI", "PYDANTIC", "SQLALCHEMY", "STARLETTE", "parse_version"]


def parse_version(text: str) -> tuple[int, int, int]:
    """`parse_version("0.115.14")` -> (0, 115, 14); pre-release tags are ignored."""
    major, minor, patch = [*(int(part) for part in re.findall(r"\d+", text)[:3]), 0, 0, 0][:3]
    return major, minor, patch


FASTAPI = parse_version(version("fastapi"))
STARLETTE = parse_version(version("starlette"))
PYDANTIC = parse_version(version("pydantic"))
SQLALCHEMY = parse_version(version("sqlalchemy"))
