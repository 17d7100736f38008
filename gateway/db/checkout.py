"""The gateway's one `checkout` listener on every SQLAlchemy pool of the process.

    install_checkout()                       # once, before serving (idempotent)
    token = refuser.set(seal)                # here, a checkout calls seal.refuse_checkout()
    with watch_checkouts(outage.succeeded):  # called at each checkout while inside
        ...

Two parts of the gateway need to see every checkout of the process: the shadow seal refuses
one made inside a twin (gateway.db.isolation), and the outage watch learns that the database
answers again (gateway.db.outage). As soon as any `checkout` listener is on `Pool`,
SQLAlchemy sends every checkout through its slow path (the event dispatch inside a retry
loop: ~6,000 instructions a checkout on SQLAlchemy 2.1), and each further listener adds
~1,200. So both share this one listener: the seal's check is a ContextVar read inlined in
it, and a checkout outside a seal pays nothing else for the seal.

Watchers sit in a tuple that is replaced whole, never changed in place: adding or removing
one while another thread is inside a checkout cannot disturb it. The listener itself goes
on `Pool` once, before the gateway serves (SQLAlchemy's own listener collection is changed
in place, so it is never added while requests run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

__all__ = ["install_checkout", "refuser", "watch_checkouts"]

refuser: ContextVar[Any] = ContextVar("gateway_checkout_refuser", default=None)
"""What refuses checkouts in the current context (an object with `refuse_checkout()`,
gateway.db.isolation's Seal), or None: a checkout then goes ahead."""

_watchers: tuple[Callable[[], None], ...] = ()
_installed = False


def _checkout(_dbapi: Any, _record: Any, _proxy: Any) -> None:
    refusing = refuser.get()
    if refusing is not None:
        refusing.refuse_checkout()
    for watcher in _watchers:
        watcher()


def install_checkout() -> None:
    """Put the listener on every pool of the process (idempotent; call before serving)."""
    global _installed
    if _installed:
        return
    event.listen(Pool, "checkout", _checkout)
    _installed = True


@contextmanager
def watch_checkouts(watcher: Callable[[], None]) -> Iterator[None]:
    """Call `watcher()` after every checkout of the process that goes ahead, while inside."""
    global _watchers
    install_checkout()
    _watchers = (*_watchers, watcher)
    try:
        yield
    finally:
        remaining = list(_watchers)
        remaining.remove(watcher)
        _watchers = tuple(remaining)
