"""gateway translate: the example's users module and a tutorial CRUD module, translated and
run against their originals on real databases; --check catches a broken translation of
each semantic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

import tests.apps.tutorial.crud as legacy_crud
import tests.apps.tutorial_broken as broken
from gateway._compat import SYNC_POSTGRES_DRIVER
from gateway.cli.commands import cli
from gateway.translate.check.runner import check_modules, normalise_sql
from gateway.translate.files import MARK, translate_file
from gateway.urls import derive_urls
from tests.apps.tutorial.models import Base, seed
from tests.unit.translate.written import load_code

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]
CRUD = ROOT / "tests" / "apps" / "tutorial" / "crud.py"
BROKEN = sorted(
    name for name, value in vars(broken).items()
    if callable(value) and getattr(value, "__module__", "") == broken.__name__
)  # fmt: skip


@pytest.fixture(scope="module")
def crud_translation():
    return translate_file(CRUD)


@pytest.fixture
def translated_crud(crud_translation, tmp_path):
    return load_code(crud_translation.code, tmp_path, "tutorial_crud_translated")


@pytest.fixture
def seeded_url(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername=SYNC_POSTGRES_DRIVER)
    engine = create_engine(url, poolclass=NullPool)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed(session)
    engine.dispose()
    return database_url


def test_tutorial_module_translates_with_few_fallbacks_each_marked(crud_translation):
    functions = crud_translation.translated
    assert len(functions) == 30, functions
    fallen = crud_translation.fallback_functions
    assert fallen == {"page_of_items", "upsert_item_price"}
    assert len(fallen) / len(functions) <= 0.15
    comments = " ".join(
        line.strip().removeprefix("# ") for line in crud_translation.code.splitlines()
        if line.strip().startswith("#")
    )  # fmt: skip
    for fallback in crud_translation.fallbacks:
        assert fallback.path.endswith("crud.py") and fallback.line > 0
        assert f"{MARK}: {fallback.reason}" in comments  # wrapped to the line length
    # Every function that took a Session is async, awaited where it calls a helper.
    assert crud_translation.code.count("async def ") == 30
    assert "if await get_user_by_email(db, user.email) is not None:" in crud_translation.code
    assert "return await create_user(db, user)" in crud_translation.code
    # Kept as written: the comments and the module docstring.
    assert "# A join to a collection: the legacy Query returns each user once." in (
        crud_translation.code
    )
    assert crud_translation.code.startswith('"""CRUD helpers in the old tutorial style')


def test_semantics_in_the_output(crud_translation):
    code = crud_translation.code
    assert "select(User).join(User.items).order_by(User.id))).unique().scalars().all()" in code
    assert ".scalar_one_or_none()" in code  # Query.scalar() is one() then the first column
    assert "select(func.count()).select_from(select(User).join(User.items).subquery())" in code
    assert "await db.get(User, user_id, options=[joinedload(User.items)])" in code
    assert ".options(selectinload(Item.owner))" in code  # read in the function afterwards
    assert '.execution_options(synchronize_session="fetch")' in code


async def test_both_versions_agree_on_the_same_database(
    seeded_url, crud_translation, translated_crud
):
    verdicts = await check_modules(
        legacy_crud, translated_crud, seeded_url, fallbacks=crud_translation.fallback_functions
    )
    by_name = {v.function: v for v in verdicts}
    assert set(by_name) == set(crud_translation.translated)
    differing = [str(v) for v in verdicts if v.status == "differs"]
    assert differing == []
    assert {n for n, v in by_name.items() if v.status == "fallback"} == {
        "page_of_items",
        "upsert_item_price",
    }
    assert all(v.runs >= 1 for v in verdicts)


async def test_limits_are_kept(seeded_url, translated_crud):
    _, async_url = derive_urls(seeded_url)
    engine = create_async_engine(async_url, poolclass=NullPool)
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    try:
        async with AsyncSession(engine) as session:
            user = await translated_crud.get_user_by_email(session, "grace@example.com")
            first = await translated_crud.first_user_with_items(session)
            page = await translated_crud.second_and_third_items(session)
    finally:
        await engine.dispose()
    assert user.name == "grace"
    assert (first.name, [i.title for i in first.items]) == ("ada", ["lamp", "desk", "pen"])
    assert [item.title for item in page] == ["desk", "pen"]
    assert "LIMIT" in sent[0]
    # With a joined eager load the LIMIT applies to the users, inside a subquery.
    assert "LIMIT" in sent[1] and "LEFT OUTER JOIN" in sent[1]
    assert "LIMIT" in sent[2] and "OFFSET" in sent[2]


# A broken translation sends different SQL or gets different results: cartesian products,
# lazy loads outside the greenlet and never-awaited driver coroutines are what it is made of.
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("name", BROKEN)
async def test_check_catches_a_broken_translation_of_each_semantic(seeded_url, name):
    [verdict] = await check_modules(legacy_crud, broken, seeded_url, only={name})
    assert verdict.status == "differs", str(verdict)
    assert verdict.detail


def test_normalise_sql_removes_legacy_labels_and_driver_differences():
    legacy = normalise_sql(
        "SELECT users.id AS users_id, users.name AS users_name \nFROM users LIMIT %(p)s::INTEGER",
        {"p": 1},
    )
    modern = normalise_sql("SELECT users.id, users.name FROM users LIMIT $1::INTEGER", (1,))
    assert legacy == modern == ("SELECT users.id, users.name FROM users LIMIT %s", (1,))
    # A different LIMIT stays different.
    assert normalise_sql("SELECT 1 LIMIT ?", (2,)) != normalise_sql("SELECT 1 LIMIT ?", (1,))


def test_translated_users_pass_the_example_tests():
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "tests.apps.translated_users", "tests/e2e/test_example_users.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "translated from legacy_routes/users.py" in result.stdout, result.stdout[-3000:]
    assert "mounted by the example: True" in result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_cli_translates_and_checks(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.chdir(ROOT)
    engine = create_engine(sqlite_url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed(session)
    engine.dispose()
    out = tmp_path / "crud_async.py"
    result = CliRunner().invoke(
        cli, ["translate", "tests/apps/tutorial/crud.py", "-o", str(out), "--check", sqlite_url]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().count("async def ") == 30
    output = result.output
    assert "30 functions async, 2 with fallbacks" in output
    line = next(
        n for n, text in enumerate(CRUD.read_text().splitlines(), 1) if "[skip : skip" in text
    )
    assert f"fallback tests/apps/tutorial/crud.py:{line}: page_of_items:" in output
    assert "check get_user_by_email: verified" in output
    assert "check page_of_items: fallback" in output


def test_cli_names_a_missing_source():
    result = CliRunner().invoke(cli, ["translate", "no/such/module.py"])
    assert result.exit_code == 1
    assert "Source 'no/such/module.py' is not a file" in result.output
