"""gateway._compat.stdlib: the 3.11 standard-library names, the same on Python 3.10 to 3.13.

The 3.10 stand-ins (gateway._compat.py310) run here on every version, side by side with what
`gateway._compat` gives there (the standard library's own from 3.11 on), so the main 3.11
run checks that they behave alike; on 3.10 the two are the same objects.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
from datetime import datetime, timezone
from enum import auto
from pathlib import Path

import pytest

from gateway import _compat as compat
from gateway._compat import py310
from gateway.canary.sequential import Decision
from gateway.db.errors import Cause
from gateway.modes import Implementation, Mode

GATEWAY = Path(compat.__file__).resolve().parent.parent
STR_ENUMS = [pytest.param(compat.StrEnum, id="compat"), pytest.param(py310.StrEnum, id="py310")]
TIMEOUTS = [pytest.param(compat.timeout, id="compat"), pytest.param(py310.timeout, id="py310")]
WAIT_FORS = [pytest.param(compat.wait_for, id="compat"), pytest.param(py310.wait_for, id="py310")]

# Standard-library names of Python 3.11+ (or, for wait_for, with a 3.11-only TimeoutError)
# that the gateway takes from gateway._compat instead.
NEWER_THAN_310 = {
    "enum.StrEnum",
    "enum.ReprEnum",
    "datetime.UTC",
    "tomllib",
    "asyncio.timeout",
    "asyncio.timeout_at",
    "asyncio.wait_for",
    "asyncio.TaskGroup",
    "asyncio.Runner",
    "typing.Self",
    "typing.LiteralString",
    "typing.Never",
    "typing.assert_never",
    "typing.reveal_type",
    "typing.Required",
    "typing.NotRequired",
    "hashlib.file_digest",
    "contextlib.chdir",
}
NEWER_BUILTINS = {"ExceptionGroup", "BaseExceptionGroup"}


def _newer_names(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"]
        elif isinstance(node, ast.Name):
            names = [node.id] if node.id in NEWER_BUILTINS else []
        else:
            continue
        found += [f"{path.relative_to(GATEWAY)}:{node.lineno}: {n}" for n in names]
    return [hit for hit in found if hit.split(": ")[1] in NEWER_THAN_310 | NEWER_BUILTINS]


def test_names_newer_than_python_310_come_from_compat() -> None:
    outside = [p for p in GATEWAY.rglob("*.py") if "_compat" not in p.relative_to(GATEWAY).parts]
    found = [hit for path in sorted(outside) for hit in _newer_names(path)]
    assert found == [], "3.11+ names outside gateway/_compat (import them from there): " + (
        "; ".join(found)
    )


def test_the_fence_sees_a_newer_name() -> None:
    probe = GATEWAY / "_probe_newer_never_committed.py"
    probe.write_text(
        "from enum import StrEnum\nimport tomllib\nimport asyncio\nasyncio.timeout(1)\n"
        "raise ExceptionGroup('x', [])\n"
    )
    try:
        hits = [hit.split(": ")[1] for hit in _newer_names(probe)]
    finally:
        probe.unlink()
    assert hits == ["enum.StrEnum", "tomllib", "asyncio.timeout", "ExceptionGroup"]


@pytest.mark.parametrize("member", [*Mode, *Implementation, *Decision, *Cause], ids=repr)
def test_every_gateway_str_enum_member_reads_as_its_value(member: compat.StrEnum) -> None:
    value = member.value
    assert isinstance(value, str)
    assert isinstance(member, str) and member == value
    assert (str(member), f"{member}", format(member, "")) == (value, value, value)
    assert "%s" % member == value  # noqa: UP031 - as log lines format it
    assert f"{member:>12}" == f"{value:>12}"
    assert json.dumps({"mode": member}) == json.dumps({"mode": value})
    assert type(member)(value) is member


@pytest.mark.parametrize("base", STR_ENUMS)
def test_str_enum_behaves_as_pythons_3_11(base: type[compat.StrEnum]) -> None:
    class Color(base):
        RED = "red"
        DARK_BLUE = auto()

    assert Color.DARK_BLUE.value == "dark_blue"  # auto(): the name, lower-cased
    assert repr(Color.RED) == "<Color.RED: 'red'>"
    assert (str(Color.RED), f"{Color.RED}", Color("red")) == ("red", "red", Color.RED)
    assert Color.RED.upper() == "RED" and Color.RED + "!" == "red!"
    assert sorted(Color) == [Color.DARK_BLUE, Color.RED]  # compared as strings
    with pytest.raises(TypeError, match="1 is not a string"):

        class Numbers(base):
            ONE = 1


def test_utc_is_the_one_utc() -> None:
    assert compat.UTC is py310.UTC is timezone.utc
    assert datetime(2026, 1, 1, tzinfo=compat.UTC).isoformat() == "2026-01-01T00:00:00+00:00"


def test_tomllib_reads_toml_and_names_the_error() -> None:
    assert compat.tomllib.loads('[routes]\n"GET /" = "async"\n') == {"routes": {"GET /": "async"}}
    with pytest.raises(compat.tomllib.TOMLDecodeError) as caught:
        compat.tomllib.loads("[routes\n")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_timeout_raises_the_builtin_timeout_error_and_lets_cleanup_finish(timeout) -> None:
    cleaned: list[str] = []

    async def slow_with_cleanup() -> None:
        async with timeout(0.01):
            try:
                await asyncio.sleep(10)
            finally:
                await asyncio.sleep(0.01)  # a rollback: not cancelled a second time
                cleaned.append("rolled back")

    with pytest.raises(TimeoutError):
        asyncio.run(slow_with_cleanup())
    assert cleaned == ["rolled back"]


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_timeout_in_time_or_none_changes_nothing(timeout) -> None:
    async def quick() -> list[str]:
        async with timeout(10):
            await asyncio.sleep(0)
        async with timeout(None):
            await asyncio.sleep(0.02)
        return ["done"]

    assert asyncio.run(quick()) == ["done"]


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_timeout_leaves_a_cancellation_from_outside_a_cancellation(timeout) -> None:
    async def cancelled_from_outside() -> None:
        async def inner() -> None:
            async with timeout(10):
                await asyncio.sleep(10)

        task = asyncio.ensure_future(inner())
        await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled_from_outside())


@pytest.mark.parametrize("wait_for", WAIT_FORS)
def test_wait_for_raises_the_builtin_timeout_error(wait_for) -> None:
    async def main() -> str:
        assert await wait_for(asyncio.sleep(0, result="in time"), 1) == "in time"
        try:
            await wait_for(asyncio.sleep(10), 0.01)
        except TimeoutError:  # on 3.10, asyncio.wait_for's own error is not one
            return "caught"
        return "not caught"

    assert asyncio.run(main()) == "caught"


def _factory():  # type: ignore[no-untyped-def]
    class Owner:
        async def method(self) -> None: ...

    async def local() -> None: ...

    return Owner.method, local


@pytest.mark.parametrize("function", [*_factory(), test_utc_is_the_one_utc])
def test_the_310_qualname_of_a_code_object_is_its_functions(function) -> None:  # type: ignore[no-untyped-def]
    code = function.__code__
    assert py310.function_qualname(code) == function.__qualname__
    assert compat.code_qualname(code) == function.__qualname__


def test_the_310_qualname_of_a_running_coroutine_whose_function_is_gone() -> None:
    names = []

    def factory():  # type: ignore[no-untyped-def]
        async def route() -> None:
            frame = inspect.currentframe()
            assert frame is not None
            names.append(py310.function_qualname(frame.f_code))

        return route

    asyncio.run(factory()())  # the function is dropped once its coroutine exists
    assert names == [f"{factory.__qualname__}.<locals>.route"]
