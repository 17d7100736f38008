"""`gateway serve --workers 2`: whichever worker answers GET /report, its window is of both
workers' requests, because each worker's snapshots are of the multiprocess aggregate."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.testing import serve_in_subprocess

pytestmark = pytest.mark.slow

PAIR = "GET /pair/{item_id}"
SENT = 40


def metric_pids(url: str) -> set[str]:
    """Workers whose metering has started (it writes their live gauges after the first
    snapshot), from the pid label of gateway_threadpool_threads."""
    text = httpx.get(f"{url}/metrics").text
    return {
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_threadpool_threads" and "pid" in sample.labels
    }


def window_requests(report: dict) -> int:
    [pair] = [p for p in report["pairs"] if p["key"] == PAIR]
    return pair["sides"]["legacy"]["requests"] + pair["sides"]["async"]["requests"]


def test_every_worker_reports_both_workers_requests(sqlite_url, tmp_path):
    env = {"GATEWAY_DATABASE_URL": sqlite_url, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")}
    with serve_in_subprocess("tests.apps.metrics:create_app", env=env, workers=2) as url:
        deadline = time.monotonic() + 30
        while len(metric_pids(url)) < 2:  # both took their first snapshot: no pair request yet
            assert time.monotonic() < deadline, f"only workers {metric_pids(url)} started"
            time.sleep(0.1)
        served_by = set()
        for item in range(SENT):
            with httpx.Client(base_url=url) as client:  # new connections: either worker
                served_by.add(client.get(f"/pair/{item}").json()["pid"])
        reports: dict[int, dict] = {}
        for _ in range(2000):
            with httpx.Client(base_url=url) as client:
                report = client.get("/_gateway/report", params={"window": "30m"}).json()
            if window_requests(report) == SENT:  # batched counts reach the files each tick
                reports.setdefault(report["worker_pid"], report)
            if len(reports) == 2:
                break
            time.sleep(0.01)
    assert len(reports) == 2, (
        f"reports that counted all {SENT} came only from {list(reports)}; "
        f"the requests were served by {served_by}"
    )
    for report in reports.values():
        assert report["window_filled"] is False  # since that worker's own first snapshot
        assert report["candidates"][0]["key"] == PAIR
