"""A classic cookiecutter backend on pydantic 1 runs its own tests unchanged through the gateway.

The app (tests/apps/cookiecutter) is run three times by its own pytest, each on a fresh
PostgreSQL database: alone, through the gateway with every route on legacy, and with every
paired route flipped to its async twin. Its conftest overrides `get_db` to the test
database, and its real database does not exist: a request that missed the override fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway._compat import PYDANTIC_V1

pytestmark = pytest.mark.skipif(
    not PYDANTIC_V1,
    reason="the app is pydantic 1's (BaseSettings, orm_mode): nox -s pydantic1 runs it",
)

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "tests" / "apps" / "cookiecutter"
PAIRED = [
    "GET /api/v1/items/",
    "GET /api/v1/items/{id}",
    "GET /api/v1/users/me",
    "POST /api/v1/items/",
]
APP_TESTS = 18


def run_app_tests(database_url: str, tmp_path: Path, gateway: dict[str, str] | None) -> dict:
    served = tmp_path / "served.json"
    real = re.sub(r"/[^/]*$", "/cookiecutter_real_database_never_used", database_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "PYTHONPATH": os.pathsep.join([str(APP), str(ROOT)]),
        "SQLALCHEMY_DATABASE_URI": real,
        "TEST_DATABASE_URL": database_url,
        "COOKIECUTTER_SERVED": str(served),
        **(gateway or {}),
    }
    plugin = ["-p", "gateway_plugin"] if gateway is not None else []
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin]
    command += ["-c", str(APP / "pytest.ini"), "--rootdir", str(APP)]
    result = subprocess.run(command, cwd=APP, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert f"{APP_TESTS} passed" in output, output[-2000:]
    return json.loads(served.read_text()) if gateway is not None else {}


@pytest.mark.postgres
def test_its_tests_pass_alone(postgres_url: str, tmp_path: Path) -> None:
    run_app_tests(postgres_url, tmp_path, None)


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["legacy", "async"])
def test_its_tests_pass_through_the_gateway(postgres_url: str, tmp_path: Path, mode: str) -> None:
    gateway = {"GATEWAY_DATABASE_URL": postgres_url, "GATEWAY_DEFAULT_MODE": mode}
    gateway |= {"GATEWAY_POOL_SIZE": "2", "GATEWAY_MAX_OVERFLOW": "2"}
    report = run_app_tests(postgres_url, tmp_path, gateway)
    assert report["paired"] == PAIRED
    for key, sides in report["served"].items():
        expected = mode if key in PAIRED else "legacy"
        assert set(sides) == {expected}, (key, sides)
    assert set(PAIRED) <= set(report["served"])  # every twin served the app's requests
