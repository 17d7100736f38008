"""A pytest plugin: mount `gateway translate legacy_routes/users.py` in place of the
hand-written async_routes/users.py, so the example's own tests run against the translation.

    python -m pytest -p tests.apps.translated_users tests/e2e/test_example_users.py
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import async_routes
from gateway.translate.files import translate_file

ROOT = Path(__file__).resolve().parents[2]
_result = translate_file(ROOT / "legacy_routes" / "users.py")
_directory = Path(tempfile.mkdtemp(prefix="translated-users-"))
_target = _directory / "users_translated.py"
_target.write_text(_result.code)
_spec = importlib.util.spec_from_file_location("users_translated", _target)
assert _spec is not None and _spec.loader is not None
translated = importlib.util.module_from_spec(_spec)
sys.modules["users_translated"] = translated
_spec.loader.exec_module(translated)
# example/app.py imports `from async_routes import users`: both routes lead here now.
sys.modules["async_routes.users"] = translated
async_routes.users = translated  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    mounted = sys.modules["example.app"].async_users is translated
    terminalreporter.write_line(
        f"async_routes.users: translated from legacy_routes/users.py into {_target}; "
        f"mounted by the example: {mounted}"
    )
