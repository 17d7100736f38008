"""`gateway serve` as a real server: one build per process, and uvicorn's options applied.

The app below records every build as a line `<pid>` in $COUNTING_DIR/builds, so a test can
count how many times each process built it.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from bench.procstat import parse_stat_parent, process_tree
from gateway import Gateway, Settings
from gateway.testing import serve_in_subprocess

pytestmark = pytest.mark.slow

APP = "tests.e2e.test_server:create_counting_app"


def create_counting_app() -> FastAPI:
    """A gateway with one legacy route that echoes what uvicorn told the app."""
    directory = os.environ.get("COUNTING_DIR")
    if directory:
        with open(Path(directory) / "builds", "a") as builds:
            builds.write(f"{os.getpid()}\n")
    legacy = APIRouter()

    @legacy.get("/whoami")
    def whoami(request: Request) -> dict[str, object]:
        client = request.client.host if request.client else None
        return {"client": client, "root_path": request.scope.get("root_path"), "pid": os.getpid()}

    gateway = Gateway(Settings.from_environ())
    gateway.include_legacy(legacy)
    return gateway.build()


def builds(directory: Path) -> Counter[int]:
    return Counter(int(line) for line in (directory / "builds").read_text().split())


def server_env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "COUNTING_DIR": str(tmp_path),
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_WORKERS": "",
        **more,
    }


def test_one_worker_builds_the_app_once_and_serves_that_app(tmp_path):
    with serve_in_subprocess(APP, env=server_env(tmp_path), ready_path="/whoami") as url:
        served_by = httpx.get(f"{url}/whoami").json()["pid"]
    assert builds(tmp_path) == {served_by: 1}


def test_web_concurrency_workers_each_build_once_and_the_supervisor_once(tmp_path):
    env = server_env(tmp_path, WEB_CONCURRENCY="2")
    with serve_in_subprocess(APP, env=env, workers=None, ready_path="/whoami") as url:
        pids = {httpx.get(f"{url}/whoami").json()["pid"] for _ in range(40)}
        # The server answers once one worker serves; the other may still be starting.
        deadline = time.monotonic() + 300
        while len(builds(tmp_path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    counted = builds(tmp_path)
    # The supervisor, which checks, and two workers, each process once. On a busy host uvicorn
    # may replace a worker that missed its health check while starting; its replacement is
    # one more process that builds once.
    assert len(counted) >= 3
    assert set(counted.values()) == {1}
    assert pids <= set(counted)


def test_env_file_is_read_before_the_app_is_built(tmp_path):
    env_file = tmp_path / "serve.env"
    env_file.write_text(f"COUNTING_DIR={tmp_path}\n")
    env = server_env(tmp_path)
    del env["COUNTING_DIR"]  # only the file says where to count
    extra = ("--env-file", str(env_file))
    with serve_in_subprocess(APP, env=env, extra_args=extra, ready_path="/whoami") as url:
        served_by = httpx.get(f"{url}/whoami").json()["pid"]
    assert builds(tmp_path) == {served_by: 1}


def test_root_path_and_proxy_headers_reach_the_app(tmp_path):
    extra = ("--root-path", "/api", "--forwarded-allow-ips", "*", "--no-access-log")
    with serve_in_subprocess(APP, env=server_env(tmp_path), extra_args=extra,
                             ready_path="/whoami") as url:  # fmt: skip
        seen = httpx.get(f"{url}/whoami", headers={"X-Forwarded-For": "203.0.113.7"}).json()
    assert seen["root_path"] == "/api"
    assert seen["client"] == "203.0.113.7"


def test_no_proxy_headers_keeps_the_peer_address(tmp_path):
    extra = ("--no-proxy-headers",)
    with serve_in_subprocess(APP, env=server_env(tmp_path), extra_args=extra,
                             ready_path="/whoami") as url:  # fmt: skip
        seen = httpx.get(f"{url}/whoami", headers={"X-Forwarded-For": "203.0.113.7"}).json()
    assert seen["client"] == "127.0.0.1"


def test_reload_builds_once_in_each_fresh_process_after_a_change(tmp_path):
    watched = tmp_path / "src"
    watched.mkdir()
    extra = ("--reload", "--reload-dir", str(watched))
    with serve_in_subprocess(APP, env=server_env(tmp_path), extra_args=extra,
                             ready_path="/whoami") as url:  # fmt: skip
        first = httpx.get(f"{url}/whoami").json()["pid"]
        (watched / "changed.py").write_text("VALUE = 1\n")
        deadline = time.monotonic() + 60
        while len(builds(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        second = wait_for_new_pid(url, first, deadline)
    assert builds(tmp_path) == {first: 1, second: 1}


def wait_for_new_pid(url: str, old: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        try:
            pid = httpx.get(f"{url}/whoami", timeout=2).json()["pid"]
        except httpx.TransportError:
            pid = old
        if pid != old:
            return int(pid)
        time.sleep(0.1)
    raise AssertionError(f"the server at {url} was not reloaded within 60 s")


def _children(pid: int) -> set[int]:
    return {child for child in process_tree(pid) - {pid} if _parent(child) == pid}


def _parent(pid: int) -> int | None:
    try:
        return parse_stat_parent(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; whoever adopted it has not reaped it yet


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl: Linux only")
def test_workers_stop_when_their_supervisor_is_killed(tmp_path):
    import subprocess

    from gateway.testing import free_port, wait_until_ready

    port = free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
           "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "0", "GATEWAY_SHUTDOWN_GRACE_SECONDS": "1",
           "COUNTING_DIR": str(tmp_path)}  # fmt: skip
    workers: set[int] = set()
    with (tmp_path / "log").open("w+b") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", APP, "--workers", "2",
             "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/whoami", supervisor, 120, log=log)
            deadline = time.monotonic() + 60
            builds = tmp_path / "builds"  # one line per build: the supervisor's, each worker's
            while (
                len(workers := {int(p) for p in builds.read_text().split()} - {supervisor.pid}) < 2
            ):
                assert time.monotonic() < deadline, "the two workers never showed up"
                time.sleep(0.1)
            assert workers <= _children(supervisor.pid)
            supervisor.kill()  # SIGKILL: the supervisor cannot stop them itself
            supervisor.wait()
            deadline = time.monotonic() + 60
            while any(_running(pid) for pid in workers):
                assert time.monotonic() < deadline, f"workers {workers} outlived the supervisor"
                time.sleep(0.1)
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
            for pid in workers:
                if _running(pid):
                    os.kill(pid, 9)
