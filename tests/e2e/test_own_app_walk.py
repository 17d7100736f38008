"""The docs' "Install" and "Bring your own app" (docs/tutorial/) followed as a new user
would: the gateway installed from a copy of this checkout into a fresh virtualenv (uv),
someone else's legacy app (tests/apps/bookshop.py) in a fresh directory, served with
--legacy/--async, its routes listed, flipped, answered with the implementation header, and
reported on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.testing import free_port, wait_until_ready
from tests.apps.bookshop import write_bookshop

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "walk-token-0123456789abcdef"
COMPOSE = ["--legacy", "bookshop.main:app", "--async", "bookshop.migrated:router"]
EXAMPLE = {"legacy_routes", "async_routes", "example"}


def uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("uv is not installed (pip install uv)")
    return found


def checkout_copy(target: Path) -> Path:
    """The files of this checkout a fresh clone would have (tracked and new, not ignored):
    no build/ left over from an earlier wheel, no virtualenvs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done


def test_install_serve_list_flip_and_report_an_app_of_your_own(tmp_path):
    source = checkout_copy(tmp_path / "gateway-checkout")
    project = tmp_path / "myproject"
    project.mkdir()
    venv = project / ".venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    run([uv(), "venv", "-q", "--python", sys.executable, str(venv)], project, env)
    install = [uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
    run([*install, "-c", str(ROOT / "constraints.txt"), str(source)], project, env)
    site = next(venv.glob("lib/python3*/site-packages"))
    assert EXAMPLE.isdisjoint(p.name for p in site.iterdir())  # only gateway itself
    assert (site / "gateway").is_dir()

    write_bookshop(project)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = "sqlite:///./bookshop.db"
    env |= {
        "DATABASE_URL": database,
        "GATEWAY_DATABASE_URL": database,
        "GATEWAY_ADMIN_TOKENS": f"me={TOKEN}",
        "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
    }
    gateway = str(venv / "bin" / "gateway")
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [gateway, "serve", *COMPOSE, "--port", str(port), "--log-level", "warning"],
        cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until_ready(f"{url}/authors", server, timeout=60, log=log)
        assert httpx.post(f"{url}/authors", json={"name": "le guin"}).status_code == 201
        first = httpx.get(f"{url}/authors/1")
        assert first.json() == {"id": 1, "name": "le guin"}
        assert first.headers["x-gateway-implementation"] == "legacy"

        client = env | {"GATEWAY_ADMIN_URL": url, "GATEWAY_ADMIN_TOKEN": TOKEN}
        listed = run([gateway, "routes"], project, client).stdout
        row = next(x for x in listed.splitlines() if x.startswith("GET /authors/{author_id} "))
        assert row.split()[2:] == ["legacy+async", "def", "/", "async", "def", "legacy"]
        built = run([gateway, "routes", *COMPOSE], project, env).stdout
        assert "note: GET /books/{book_id} (legacy, bookshop.main.read_book) and " in built

        flip = ["flags", "set", "GET /authors/{author_id}", "canary", "--percent", "50"]
        run([gateway, *flip, "--reason", "first canary"], project, client)
        sides = {
            httpx.get(f"{url}/authors/1", headers={"x-user-id": str(user)}).headers[
                "x-gateway-implementation"
            ]
            for user in range(40)
        }
        assert sides == {"legacy", "async"}
        run([gateway, "flags", "set", "GET /authors/{author_id}", "async"], project, client)
        answer = httpx.get(f"{url}/authors/1")
        assert answer.json() == {"id": 1, "name": "le guin"}
        assert answer.headers["x-gateway-implementation"] == "async"

        report = run([gateway, "report"], project, client | {"COLUMNS": "80"}).stdout
        assert "GET /authors" in report
        assert max(len(line) for line in report.splitlines()) <= 80
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    left = {p.name for p in project.iterdir()} - {".venv", "bookshop"}
    assert {name.split("-")[0] for name in left} == {"bookshop.db"}  # nothing of the gateway's
