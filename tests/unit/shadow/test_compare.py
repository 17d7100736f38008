"""gateway.shadow.compare: JSON bodies by path, committed writes with generated keys, noise."""

from __future__ import annotations

from gateway.shadow.compare import Noise, Outcome, Write, compare, json_paths, unordered_paths


def outcome(body: bytes = b"{}", status: int = 200, **parts) -> Outcome:
    return Outcome(status=status, headers={"content-type": "application/json"}, body=body, **parts)


def test_json_paths_name_each_differing_leaf_and_length():
    one = {"id": 1, "name": "ada", "tags": ["a", "b"], "owner": {"email": "x@y"}}
    other = {"id": 1, "name": "Ada", "tags": ["a"], "owner": {"email": "x@z"}, "extra": 1}
    assert json_paths(one, other) == [
        "$.extra",
        "$.name",
        "$.owner.email",
        "$.tags (length 2 != 1)",
    ]
    assert json_paths([1, 2], [1, 2]) == []
    assert json_paths(1, 1.0) == ["$"]  # an int that became a float is a difference
    assert json_paths(True, 1) == ["$"]


def test_unordered_lists_are_found_and_then_compared_as_multisets():
    one = {"items": [{"id": 1}, {"id": 2}]}
    other = {"items": [{"id": 2}, {"id": 1}]}
    assert unordered_paths(one, other) == {"$.items"}
    assert json_paths(one, other, unordered={"$.items"}) == []
    assert json_paths(one, {"items": [{"id": 2}, {"id": 3}]}, unordered={"$.items"}) == ["$.items"]


def test_noise_learned_from_two_runs_is_not_reported():
    noise = Noise()
    assert noise.learn({"at": "10:00", "name": "ada"}, {"at": "10:01", "name": "ada"})
    assert not noise.learn({"at": "10:02", "name": "ada"}, {"at": "10:03", "name": "ada"})
    verdict = compare(
        outcome(b'{"at": "11:00", "name": "ada"}'),
        outcome(b'{"at": "12:00", "name": "Ada"}'),
        noise,
    )
    assert verdict.fields == ["$.name"]
    listed = Noise()
    listed.learn([{"at": 1}, {"at": 2}], [{"at": 3}, {"at": 4}])
    assert listed.paths == {"$[].at"}
    # Learned per field: a third item's timestamp is noise too, its name is not.
    three = outcome(b'[{"at":1},{"at":2},{"at":5,"n":"a"}]')
    assert compare(three, outcome(b'[{"at":7},{"at":8},{"at":9,"n":"a"}]'), listed).same
    assert compare(three, outcome(b'[{"at":7},{"at":8},{"at":9,"n":"b"}]'), listed).fields == [
        "$[2].n"
    ]


def test_generated_keys_are_matched_in_bodies_and_writes():
    legacy = outcome(
        b'{"id": 8, "name": "ada"}',
        status=201,
        writes=[Write("users", "insert", (("name", "ada"),))],
        generated=[8],
    )
    candidate = outcome(
        b'{"id": 7, "name": "ada"}',
        status=201,
        writes=[Write("users", "insert", (("name", "ada"),))],
        generated=[7],
    )
    assert compare(legacy, candidate).same
    candidate.body = b'{"id": 9, "name": "ada"}'  # not the key it generated
    assert compare(legacy, candidate).fields == ["$.id"]


def test_writes_differ_by_rows_and_where_and_commit():
    with_where = Write("users", "update", (("name", "x"),), (5,), 1)
    without = Write("users", "update", (("name", "x"),), (), 4)
    verdict = compare(outcome(writes=[with_where]), outcome(writes=[without]))
    assert verdict.writes == [
        "legacy only: update users set name='x' where [5] (1 rows)",
        "async only: update users set name='x' with no WHERE (4 rows)",
    ]
    forgot = compare(outcome(writes=[with_where]), outcome(uncommitted=1))
    assert forgot.writes[-1] == "async wrote 1 statement(s) but never committed (legacy did)"
    # Parameter names differ between Query and select() code; only the values count.
    assert compare(outcome(writes=[with_where]), outcome(writes=[with_where])).same


def test_status_headers_and_work():
    verdict = compare(outcome(status=201), outcome(status=200))
    assert verdict.status == (201, 200) and not verdict.same
    moved = outcome()
    moved.headers = {"content-type": "text/plain"}
    assert compare(outcome(), moved).fields == ["header content-type"]
    assert compare(outcome(b"<p>a</p>"), outcome(b"<p>b</p>")).fields == [
        "body (not JSON: the bytes differ)"
    ]
    lost_limit = compare(outcome(unlimited_selects=0), outcome(unlimited_selects=1))
    assert lost_limit.work == [
        "async ran 1 SELECT(s) without LIMIT, legacy 0 (a .first() that lost its LIMIT 1?)"
    ]
    fetched = compare(outcome(rows_fetched=1), outcome(rows_fetched=40))
    assert fetched.work == ["async fetched 40 rows, legacy 1"]
    assert compare(outcome(rows_fetched=None), outcome(rows_fetched=40)).same
