"""The pure parts of shadow isolation and of comparing SQL text, without a database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from gateway.db.isolation import Seal, install_isolation, is_control, sealed
from gateway.exceptions import ShadowEscape
from gateway.shadow.compare import SQL, Outcome, Write, compare
from gateway.shadow.writeset import _writes_as_text

CONTROL = [
    ("COMMIT", "COMMIT"),
    ("  commit work", "COMMIT"),
    ("END", "END"),
    ("abort", "ABORT"),
    ("ROLLBACK", "ROLLBACK"),
    ("ROLLBACK TO SAVEPOINT a", "ROLLBACK"),
    ("begin transaction", "BEGIN"),
    ("START TRANSACTION READ WRITE", "START TRANSACTION"),
    ("SAVEPOINT a", "SAVEPOINT"),
    ("release savepoint a", "RELEASE"),
    ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION"),
    ("set session characteristics as transaction read write", "SET SESSION CHARACTERISTICS"),
    ("SELECT 1; COMMIT", "COMMIT"),
    ("/* hi */ COMMIT", "COMMIT"),
    ("-- note\nCOMMIT", "COMMIT"),
]
NOT_CONTROL = [
    "SELECT 'COMMIT'",
    "UPDATE t SET note = 'x; COMMIT'",
    'SELECT "end" FROM t',
    "SELECT $$ ; COMMIT $$",
    "PREPARE q AS SELECT 1",
    "SET search_path TO app",
    "INSERT INTO audit (what) VALUES ('begin')",
]


@pytest.mark.parametrize(("statement", "found"), CONTROL)
def test_transaction_control_is_found_wherever_it_hides(statement, found):
    assert is_control(statement) == found


@pytest.mark.parametrize("statement", NOT_CONTROL)
def test_words_in_strings_comments_and_other_statements_are_not_control(statement):
    assert is_control(statement) is None


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("update t set a = 1", True),
        ("DELETE FROM t", True),
        ("CREATE TABLE x (a int)", True),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d", True),
        ("SELECT * FROM t", False),
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),
        ("/* INSERT */ SELECT 1", False),
        ("COMMIT", False),
        ("PRAGMA table_info(t)", False),
    ],
)
def test_sql_text_that_may_write_is_told_from_reads(sql, writes):
    assert _writes_as_text(sql) is writes


def test_a_sealed_block_cannot_check_out_any_connection_and_the_attempt_is_kept(tmp_path):
    install_isolation()
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with sealed(Seal()) as seal, pytest.raises(ShadowEscape, match="a connection of its own"):
            engine.connect()
        assert len(seal.attempts) == 1 and "test_isolation.py:" in seal.attempts[0]
        assert engine.pool.checkedout() == 0  # nothing leaked by the refusal
        with engine.connect() as connection:  # unsealed: as before
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_an_attempt_after_the_comparison_goes_to_on_late():
    late: list[str] = []
    seal = Seal(on_late=late.append)
    seal.closed = True
    with pytest.raises(ShadowEscape):
        seal.refuse("COMMIT sent as SQL")
    assert seal.attempts == [] and late[0].startswith("COMMIT sent as SQL")


def sql(statement: str, *params: object) -> Write:
    return Write(statement, SQL, (), params)


def test_sql_text_with_other_values_differs():
    legacy = Outcome(status=201, writes=[sql("INSERT INTO n (t) VALUES (:t)", "a")])
    twin = Outcome(status=201, writes=[sql("INSERT INTO n (t) VALUES (:t)", "b")])
    verdict = compare(legacy, twin)
    assert verdict.outcome == "different"
    assert verdict.writes == [
        "legacy only: SQL 'INSERT INTO n (t) VALUES (:t)' with ['a']",
        "async only: SQL 'INSERT INTO n (t) VALUES (:t)' with ['b']",
    ]
    assert compare(legacy, Outcome(status=201, writes=list(legacy.writes))).outcome == "same"


def test_sql_text_against_an_orm_write_is_uncompared_never_same():
    legacy = Outcome(status=201, writes=[Write("n", "insert", (("t", "a"),))])
    twin = Outcome(status=201, writes=[sql("INSERT INTO n (t) VALUES (:t)", "a")])
    verdict = compare(legacy, twin)
    assert (verdict.same, verdict.outcome) == (False, "uncompared")
    assert all("SQL text on one side only" in line for line in verdict.uncompared)
    twin.status = 200  # anything else that differs makes it different
    assert compare(legacy, twin).outcome == "different"
