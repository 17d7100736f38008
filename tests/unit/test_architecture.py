"""The import contracts (pyproject.toml, checked by scripts/check) hold, and can fail.

Each case copies the packages to a temporary directory, adds one bad import, and runs
lint-imports there: a contract that never fails would guard nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "legacy_routes", "async_routes", "example", "bench", "tests")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def house(tmp_path: Path) -> Path:
    for name in PACKAGES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")


def test_the_contracts_hold_on_the_repository(house: Path) -> None:
    result = lint(house)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # A foundation importing the composition: upwards, and a cycle.
        ("gateway/settings.py", "import gateway.app", "gateway is layered"),
        # The runtime reaching the optional translate extra, from below or from the CLI.
        ("gateway/shadow/runner.py", "import gateway.translate.files", "gateway is layered"),
        ("gateway/cli/flags.py", "import gateway.translate.files", "translate extra is imported"),
        # Two services importing each other, hidden in a function as the old code did.
        (
            "gateway/flags/store.py",
            "def _later():\n    import gateway.admin.api",
            "no import cycles",
        ),
        ("gateway/routing/dispatch.py", "import legacy_routes.users", "never imports the example"),
        ("legacy_routes/users.py", "import gateway", "knows nothing of the gateway"),
        ("bench/cases.py", "import tests.conftest", "never import the tests"),
    ],
)
def test_a_bad_import_breaks_a_contract(house: Path, module: str, line: str, broken: str) -> None:
    add_import(house / module, line)
    result = lint(house)
    assert result.returncode != 0
    broken_lines = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(broken in row for row in broken_lines), result.stdout


MAX_MODULE_LINES = 450


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "gateway").rglob("*.py")
    }
    assert sizes, "no modules found"
    over = {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert over == {}, f"modules over {MAX_MODULE_LINES} lines: {over}"


def test_serving_a_request_never_imports_the_translate_extra() -> None:
    """`import gateway`, building the example and serving requests leave libcst unloaded."""
    probe = """
import sys
import gateway
from starlette.testclient import TestClient
from gateway import Gateway, MemoryFlagStore, Settings
from tests.apps.probe import create_probe_gateway, probe_settings
assert "libcst" not in sys.modules and "gateway.translate" not in sys.modules, "on import"
gw = create_probe_gateway(probe_settings("sqlite:///" + sys.argv[1]), store=MemoryFlagStore())
with TestClient(gw.build()) as client:
    assert client.get("/probe").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/_gateway/routes").status_code == 200
loaded = [m for m in sys.modules if m.partition(".")[0] == "libcst" or "gateway.translate" in m]
assert loaded == [], loaded
print("ok")
"""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [sys.executable, "-c", probe, f"{scratch}/probe.db"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
