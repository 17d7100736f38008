"""The pieces of shadow results, without a gateway: a Failure's parts, the redactor, the
twin's version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Integer, String, create_engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, declarative_base

from gateway.shadow.compare import Outcome, Write
from gateway.shadow.failures import HIDDEN, Failure, where_defined
from gateway.shadow.redact import Redactor
from gateway.shadow.versions import twin_version
from gateway.urls import derive_urls

HERE = Path(__file__).name
EMAIL = "ada.lovelace@example.com"


def _raise_here() -> None:
    raise RuntimeError("first line\nsecond line")


def test_a_failure_is_its_first_line_and_keeps_the_whole_message_and_the_apps_line():
    try:
        _raise_here()
    except RuntimeError as exc:
        failure = Failure.of(exc)
    line = _raise_here.__code__.co_firstlineno + 1
    assert failure == "RuntimeError: first line"  # what the runner compares
    assert failure.as_dict() == {
        "type": "RuntimeError",
        "message": "first line\nsecond line",
        "where": f"tests/unit/shadow/{HERE}:{line}",
    }


def test_where_is_the_last_frame_in_the_apps_code_not_a_librarys():
    try:
        json.loads("{")  # raised deep in the standard library
    except ValueError as exc:
        failure = Failure.of(exc)
    assert failure.type == "JSONDecodeError"
    assert failure.where is not None
    path, line = failure.where.rsplit(":", 1)
    assert (
        path.endswith(HERE) and "json.loads" in Path(path).read_text().splitlines()[int(line) - 1]
    )


def test_with_no_frame_of_the_app_where_is_the_endpoints_def():
    def endpoint() -> None: ...

    failure = Failure.of(KeyError("x"), endpoint)  # never raised: no traceback at all
    assert failure.where == where_defined(endpoint)
    assert failure.where.endswith(f"{HERE}:{endpoint.__code__.co_firstlineno}")


class Person(BaseModel):
    email: str
    age: int


def test_a_validation_error_is_whole_without_its_inputs_unless_kept():
    try:
        Person(email=EMAIL, age="not a number")  # type: ignore[arg-type]
    except ValidationError as exc:
        failure = Failure.of(exc)
    assert failure.message.splitlines()[0] == "1 validation error:"
    assert failure.message.splitlines()[1].startswith("  age: Input should be a valid integer")
    assert "not a number" not in failure.message
    assert "not a number" in failure.as_dict(keep_values=True)["message"]


def test_a_database_errors_detail_and_parameters_are_left_out(database_url):
    Base = declarative_base()

    class Account(Base):
        __tablename__ = "accounts"
        id = Column(Integer, primary_key=True)
        email = Column(String(200), unique=True)

    engine = create_engine(derive_urls(database_url)[0])
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([Account(email=EMAIL), Account(email=EMAIL)])
            with pytest.raises(IntegrityError) as raised:
                session.commit()
    finally:
        engine.dispose()
    failure = Failure.of(raised.value)
    assert EMAIL not in failure.message and EMAIL in failure.raw
    assert failure.message.splitlines()[0].startswith("(")  # the driver's error type
    assert "accounts" in failure.message  # the constraint or table, and the statement
    assert "[SQL: INSERT INTO accounts" in failure.message
    if database_url.startswith("postgresql"):  # "DETAIL:  Key (email)=(...) already exists."
        assert HIDDEN in failure.message


def test_the_redactor_hides_values_and_keeps_names_and_counts():
    legacy = Outcome(
        writes=[Write("users", "update", (("email", EMAIL), ("age", 36)), (7,), 3)],
        body=json.dumps({"name": "Ada King", "id": 7}).encode(),
    )
    hide = Redactor.of(legacy, Outcome())
    described = legacy.writes[0].describe()
    assert described == f"update users set email='{EMAIL}', age=36 where [7] (3 rows)"
    assert hide.text(described) == "update users set email=…, age=… where […] (3 rows)"
    assert hide.text("Key (email)=(ada.lovelace@example.com) exists") == "Key (email)=(…) exists"
    assert hide.data({"$.name": ["hello Ada King"]}) == {"$.name": ["hello …"]}


def test_a_twins_version_follows_its_source_not_its_path(tmp_path):
    def load(directory: str, source: str):
        path = tmp_path / directory / "twin.py"
        path.parent.mkdir()
        path.write_text(source)
        namespace: dict = {}
        exec(compile(source, str(path), "exec"), namespace)  # as an import compiles it
        return namespace["route"]

    one = load("a", "async def route():\n    return 1\n")
    same = load("b", "async def route():\n    return 1\n")
    other = load("c", "async def route():\n    return 2\n")
    assert twin_version(one) == twin_version(same) != twin_version(other)
    assert len(twin_version(one)) == 12


def test_an_app_installed_in_site_packages_is_still_the_apps_code(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "billing_app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "routes.py").write_text(
        "def helper():\n    raise LookupError('no invoice')\n\n\n"
        "async def invoice():\n    helper()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site-packages"))
    from billing_app import routes

    try:
        routes.helper()
    except LookupError as exc:
        failure, unknown = Failure.of(exc, routes.invoice), Failure.of(exc)
    assert failure.where is not None and failure.where.endswith("billing_app/routes.py:2")
    assert unknown.where is not None and HERE in unknown.where  # an installed package's: not it
