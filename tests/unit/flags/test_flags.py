"""Modes, percentages and the pure per-request decision: no database, no app."""

from __future__ import annotations

import pytest

from gateway.exceptions import FlagError, UnknownModeError, UnknownRouteError
from gateway.flags.table import BUCKETS, Flag, ModeTable, bucket, check_change, choose, parse_flag
from gateway.modes import Implementation, Mode

KEY = "GET /users/{user_id}"
USERS = [f"user-{i}" for i in range(20_000)]
BOTH = [Implementation.LEGACY, Implementation.ASYNC]


@pytest.mark.parametrize(
    ("mode", "percent", "expected"),
    [
        ("legacy", None, Flag(Mode.LEGACY, 0)),
        ("legacy", 0, Flag(Mode.LEGACY, 0)),
        ("async", None, Flag(Mode.ASYNC, 100)),
        ("async", 100, Flag(Mode.ASYNC, 100)),
        ("canary", 0, Flag(Mode.CANARY, 0)),
        ("canary", 12.5, Flag(Mode.CANARY, 12.5)),
        ("canary", 100, Flag(Mode.CANARY, 100)),
    ],
)
def test_parse_flag_accepts(mode, percent, expected):
    assert parse_flag(mode, percent) == expected


@pytest.mark.parametrize(
    ("mode", "percent", "field", "words"),
    [
        ("shadow", 101, "percent", "out of range; expected 0 to 100"),
        ("asnyc", None, "mode", "expected one of legacy, async, canary, shadow"),
        ("canary", None, "percent", "needs percent"),
        ("canary", 100.5, "percent", "out of range; expected 0 to 100"),
        ("canary", -1, "percent", "out of range"),
        ("canary", float("nan"), "percent", "out of range"),
        ("canary", True, "percent", "not a number"),
        ("canary", "10", "percent", "not a number"),
        ("legacy", 50, "percent", "does not go with mode 'legacy'"),
        ("async", 0, "percent", "does not go with mode 'async'"),
    ],
)
def test_parse_flag_rejects_naming_the_field(mode, percent, field, words):
    with pytest.raises(FlagError) as caught:
        parse_flag(mode, percent)
    assert caught.value.field == field
    assert words in str(caught.value)
    if field == "mode":
        assert isinstance(caught.value, UnknownModeError)


def test_check_change_knows_routes_and_their_implementations():
    routes = {
        KEY: BOTH,
        "GET /reports": [Implementation.LEGACY],
        "GET /feed": [Implementation.ASYNC],
    }
    assert check_change(KEY, "canary", 10, routes) == Flag(Mode.CANARY, 10)
    with pytest.raises(UnknownRouteError) as unknown:
        check_change("GET /users/{userid}", "async", None, routes)
    assert unknown.value.suggestions[0] == KEY
    for key, words in (("GET /reports", "only a legacy"), ("GET /feed", "only an async")):
        with pytest.raises(FlagError) as single:
            check_change(key, "legacy", None, routes)
        assert single.value.field == "route_key"
        assert f"Route {key!r} has {words} implementation" in str(single.value)


def test_bucket_is_stable_across_processes_and_hosts():
    # Fixed values: a change to the hash would move every user to the other side.
    assert [bucket(KEY, k) for k in ("user-1", "user-2", "42")] == [4488, 2141, 9060]
    assert all(0 <= bucket(KEY, k) < BUCKETS for k in USERS[:1000])


def test_canary_ten_percent_sends_about_ten_percent_by_key():
    flag = Flag(Mode.CANARY, 10)
    sides = [choose(flag, salt=KEY, request_key=user) for user in USERS]
    share = sides.count(Implementation.ASYNC) / len(USERS)
    assert 0.09 <= share <= 0.11
    # The same key always lands on the same side.
    assert sides == [choose(flag, salt=KEY, request_key=user) for user in USERS]


def test_raising_the_percentage_only_adds_buckets():
    chosen = {}
    for percent in (0, 1, 5, 10, 25, 50, 99, 100):
        flag = Flag(Mode.CANARY, percent)
        on_async = {u for u in USERS[:5000] if choose(flag, salt=KEY, request_key=u) == "async"}
        for earlier in chosen.values():
            assert earlier <= on_async
        chosen[percent] = on_async
    assert chosen[0] == set()
    assert len(chosen[100]) == 5000


def test_salt_scopes_buckets_per_route():
    flag = Flag(Mode.CANARY, 10)
    one = {u for u in USERS if choose(flag, salt="GET /a", request_key=u) == "async"}
    two = {u for u in USERS if choose(flag, salt="GET /b", request_key=u) == "async"}
    assert one != two


def test_without_a_key_a_draw_decides():
    flag = Flag(Mode.CANARY, 30)
    assert choose(flag, salt=KEY, request_key=None, draw=lambda: 0.29) == "async"
    assert choose(flag, salt=KEY, request_key=None, draw=lambda: 0.30) == "legacy"
    assert choose(Flag(Mode.ASYNC, 100), salt=KEY, request_key=None) == "async"
    assert choose(Flag(Mode.LEGACY), salt=KEY, request_key="x") == "legacy"


def test_mode_table_notifies_changes_only():
    table = ModeTable([KEY])
    seen = []
    table.on_change(lambda key, old, new: seen.append((key, old.mode, new.mode)))
    table.set(KEY, Flag(Mode.LEGACY))
    table.set_mode(KEY, "async")
    assert seen == [(KEY, Mode.LEGACY, Mode.ASYNC)]
    with pytest.raises(UnknownRouteError):
        table.set_mode("GET /nope", "async")


def test_shadow_serves_legacy_and_samples_by_the_canary_buckets():
    from gateway.flags.table import shadowed

    assert parse_flag("shadow") == Flag(Mode.SHADOW, 100.0)
    assert parse_flag("shadow", 10).describe() == "shadow 10%"
    flag = Flag(Mode.SHADOW, 10)
    keys = [f"user-{i}" for i in range(2000)]
    assert {choose(flag, salt="GET /x", request_key=k) for k in keys} == {Implementation.LEGACY}
    sampled = [k for k in keys if shadowed(flag, salt="GET /x", request_key=k)]
    assert 0.07 <= len(sampled) / len(keys) <= 0.13
    canary = Flag(Mode.CANARY, 10)
    # The same keys: a canary at the same percent sends exactly the shadowed keys to async.
    assert sampled == [
        k for k in keys if choose(canary, salt="GET /x", request_key=k) is Implementation.ASYNC
    ]
    assert not shadowed(Flag(Mode.SHADOW, 0), salt="GET /x", request_key=None)
    assert shadowed(Flag(Mode.SHADOW, 100), salt="GET /x", request_key=None)
    assert not shadowed(Flag(Mode.CANARY, 100), salt="GET /x", request_key="k")
