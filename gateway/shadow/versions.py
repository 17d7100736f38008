"""Which version of a twin is being compared: a fingerprint of its code.

    twin_version(create_user)      # "3f2a9c41d0e7": the same on every worker and host

Comparisons are kept per version, so a redeployed twin starts at 0 instead of carrying its
old errors. The fingerprint covers the source of the file the endpoint is defined in (its
helpers there count too) and its qualified name, or, when no source can be read, its
bytecode and constants. Code in other modules that the twin calls is not covered.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from types import CodeType
from typing import Any

__all__ = ["twin_version"]


def twin_version(func: Callable[..., Any]) -> str:
    """A short fingerprint of `func`'s code (decorators unwrapped); stable across processes."""
    func = inspect.unwrap(func)
    digest = hashlib.sha256(getattr(func, "__qualname__", repr(func)).encode())
    source = _module_source(func)
    if source is not None:
        digest.update(source)
    else:
        code = getattr(func, "__code__", None)
        if code is not None:
            digest.update(_code_bytes(code))
    return digest.hexdigest()[:12]


def _module_source(func: Callable[..., Any]) -> bytes | None:
    # The file the code was compiled from, not sys.modules: a module reloaded since
    # would give the new source to the old function.
    try:
        path = inspect.getsourcefile(func)
        if path is None:
            return None
        with open(path, "rb") as source:
            return source.read()
    except (OSError, TypeError):
        return None


def _code_bytes(code: CodeType) -> bytes:
    # Not marshal.dumps(code): it holds the file's path, which differs between hosts.
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, CodeType) else repr(const).encode())
    return b"\0".join(parts)
