"""The version matrix: the gateway's core tests on each supported FastAPI x SQLAlchemy.

    nox -s matrix                 # every pair below, on the local PostgreSQL
    nox -s "matrix(fastapi='0.100.1', sqlalchemy='1.4.54')"
    nox -s pinned_install         # install into an app pinned to the oldest versions

Each session is a uv-made virtualenv (reused between runs; `nox --no-reuse-existing-virtualenvs`
rebuilds them) with the gateway installed from this checkout and FastAPI, SQLAlchemy and
pydantic pinned. Starlette is whatever that FastAPI resolves to, as in an app's own env.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["matrix", "pinned_install"]

OLDEST = {"fastapi": "0.100.1", "pydantic": "2.0.2", "sqlalchemy": "1.4.54"}
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
    ("0.165.0", "1.4.54", None),
    ("0.165.0", "2.0.58", None),
    ("0.165.0", NEWEST_SQLALCHEMY, None),
]

# Mounting, dispatch, the legacy fast path (one hand-off, no deadlock), flags, metrics.
TESTS = [
    "tests/unit/compat/test_compat.py",
    "tests/unit/db/test_database.py",
    "tests/unit/app/test_mounting.py",
    "tests/unit/app/test_edge_answers.py",
    "tests/unit/routing/test_routing.py",
    "tests/unit/legacy/test_legacy_async.py",
    "tests/unit/legacy/test_legacy.py",
    "tests/unit/flags/test_flags.py",
    "tests/unit/metrics/test_metrics.py",
]
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


@nox.session(python="3.11")
@nox.parametrize(("fastapi", "sqlalchemy", "pydantic"), PAIRS)
def matrix(session: nox.Session, fastapi: str, sqlalchemy: str, pydantic: str | None) -> None:
    """The core tests on one FastAPI x SQLAlchemy pair, on PostgreSQL."""
    pins = [f"fastapi=={fastapi}", f"sqlalchemy[asyncio]=={sqlalchemy}"]
    if pydantic:
        pins.append(f"pydantic=={pydantic}")
    session.install(_extras(sqlalchemy), *pins, *TEST_DEPS)
    session.run("python", "-c", SHOW_VERSIONS)
    env = {"GATEWAY_TEST_REQUIRE_POSTGRES": os.environ.get("GATEWAY_TEST_REQUIRE_POSTGRES", "1")}
    pytest = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *OLD_CODE_WARNINGS]
    session.run(*pytest, *TESTS, *session.posargs, env=env)


@nox.session(python="3.11")
def pinned_install(session: nox.Session) -> None:
    """Install the gateway into an app pinned to the oldest supported versions: nothing moves.

    The app's pins go in as constraints, the way a team with a lock file installs: a floor
    of the gateway's (or of a dependency it pulls in) above a pin fails the resolution.
    """
    pins = [f"{name}=={version}" for name, version in OLDEST.items()]
    constraints = os.path.join(session.create_tmp(), "app-pins.txt")
    with open(constraints, "w") as file:
        file.write("\n".join(pins) + "\n")
    session.install(*pins, "psycopg2-binary==2.9.6", *TEST_DEPS)
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
