"""The gateway's one `checkout` listener: watchers while inside, the refuser in its context."""

from __future__ import annotations

from typing import NoReturn

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.pool import Pool, QueuePool

from gateway.db import checkout
from gateway.db.checkout import install_checkout, refuser, watch_checkouts


class Refused(Exception):
    pass


class Refuser:
    def refuse_checkout(self) -> NoReturn:
        raise Refused("no checkout here")


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", poolclass=QueuePool)
    yield engine
    engine.dispose()


def test_one_listener_however_often_it_is_installed():
    install_checkout()
    install_checkout()
    with watch_checkouts(lambda: None):
        pass
    assert event.contains(Pool, "checkout", checkout._checkout)


def test_a_watcher_sees_each_checkout_while_inside_and_none_after(engine):
    seen: list[str] = []
    with watch_checkouts(lambda: seen.append("a")):
        with engine.connect():
            pass
        with watch_checkouts(lambda: seen.append("b")), engine.connect():
            pass
        with engine.connect():
            pass
    with engine.connect():
        pass
    assert seen == ["a", "a", "b", "a"]
    assert checkout._watchers == ()


def test_the_refuser_stops_checkouts_in_its_context_only(engine):
    install_checkout()
    token = refuser.set(Refuser())
    try:
        with pytest.raises(Refused):
            engine.connect()
    finally:
        refuser.reset(token)
    assert engine.pool.checkedout() == 0  # nothing leaked by the refusal
    with engine.connect():  # outside its context: as before
        pass
