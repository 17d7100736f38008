"""`gateway serve --workers 2`: /metrics sums the requests both worker processes served.

Each worker hands its batched observations to the shared files every
GATEWAY_LOOP_LAG_INTERVAL (0.25 s), so the sum catches up within that.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway._process.workers import mark_dead_workers, prepare_multiprocess
from gateway.testing import serve_in_subprocess

pytestmark = pytest.mark.slow


def samples(text: str, name: str) -> list:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def served_pairs(text: str) -> float:
    return sum(
        s.value
        for s in samples(text, "gateway_requests_total")
        if s.labels["route"] == "/pair/{item_id}" and s.labels["status"] == "200"
    )


def test_two_workers_aggregate_requests_and_keep_per_process_gauges(sqlite_url, tmp_path):
    env = {"GATEWAY_DATABASE_URL": sqlite_url, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "counter_999999.db").write_bytes(b"stale")  # from an earlier run
    with serve_in_subprocess("tests.apps.metrics:create_app", env=env, workers=2) as url:
        pids: dict[int, int] = {}
        sent = 0
        while len(pids) < 2 or sent < 20:
            if sent >= 2000:
                pytest.fail(f"all {sent} requests went to one worker: {pids}")
            # A new connection each time, so the kernel may hand it to either worker.
            with httpx.Client(base_url=url) as client:
                pid = client.get(f"/pair/{sent}").json()["pid"]
            pids[pid] = pids.get(pid, 0) + 1
            sent += 1
        deadline = time.monotonic() + 10
        while served_pairs(httpx.get(f"{url}/metrics").text) < sent:
            assert time.monotonic() < deadline, "the workers' counts never added up"
            time.sleep(0.05)
        scrapes = [httpx.get(f"{url}/metrics").text for _ in range(4)]
    for text in scrapes:  # whichever worker answers, it reports both
        [served] = [
            s
            for s in samples(text, "gateway_requests_total")
            if s.labels["route"] == "/pair/{item_id}" and s.labels["status"] == "200"
        ]
        assert served.value == sent
        size = samples(text, "gateway_threadpool_threads")
        assert {s.labels["pid"] for s in size if s.labels["state"] == "size"} == set(map(str, pids))
    assert not (tmp_path / "m" / "counter_999999.db").exists()


def test_prepare_multiprocess_empties_the_directory_and_dead_workers_are_marked(
    tmp_path, monkeypatch
):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"old")
    # setenv first, so monkeypatch removes the variable again after the test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    assert prepare_multiprocess() == directory
    assert list(directory.iterdir()) == []
    dead_pid = 2**22 + 12345  # above pid_max on most systems: no such process
    (directory / f"gauge_liveall_{dead_pid}.db").write_bytes(b"")
    (directory / f"gauge_liveall_{os.getpid()}.db").write_bytes(b"")
    (directory / f"counter_{dead_pid}.db").write_bytes(b"")
    assert mark_dead_workers(str(directory)) == [dead_pid]
    left = sorted(p.name for p in directory.iterdir())
    assert left == [f"counter_{dead_pid}.db", f"gauge_liveall_{os.getpid()}.db"]
