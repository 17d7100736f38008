"""What `gateway translate` made of a module: its code, the functions now async, and every
fallback with file:line and reason (the command's summary prints them).

    result = translate_file(Path("app/crud.py"))
    result.translated            # ["get_user", "list_users"]
    [str(f) for f in result.fallbacks]   # ["app/crud.py:42: merge_users: Session.merge() ..."]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MARK", "Fallback", "Translation"]

MARK = "gateway-translate: fallback"


@dataclass(frozen=True)
class Fallback:
    """One site the translator did not translate: where, which function, and why."""

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

    @property
    def fallback_functions(self) -> set[str]:
        return {f.function for f in self.fallbacks}
