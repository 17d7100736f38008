"""The translated code laid out as the project lays out its own: when `ruff` is installed
and the legacy module already passes `ruff format --check` (and the import sorting check),
the twin goes through the same `ruff format` (and import sorting), so long `select()`
chains are wrapped at the project's line length and added imports join their groups. A
module the project does not format is left in libcst's layout, so the diff a reviewer reads
shows the translation and nothing else.

    code = formatted(code, Path("app/crud.py"))
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["formatted"]

# Each step: the check the legacy module must pass, then the command that fixes the twin.
STEPS = [
    (["check", "--select", "I", "--quiet"], ["check", "--select", "I", "--fix-only", "--quiet"]),
    (["format", "--check", "--quiet"], ["format", "--quiet"]),
]


def formatted(code: str, source: Path) -> str:
    """`code` (the twin of `source`) through the project's ruff, where `source` follows it."""
    # The ruff on PATH, else the one installed next to this Python (an unactivated venv).
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        return code
    original = source.read_text()
    for check, fix in STEPS:
        if _ruff(ruff, check, original, source) is None:
            continue
        fixed = _ruff(ruff, fix, code, source)
        if fixed is not None:
            code = fixed
    return code


def _ruff(ruff: str, arguments: list[str], code: str, source: Path) -> str | None:
    """ruff's output for `code` read as `source` (its config applies), None on failure."""
    try:
        done = subprocess.run(
            [ruff, *arguments, "--stdin-filename", str(source), "-"],
            input=code,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
