"""gateway translate on the corpus of real-world layouts (tests/apps/translate_corpus): every
function taking a session is accounted for, and the translated package, mounted as an
app, answers every request as the legacy app does and leaves the same tables, on
PostgreSQL, through the dependency chain (current_user and the route share one session)."""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pyflakes import api as pyflakes_api
from pyflakes.reporter import Reporter
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from gateway import get_async_session
from gateway.cli.commands import cli
from gateway.translate.files import MARK, translate_files
from gateway.urls import derive_urls
from tests.apps.translate_corpus import create_app
from tests.apps.translate_corpus.database import Base, SessionLocal
from tests.apps.translate_corpus.models import seed
from tests.unit.translate.written import imported_translation

pytestmark = [pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "apps" / "translate_corpus"
SOURCES = sorted(CORPUS.glob("crud/*.py")) + sorted(CORPUS.glob("api/*.py"))

# Every function or method of the corpus that takes a session, or calls one that does.
TRANSLATED = {
    "crud.base": {"CRUDBase.get", "CRUDBase.get_multi", "CRUDBase.create", "CRUDBase.update",
                  "CRUDBase.remove"},
    "crud.crud_user": {"CRUDUser.get_by_email", "CRUDUser.create", "CRUDUser.deactivate_all_but",
                       "CRUDUser.deactivate_domain"},
    "crud.crud_post": {"CRUDPost.create_with_owner", "CRUDPost.get_multi_by_owner",
                       "CRUDPost.count_by_owner", "CRUDPost.with_votes"},
    "crud.utils": {"titles", "search"},
    "api.deps": {"get_current_user"},
    "api.utils": {"page_of_users"},
    "api.users": {"read_users", "read_page", "create_user", "update_me", "read_user",
                  "deactivate_others", "deactivate_domain"},
    "api.posts": {"posts_with_votes", "create_post", "search_posts", "my_titles", "count_mine",
                  "post_tags", "view_post", "delete_post"},
}  # fmt: skip
FALLBACKS = {
    "api.posts": {"record_view"},  # opens its own SessionLocal: runs the legacy one
    "crud.crud_user": {"CRUDUser.deactivate_domain"},  # q.update() of a step-built query
}
REASONS = {
    "record_view": "opens its own session: runs its legacy original, kept sync",
    "CRUDUser.deactivate_domain": ".update() of query 'q' built in steps: which criteria it "
    "holds is known at run time only",
}

# One scenario, sent to both apps: (method, path, user header, JSON body).
SCENARIO: list[tuple[str, str, int | None, dict[str, Any] | None]] = [
    ("GET", "/users/", None, None),
    ("GET", "/users/page?skip=1", None, None),
    ("POST", "/users/", None, {"email": "edsger@example.com", "name": "edsger"}),
    ("POST", "/users/", None, {"email": "ada@example.com", "name": "again"}),
    ("PUT", "/users/me", 1, {"name": "ada lovelace"}),
    ("GET", "/users/1", 1, None),  # their own record: the same object as current_user
    ("GET", "/users/2", 1, None),
    ("GET", "/users/99", 1, None),
    ("GET", "/users/1", 3, None),  # inactive
    ("GET", "/users/1", 99, None),  # unknown
    ("GET", "/posts/votes", None, None),  # (Post, votes) rows, the owner nested
    ("POST", "/posts/", 2, {"title": "inks"}),  # created, refreshed, owner nested
    ("GET", "/posts/search?title=e", None, None),  # a query built in steps
    ("GET", "/posts/search?owner_id=1", None, None),
    ("GET", "/posts/mine/titles", 1, None),
    ("GET", "/posts/mine/count", 1, None),  # an async def route on the sync session
    ("GET", "/posts/1/tags", None, None),  # a relationship read in a generator expression
    ("GET", "/posts/99/tags", None, None),
    ("POST", "/posts/1/view", None, None),  # a background task with its own SessionLocal
    ("GET", "/posts/search?owner_id=1", None, None),
    ("DELETE", "/posts/2", 1, None),
    ("DELETE", "/posts/3", 1, None),  # not theirs
    ("POST", "/users/deactivate-others", 2, None),
    ("POST", "/users/deactivate-domain?domain=grace@example.com", None, None),
    ("GET", "/users/", None, None),
]


@pytest.fixture(scope="module")
def translations():
    return translate_files(SOURCES, packaged=True)


@pytest.fixture(scope="module")
def twin_package(translations, tmp_path_factory) -> Iterator[Any]:
    """The translated package written as `-o DIRECTORY` writes it, then imported."""
    directory = tmp_path_factory.mktemp("translated")
    with imported_translation(translations, directory, "translate_corpus") as package:
        yield package


def _short(module: str) -> str:
    return module.removeprefix("tests.apps.translate_corpus.")


def test_every_function_taking_a_session_is_accounted_for(translations):
    translated = {_short(r.module): set(r.translated) for r in translations if r.translated}
    assert translated == TRANSLATED
    fallen = {_short(r.module): r.fallback_functions for r in translations if r.fallbacks}
    assert fallen == FALLBACKS
    reasons = {f.function: f.reason for r in translations for f in r.fallbacks}
    assert reasons == REASONS
    assert [f for r in translations for f in r.not_translated] == []
    total = len({f for names in [*TRANSLATED.values(), *FALLBACKS.values()] for f in names})
    falling = {f for r in translations for f in r.fallback_functions}
    assert len(falling) / total < 0.15, (len(falling), total)
    for result in translations:
        comments = " ".join(
            line.strip().removeprefix("# ") for line in result.code.splitlines()
            if line.strip().startswith("#")
        )  # fmt: skip
        for fallback in result.fallbacks:
            assert f"{MARK}: {fallback.reason}" in comments


def test_output_keeps_the_package_and_imports_the_legacy_models(translations):
    paths = {str(r.relative_path) for r in translations}
    # Two modules named utils.py, one per package: neither overwrites the other.
    assert {"translate_corpus/crud/utils.py", "translate_corpus/api/utils.py"} <= paths
    assert "translate_corpus/__init__.py" in paths  # copied: `from .api import ...` resolves
    posts = next(r.code for r in translations if r.module.endswith("api.posts"))
    assert "from .. import crud\n" in posts  # translated: the twin's chain
    assert "from .deps import get_current_active_user\n" in posts
    assert "from tests.apps.translate_corpus.models import Post, User\n" in posts


def test_output_passes_pyflakes_and_the_project_layout(translations, twin_package):
    directory = Path(twin_package.__file__).parent
    reporter = Reporter(io.StringIO(), io.StringIO())
    findings = pyflakes_api.checkRecursive([str(directory)], reporter)
    assert findings == 0, reporter._stdout.getvalue()  # type: ignore[attr-defined]
    for result in translations:
        lines = result.code.splitlines()
        # ruff format with the project's line length; each added name imported once.
        assert max(map(len, lines), default=0) <= 100, result.relative_path
        bound = [
            name.split(" as ")[-1].strip()
            for line in lines
            if line.startswith("from ") and " import " in line and "(" not in line
            for name in line.split(" import ", 1)[1].split(",")
        ]
        assert len(bound) == len(set(bound)), (result.relative_path, bound)
    crud_post = next(r.code for r in translations if r.module.endswith("crud.crud_post"))
    assert "from sqlalchemy import func, select\n" in crud_post  # merged into the legacy line
    users = next(r.code for r in translations if r.module.endswith("api.users"))
    assert "Session" not in users and "get_db" not in users  # no longer used: removed


def _engines(url: str) -> tuple[Engine, Any]:
    sync_url, async_url = derive_urls(url)
    return (
        create_engine(sync_url, poolclass=NullPool),
        create_async_engine(async_url, poolclass=NullPool),
    )


def _reset(engine: Engine) -> None:
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        seed(session)


def _tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: sorted(tuple(row) for row in connection.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


async def _play(app: FastAPI) -> list[tuple[int, Any]]:
    answers = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method, path, user, body in SCENARIO:
            headers = {"x-user": str(user)} if user is not None else {}
            response = await client.request(method, path, headers=headers, json=body)
            answers.append((response.status_code, response.json()))
    return answers


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.LegacyAPIWarning")  # the legacy app's Query.get
async def test_twin_app_answers_and_writes_as_the_legacy_app(twin_package, postgres_url):
    sync_engine, async_engine = _engines(postgres_url)
    SessionLocal.configure(bind=sync_engine)

    async def async_session() -> Any:
        async with AsyncSession(async_engine, expire_on_commit=False) as session:
            yield session

    try:
        _reset(sync_engine)
        legacy = await _play(create_app())
        legacy_tables = _tables(sync_engine)
        _reset(sync_engine)
        twin_app = twin_package.create_app()
        twin_app.dependency_overrides[get_async_session] = async_session
        twin = await _play(twin_app)
        twin_tables = _tables(sync_engine)
    finally:
        SessionLocal.configure(bind=None)
        await async_engine.dispose()
        sync_engine.dispose()
    for step, (expected, found) in enumerate(zip(legacy, twin, strict=True)):
        assert found == expected, (SCENARIO[step], expected, found)
    assert twin_tables == legacy_tables
    # The scenario reaches what it is meant to: an own record, a write, a background task.
    statuses = [status for status, _ in legacy]
    assert statuses[5] == 200 and statuses[3] == 400 and statuses[8] == 400
    assert statuses[9] == 401
    assert legacy[11][1]["owner"]["name"] == "grace"
    assert [p["views"] for p in legacy[19][1]] == [1, 0]


def test_cli_writes_the_package_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    sources = [str(p.relative_to(ROOT)) for p in SOURCES]
    result = CliRunner().invoke(cli, ["translate", *sources, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "translate_corpus" / "crud" / "utils.py").is_file()
    assert "translated CRUDBase.get\n" in result.output
    assert "fallback tests/apps/translate_corpus/api/posts.py:" in result.output
    again = CliRunner().invoke(cli, ["translate", *sources, "-o", str(tmp_path)])
    assert again.exit_code == 1
    assert "exists; gateway translate does not overwrite files" in again.output
    forced = CliRunner().invoke(cli, ["translate", *sources, "-o", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output


def test_cli_says_what_it_did_not_translate_and_exits_1(tmp_path, monkeypatch):
    # Alone, crud_user's create() calls super().create() of a base not translated with it.
    monkeypatch.chdir(ROOT)
    out = tmp_path / "crud_user.py"
    source = "tests/apps/translate_corpus/crud/crud_user.py"
    result = CliRunner().invoke(cli, ["translate", source, "-o", str(out)])
    assert result.exit_code == 1, result.output
    line = next(
        n for n, text in enumerate((ROOT / source).read_text().splitlines(), 1)
        if "super().create" in text
    )  # fmt: skip
    assert (
        f"not translated {source}:{line}: CRUDUser.create: super().create() gets the session "
        "but is not translated with this module; its legacy original calls methods of self "
        "that became async"
    ) in result.output
    assert "1 functions taking a session were not translated" in result.output
    assert out.is_file()


def test_a_route_whose_current_user_chain_is_not_translated_keeps_the_legacy_route():
    # The routes without their dependency module: current_user would come from get_db.
    sources = [*sorted(CORPUS.glob("crud/*.py")), CORPUS / "api" / "users.py"]
    users = next(r for r in translate_files(sources, packaged=True) if r.module.endswith("users"))
    skipped = {f.function: f.reason for f in users.not_translated}
    assert set(skipped) == {"update_me", "read_user", "deactivate_others"}
    assert skipped["update_me"].startswith(
        "its dependency get_current_active_user opens the legacy session and is not translated"
    )
    # No twin mixing two sessions: the route stays sync on get_db and runs the legacy one.
    assert "def update_me(" in users.code and "async def update_me(" not in users.code
    assert "return _legacy.update_me(user_in, db, current_user)" in users.code
    assert "async def read_users(db: AsyncDB" in users.code  # no current_user: translated


@pytest.fixture
def seeded_postgres(postgres_url: str) -> str:
    engine, async_engine = _engines(postgres_url)
    _reset(engine)
    engine.dispose()
    async_engine.sync_engine.dispose()
    return postgres_url


@pytest.mark.postgres
def test_check_gives_every_function_a_verdict_and_exits_0(tmp_path, monkeypatch, seeded_postgres):
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(tmp_path))
    sources = [str(p.relative_to(ROOT)) for p in SOURCES]
    args = ["translate", *sources, "-o", str(tmp_path / "out"), "--check", seeded_postgres]
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "translate_corpus"]:
            del sys.modules[name]
    assert result.exit_code == 0, result.output
    verdicts = dict(
        line.removeprefix("  check ").split(": ", 1)
        for line in result.output.splitlines()
        if line.startswith("  check ")
    )
    functions = {f for names in TRANSLATED.values() for f in names}
    assert set(verdicts) == functions
    fallen = {f for names in FALLBACKS.values() for f in names}
    for name, verdict in verdicts.items():
        expected = "fallback (" if name in fallen else "verified ("
        assert verdict.startswith(expected), (name, verdict)
        assert not verdict.startswith(("verified (0 runs)", "fallback (0 runs)")), name
    # Methods run on the module-level instances; routes with current_user go through the app.
    assert int(verdicts["CRUDBase.update"].split("(")[1].split()[0]) >= 2
    assert int(verdicts["update_me"].split("(")[1].split()[0]) >= 2
    assert "Traceback" not in result.output


# Hand-broken twins: each edit breaks one function of the correct translation.
BROKEN = {
    "limit dropped": ("api/utils.py", ".offset(skip).limit(limit)", ".offset(skip)"),
    "order dropped": ("crud/utils.py", "return await queries.fetch_all(db, q.order_by(Post.id))",
                      "return await queries.fetch_all(db, q)"),
    "eager load dropped": ("api/posts.py", ".options(selectinload(Post.tags))", ""),
    "filter added": ("api/utils.py", "select(User).order_by",
                     "select(User).where(User.id > 1).order_by"),
    # A method of the generic base, checked on a module-level instance (crud.post).
    "method offset dropped": ("crud/base.py", "order_by(self.model.id).offset(skip)",
                              "order_by(self.model.id)"),
    # current_user from the legacy chain (its own get_db session) next to the AsyncSession.
    "two sessions": ("api/users.py", "from .deps import get_current_active_user\n",
                     "from tests.apps.translate_corpus.api.deps import get_current_active_user\n"),
    # Generated from the annotation, current_user would be 0 and both sides raise alike.
    "lying annotation": ("api/posts.py",
                         "current_user: User = Depends(get_current_active_user)):\n"
                         '    return {"titles": await titles(db, current_user.id)}',
                         "current_user: int = Depends(get_current_active_user)):\n"
                         '    return {"titles": await titles(db, current_user.id + 1)}'),
}  # fmt: skip


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.LegacyAPIWarning")
@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_check_catches_a_hand_broken_twin(case, translations, tmp_path, seeded_postgres):
    from gateway.translate.check.runner import check_modules

    path, old, new = BROKEN[case]
    top = f"translate_corpus_broken_{case.replace(' ', '_')}"
    for result in translations:
        target = tmp_path / top / result.relative_path.relative_to("translate_corpus")
        target.parent.mkdir(parents=True, exist_ok=True)
        code = result.code
        if str(result.relative_path) == f"translate_corpus/{path}":
            assert old in code, (case, code)
            code = code.replace(old, new)
        target.write_text(code)
    sys.path.insert(0, str(tmp_path))
    try:
        module = f"{top}.{path.removesuffix('.py').replace('/', '.')}"
        broken = importlib.import_module(module)
        legacy = importlib.import_module(f"tests.apps.translate_corpus.{module.split('.', 1)[1]}")
        verdicts = await check_modules(legacy, broken, seeded_postgres)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] == top]:
            del sys.modules[name]
    differing = [v for v in verdicts if v.status == "differs"]
    assert len(differing) == 1, [str(v) for v in verdicts]
    assert all(v.status in ("verified", "fallback") for v in verdicts if v not in differing)
