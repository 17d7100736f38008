"""Python 3.10's stand-ins for the 3.11 standard-library names the gateway uses.

Imported by `gateway._compat.stdlib` on Python 3.10 only; the tests also run them on 3.11+
against the originals they stand in for. Delete this module with Python 3.10 support.

    from gateway._compat import StrEnum, timeout, wait_for   # never from here directly
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable
from datetime import timezone
from enum import Enum
from types import (
    AsyncGeneratorType,
    CodeType,
    CoroutineType,
    FunctionType,
    GeneratorType,
    TracebackType,
)
from typing import Any, TypeVar

__all__ = ["UTC", "StrEnum", "Timeout", "function_qualname", "timeout", "wait_for"]

T = TypeVar("T")
_S = TypeVar("_S", bound="StrEnum")

# datetime.UTC (3.11) is this very object.
UTC = timezone.utc


class StrEnum(str, Enum):
    """enum.StrEnum (3.11): members are strings; str(), format() and f-strings give the value.

    class Color(StrEnum):
        RED = "red"
    f"{Color.RED}", str(Color.RED), Color.RED.value       # "red", "red", "red"
    """

    def __new__(cls: type[_S], value: str) -> _S:
        # As 3.11: a member's value must already be a string (str, Enum would convert 1).
        if not isinstance(value, str):
            raise TypeError(f"{value!r} is not a string")
        member = str.__new__(cls, value)
        member._value_ = value
        return member

    # 3.11's ReprEnum: only repr() is the enum's; str() and format() are str's own.
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]) -> str:
        """`auto()` gives the member's name, lower-cased."""
        return name.lower()


class Timeout:
    """asyncio.Timeout (3.11), as far as `async with timeout(delay):` goes.

    On expiry the task is cancelled once, as 3.11 does: cleanup that awaits inside the block
    (a rollback, a connection handed back) still runs, and the CancelledError leaving the
    block becomes the built-in TimeoutError. (anyio's fail_after cancels again at every
    await until the block is left, which would cut such cleanup short.)
    """

    def __init__(self, delay: float | None) -> None:
        self._delay = delay
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    async def __aenter__(self) -> Timeout:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("timeout() needs a running asyncio task; found none")
        self._task = task
        if self._delay is not None:
            self._handle = asyncio.get_running_loop().call_later(self._delay, self._on_timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def _on_timeout(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._expired = True


def timeout(delay: float | None) -> Timeout:
    """asyncio.timeout (3.11): `async with timeout(2.0): ...` raises TimeoutError after 2 s."""
    return Timeout(delay)


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
    """asyncio.wait_for raising the built-in TimeoutError, as 3.11 does (3.10 raises
    asyncio.TimeoutError, which `except TimeoutError` misses)."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError as exc:
        raise TimeoutError(*exc.args) from exc.__cause__


_QUALNAMES: dict[CodeType, str] = {}
_QUALNAMES_KEPT = 1024


def function_qualname(code: CodeType) -> str:
    """The `__qualname__` of the function whose code this is (3.11's `co_qualname`).

    Found among the objects that refer to the code: its function, or a coroutine or
    generator made from it (which keeps the name when the function is gone); remembered once
    found. Asked only when a sync driver runs on the event loop, to name the `async def`
    that did. The code's plain name when nothing names it.
    """
    name = _QUALNAMES.get(code)
    if name is not None:
        return name
    for owner in gc.get_referrers(code):
        if _code_of(owner) is code:
            name = str(owner.__qualname__)
            if len(_QUALNAMES) < _QUALNAMES_KEPT:
                _QUALNAMES[code] = name
            return name
    return code.co_name


def _code_of(owner: object) -> CodeType | None:
    if isinstance(owner, FunctionType):
        return owner.__code__
    attribute = _CODE.get(type(owner))
    return getattr(owner, attribute) if attribute else None


_CODE = {CoroutineType: "cr_code", AsyncGeneratorType: "ag_code", GeneratorType: "gi_code"}
