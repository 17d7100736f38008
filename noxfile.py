"""The version matrix: the gateway's core tests on each supported FastAPI x SQLAlchemy.

    nox -s matrix                 # every pair below, on the local PostgreSQL
    nox -s "matrix(fastapi='0.100.1', sqlalchemy='1.4.54')"
    nox -s pydantic1              # pydantic-1 apps: FastAPI 0.100 and 0.125 on pydantic 1.10
    nox -s pinned_install         # install into apps pinned to the oldest versions (both majors)
    nox -s pythons                # the same tests on Python 3.10, 3.12 and 3.13
    nox -s "pythons(3.10)"

Each session is a uv-made virtualenv (reused between runs; `nox --no-reuse-existing-virtualenvs`
rebuilds them) with the gateway installed from this checkout and FastAPI, SQLAlchemy and
pydantic pinned. Starlette is whatever that FastAPI resolves to, as in an app's own env.
Python comes from the machine (`python3.10` and so on on PATH; .ci/run has pyenv's shims
answer for each), never downloaded.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["matrix", "pythons", "pydantic1", "pinned_install"]

OLDEST = {"fastapi": "0.100.1", "pydantic": "2.0.2", "sqlalchemy": "1.4.54"}
NEWEST_FASTAPI = "0.165.0"
NEWEST_SQLALCHEMY = "2.1.9"

# (FastAPI, SQLAlchemy, pydantic): every FastAPI at least once; every SQLAlchemy with the
# oldest and the newest FastAPI; 0.136/0.137 bracket the change to nested route contexts.
# pydantic is the newest that FastAPI accepts (None), but for the all-oldest corner and
# FastAPI 0.100: its Query(alias=...) trips pydantic 2.12's UnsupportedFieldAttributeWarning.
PYDANTIC_BEFORE_2_12 = "2.11.10"
PAIRS = [
    ("0.100.1", "1.4.54", OLDEST["pydantic"]),
    ("0.100.1", "2.0.58", PYDANTIC_BEFORE_2_12),
    ("0.100.1", NEWEST_SQLALCHEMY, PYDANTIC_BEFORE_2_12),
    ("0.110.3", "2.0.58", None),
    ("0.115.14", "1.4.54", None),
    ("0.125.0", "2.0.58", None),
    ("0.136.0", NEWEST_SQLALCHEMY, None),
    ("0.137.0", "2.0.58", None),
    ("0.155.0", NEWEST_SQLALCHEMY, None),
    (NEWEST_FASTAPI, "1.4.54", None),
    (NEWEST_FASTAPI, "2.0.58", None),
    (NEWEST_FASTAPI, NEWEST_SQLALCHEMY, None),
]

# (Python, FastAPI, SQLAlchemy): the Pythons other than the matrix's 3.11, each with the
# newest FastAPI and SQLAlchemy that install on it (FastAPI 0.162.6+ and SQLAlchemy 2.1
# need Python 3.11, so 3.10 gets the last releases before those).
PYTHONS = [
    nox.param("3.10", "0.162.5", "2.0.59", id="3.10"),
    nox.param("3.12", NEWEST_FASTAPI, NEWEST_SQLALCHEMY, id="3.12"),
    nox.param("3.13", NEWEST_FASTAPI, NEWEST_SQLALCHEMY, id="3.13"),
]

# pydantic-1 apps: FastAPI 0.100 to 0.125 take pydantic 1.10 (0.126 dropped it), on either
# SQLAlchemy. The cookiecutter-shaped app's own dependencies come along: python-multipart for
# its login form, and for FastAPI 0.100 an httpx before 0.28 (Starlette 0.27's TestClient).
PYDANTIC_1 = "1.10.27"
PYDANTIC1_PAIRS = [
    nox.param("0.125.0", "1.4.54", [], id="fastapi0.125-sqlalchemy1.4"),
    nox.param("0.100.1", "2.0.58", ["httpx<0.28"], id="fastapi0.100-sqlalchemy2.0"),
]
PYDANTIC1_APP_DEPS = ["python-multipart>=0.0.6"]

# An app of mid-2023 on pydantic 1, pinned as its lock file has it (pinned_install).
PYDANTIC1_APP_PINS = {
    "fastapi": "0.100.1",
    "starlette": "0.27.0",
    "pydantic": "1.10.13",
    "sqlalchemy": "1.4.54",
    "uvicorn": "0.23.2",
    "httpx": "0.24.1",
    "anyio": "3.7.1",
    "typer": "0.9.0",
    "python-multipart": "0.0.6",
    "psycopg2-binary": "2.9.6",
}

# Mounting, dispatch, the legacy fast path (one hand-off, no deadlock), flags, metrics.
TESTS = [
    "tests/unit/compat/test_compat.py",
    "tests/unit/compat/test_stdlib.py",
    "tests/unit/compat/test_pydantic.py",
    "tests/unit/test_settings.py",
    "tests/unit/db/test_database.py",
    "tests/unit/app/test_mounting.py",
    "tests/unit/app/test_edge_answers.py",
    "tests/unit/routing/test_routing.py",
    "tests/unit/legacy/test_legacy_async.py",
    "tests/unit/legacy/test_legacy.py",
    "tests/unit/legacy/test_async_dependencies.py",
    "tests/unit/legacy/test_route_class.py",
    "tests/unit/legacy/test_overrides.py",
    "tests/unit/flags/test_flags.py",
    "tests/unit/metrics/test_metrics.py",
]
# The pydantic-1 sessions also run the cookiecutter-shaped app's own tests through the gateway.
PYDANTIC1_TESTS = [*TESTS, "tests/unit/compat/test_cookiecutter.py"]
TEST_DEPS = ["pytest>=7.4", "asgi-lifespan>=2.1"]
# An old FastAPI or Starlette under a newer pydantic warns from its own code (in modules
# too many to name); the suite's warnings-as-errors holds for the gateway in the main run.
OLD_CODE_WARNINGS = [
    *("-W", "ignore::DeprecationWarning"),
    *("-W", "ignore::PendingDeprecationWarning"),
]
SHOW_VERSIONS = (
    "from importlib.metadata import version as v;"
    "print(*(f'{n} {v(n)}' for n in ('fastapi', 'starlette', 'pydantic', 'sqlalchemy')))"
)


def _extras(sqlalchemy: str) -> str:
    # Editable, so a reused session runs the checkout as it is now.
    return "-e.[psycopg2]" if sqlalchemy.startswith("1.") else "-e."


def _core_tests(
    session: nox.Session,
    pins: list[str],
    extras: str,
    warnings: list[str],
    tests: list[str] = TESTS,
) -> None:
    session.install(extras, *pins, *TEST_DEPS)
    session.run("python", "-c", SHOW_VERSIONS)
    env = {"GATEWAY_TEST_REQUIRE_POSTGRES": os.environ.get("GATEWAY_TEST_REQUIRE_POSTGRES", "1")}
    pytest = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *warnings]
    session.run(*pytest, *tests, *session.posargs, env=env)


@nox.session(python="3.11")
@nox.parametrize(("fastapi", "sqlalchemy", "pydantic"), PAIRS)
def matrix(session: nox.Session, fastapi: str, sqlalchemy: str, pydantic: str | None) -> None:
    """The core tests on one FastAPI x SQLAlchemy pair, on PostgreSQL."""
    pins = [f"fastapi=={fastapi}", f"sqlalchemy[asyncio]=={sqlalchemy}"]
    if pydantic:
        pins.append(f"pydantic=={pydantic}")
    _core_tests(session, pins, _extras(sqlalchemy), OLD_CODE_WARNINGS)


@nox.session
@nox.parametrize(("python", "fastapi", "sqlalchemy"), PYTHONS)
def pythons(session: nox.Session, fastapi: str, sqlalchemy: str) -> None:
    """The core tests on one more Python, with the newest FastAPI and SQLAlchemy it takes.

    Warnings stay errors: a deprecation the newer Python raises must fail here.
    """
    pins = [f"fastapi=={fastapi}", f"sqlalchemy[asyncio]=={sqlalchemy}"]
    _core_tests(session, pins, "-e.", [])


@nox.session(python="3.11")
@nox.parametrize(("fastapi", "sqlalchemy", "app_deps"), PYDANTIC1_PAIRS)
def pydantic1(session: nox.Session, fastapi: str, sqlalchemy: str, app_deps: list[str]) -> None:
    """The core tests and a pydantic-1 app's own tests on FastAPI 0.100-0.125 + pydantic 1.10.

    psycopg2 always: the app's own engine uses it (`postgresql://`) on either SQLAlchemy.
    """
    pins = [f"fastapi=={fastapi}", f"sqlalchemy[asyncio]=={sqlalchemy}", f"pydantic=={PYDANTIC_1}"]
    pins += [*PYDANTIC1_APP_DEPS, *app_deps]
    _core_tests(session, pins, "-e.[psycopg2]", OLD_CODE_WARNINGS, PYDANTIC1_TESTS)


PINNED_APPS = [
    nox.param(OLDEST, id="pydantic2"),
    nox.param(PYDANTIC1_APP_PINS, id="pydantic1"),
]


@nox.session(python="3.11")
@nox.parametrize("app", PINNED_APPS)
def pinned_install(session: nox.Session, app: dict[str, str]) -> None:
    """Install the gateway into an app pinned to old versions: nothing moves.

    Two apps: one on the oldest supported pydantic-2 stack, one of mid-2023 on pydantic 1.
    The app's pins go in as constraints, the way a team with a lock file installs: a floor
    of the gateway's (or of a dependency it pulls in) above a pin fails the resolution.
    """
    pins = [f"{name}=={version}" for name, version in app.items()]
    constraints = os.path.join(session.create_tmp(), "app-pins.txt")
    with open(constraints, "w") as file:
        file.write("\n".join(pins) + "\n")
    if "psycopg2-binary" not in app:
        pins.append("psycopg2-binary==2.9.6")
    session.install(*pins, *TEST_DEPS)
    session.install("-c", constraints, ".[psycopg2]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/e2e/test_pinned_install.py",
        env={"GATEWAY_PINNED": " ".join(pins)},
    )
