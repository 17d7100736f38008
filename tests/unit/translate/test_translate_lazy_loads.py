"""gateway_lazy_loads_total: lazy relationship loads of legacy requests, by route."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.pool import NullPool

from gateway.db.events import install_engine_events
from gateway.metrics.lazy_loads import LazyLoads
from gateway.modes import Implementation
from gateway.request_info import RequestInfo, current_request
from tests.apps.tutorial.models import Base, Item, User, seed

ROUTE = "GET /items/{item_id}"


@pytest.fixture
def engine(sqlite_url):
    engine = create_engine(sqlite_url, poolclass=NullPool)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed(session)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _events():
    install_engine_events()  # once per process: the dialect events note the lazy loads


@pytest.mark.parametrize(
    ("implementation", "expected"),
    [(Implementation.LEGACY, ["User.items"]), (Implementation.ASYNC, None)],
)
def test_a_lazy_load_is_noted_for_the_legacy_route_in_flight(engine, implementation, expected):
    info = RequestInfo(route=ROUTE, implementation=implementation)
    token = current_request.set(info)
    try:
        with Session(engine) as session:
            user = session.get(User, 1)  # not a lazy load: the object itself
            assert [item.title for item in user.items] == ["lamp", "desk", "pen"]
    finally:
        current_request.reset(token)
    assert info.lazy_loads == expected


def test_eager_loads_and_requests_outside_routes_are_not_noted(engine):
    info = RequestInfo(route=ROUTE, implementation=Implementation.LEGACY)
    token = current_request.set(info)
    try:
        with Session(engine) as session:
            items = session.scalars(select(Item).options(selectinload(Item.owner))).all()
            assert {item.owner.name for item in items} == {"ada", "grace", "edsger"}
            assert session.get(User, 4).items  # lazy: noted
    finally:
        current_request.reset(token)
    outside = RequestInfo(route=ROUTE, implementation=Implementation.LEGACY)
    with Session(engine) as session:
        assert session.get(User, 2).items[0].title == "pen"  # no request in flight
    assert info.lazy_loads == ["User.items"] and outside.lazy_loads is None


def test_the_counter_counts_each_load_by_route_and_relationship():
    lazy = LazyLoads(CollectorRegistry())
    lazy.count(ROUTE, ["User.items", "User.items", "Item.owner"])
    assert lazy.counter.labels(ROUTE, "User.items")._value.get() == 2.0
    assert lazy.counter.labels(ROUTE, "Item.owner")._value.get() == 1.0
