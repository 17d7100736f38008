"""What `gateway translate` made of a module: its code, the functions now async, and every
fallback with file:line and reason (the command's summary prints them).

    result = translate_file(Path("app/crud.py"))
    result.translated            # ["get_user", "CRUDBase.get"]: async now (fallbacks included)
    [str(f) for f in result.fallbacks]   # ["app/crud.py:42: merge_users: Session.merge() ..."]
    [str(f) for f in result.not_translated]   # functions taking a session left as written
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MARK", "Fallback", "Translation", "mark_lines"]

MARK = "gateway-translate: fallback"


def mark_lines(reason: str) -> list[str]:
    """The fallback comment for `reason`, wrapped to fit a line of 88 characters."""
    return [f"# {line}" for line in textwrap.wrap(f"{MARK}: {reason}", 86)]


@dataclass(frozen=True)
class Fallback:
    """One site the translator did not translate (or a function it left as written):
    where, which function, and why."""

    path: str
    line: int
    function: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.function}: {self.reason}"


@dataclass
class Translation:
    """The translated module's code and what became of each function."""

    source: Path
    module: str
    code: str
    translated: list[str] = field(default_factory=list)  # functions now async
    fallbacks: list[Fallback] = field(default_factory=list)
    not_translated: list[Fallback] = field(default_factory=list)  # left as written: why
    relative_path: Path = Path()  # where it goes below `-o DIRECTORY`
    copied: bool = False  # a package's __init__.py the output needs, imports rewritten

    @property
    def fallback_functions(self) -> set[str]:
        return {f.function for f in self.fallbacks}
