"""Standard-library names that moved or appeared between Python 3.10 and 3.13.

On 3.11+ each name is the standard library's own object; on 3.10 a stand-in from
`gateway._compat.py310` (or the `tomli` package, which 3.11 took in as `tomllib`).
"""

from __future__ import annotations

import asyncio
import sys
from types import CodeType

__all__ = ["UTC", "StrEnum", "code_qualname", "running_loop", "timeout", "tomllib", "wait_for"]

# Each needed until Python 3.10 support ends, then imported from the standard library:
# - StrEnum: enums whose members are their string values (gateway.modes and the like);
# - UTC: datetime.timezone.utc under its 3.11 name;
# - timeout: a deadline as an `async with` block, raising the built-in TimeoutError;
# - wait_for: asyncio.wait_for, whose timeout is the built-in TimeoutError from 3.11 on
#   (3.10 raises asyncio.TimeoutError, which `except TimeoutError` does not catch);
# - tomllib: the flags file's parser (gateway.flags.seed_file), the `tomli` package on 3.10.
if sys.version_info >= (3, 11):
    from asyncio import timeout, wait_for
    from datetime import UTC
    from enum import StrEnum

    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

    from gateway._compat.py310 import UTC, StrEnum, timeout, wait_for

# The loop running in this thread or None, without raising (`get_running_loop` raises when
# there is none, which is the common case in a worker thread, once per SQL statement).
# Private, but the same on 3.10 to 3.13.
running_loop = asyncio._get_running_loop


def code_qualname(code: CodeType) -> str:
    """A code object's qualified name ("Class.method", "factory.<locals>.route").

    Needed until Python 3.10 support ends: `co_qualname` is new in 3.11; on 3.10 the name
    comes from the function that owns the code object.
    """
    qualname: str | None = getattr(code, "co_qualname", None)
    if qualname is not None:
        return qualname
    from gateway._compat.py310 import function_qualname  # pragma: no cover - Python 3.10

    return function_qualname(code)  # pragma: no cover - Python 3.10
