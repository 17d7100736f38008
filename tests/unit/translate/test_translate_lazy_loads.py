"""gateway_lazy_loads_total: lazy relationship loads of legacy requests, by route."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.pool import NullPool

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


@pytest.fixture
def lazy():
    lazy = LazyLoads(CollectorRegistry())
    lazy.install()
    yield lazy
    lazy.uninstall()


def _count(lazy: LazyLoads, relationship: str) -> float:
    return lazy.counter.labels(ROUTE, relationship)._value.get()


@pytest.mark.parametrize(
    ("implementation", "expected"), [(Implementation.LEGACY, 1.0), (Implementation.ASYNC, 0.0)]
)
def test_a_lazy_load_counts_for_the_legacy_route_in_flight(engine, lazy, implementation, expected):
    token = current_request.set(RequestInfo(route=ROUTE, implementation=implementation))
    try:
        with Session(engine) as session:
            user = session.get(User, 1)
            assert [item.title for item in user.items] == ["lamp", "desk", "pen"]
    finally:
        current_request.reset(token)
    assert _count(lazy, "User.items") == expected


def test_eager_loads_and_requests_outside_routes_are_not_counted(engine, lazy):
    token = current_request.set(RequestInfo(route=ROUTE, implementation=Implementation.LEGACY))
    try:
        with Session(engine) as session:
            items = session.scalars(select(Item).options(selectinload(Item.owner))).all()
            assert {item.owner.name for item in items} == {"ada", "grace", "edsger"}
    finally:
        current_request.reset(token)
    with Session(engine) as session:
        assert session.get(User, 2).items[0].title == "pen"  # no request in flight
    assert _count(lazy, "Item.owner") == 0.0
    assert _count(lazy, "User.items") == 0.0
