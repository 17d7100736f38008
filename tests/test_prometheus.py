"""The shipped Prometheus rules and Grafana dashboard, checked by promtool and by a real
Prometheus scraping a real `gateway serve`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway import Settings
from gateway.testing import free_port, serve_in_subprocess, wait_until_ready
from tests.apps.metrics import scenario_gateway
from tests.conftest import started_client

ROOT = Path(__file__).resolve().parent.parent
RULES = [
    ROOT / "deploy/prometheus/gateway-rules.yml",
    ROOT / "deploy/prometheus/gateway-alerts.yml",
]
DASHBOARD = ROOT / "deploy/grafana/dashboards/gateway.json"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (scripts/test installs it)"
)


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def recorded_names() -> list[str]:
    rules = yaml.safe_load(RULES[0].read_text())
    return [rule["record"] for group in rules["groups"] for rule in group["rules"]]


def test_dashboard_is_importable_with_a_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${" + variable["name"] + "}", panel["title"]
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("migration candidates", "threadpool", "queue wait", "db time", "latency",
                  "loop lag", "blocked", "route modes"):  # fmt: skip
        assert topic in titles


@needs_promtool
def test_promtool_accepts_the_rules_and_the_scrape_config():
    result = subprocess.run(
        [PROMTOOL, "check", "rules", *map(str, RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = ROOT / "deploy/prometheus/prometheus.yml"
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.anyio
async def test_promtool_accepts_the_real_metrics_output(sqlite_url):
    gw = scenario_gateway(Settings.from_environ({}, database_url=sqlite_url), CollectorRegistry())
    gw.build()
    async for client in started_client(gw.app):
        for path in ("/io/1", "/cpu", "/pair/1", "/blocks", "/no/such/path"):
            await client.get(path)
        text = (await client.get("/metrics")).text
    assert (
        "gateway_thread_blocked_seconds_total" in text
        and "gateway_loop_blocked_seconds_total" in text
    )
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def _query(prometheus: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def _wait_for(prometheus: str, expr: str, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = _query(prometheus, expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus missing (scripts/test installs it)")
def test_real_prometheus_evaluates_every_rule_and_dashboard_query(postgres_url, tmp_path):
    # PostgreSQL so the I/O-bound route really waits (pg_sleep) on the database.
    env = {"GATEWAY_DATABASE_URL": postgres_url, "GATEWAY_DEFAULT_MODE": "async"}
    with serve_in_subprocess("tests.apps.metrics:create_app", env=env) as url:
        target = url.removeprefix("http://")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULES],
            "scrape_configs": [{"job_name": "gateway", "static_configs": [{"targets": [target]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = f"http://127.0.0.1:{port}"
        command = [
            PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_until_ready(f"{prometheus}/-/ready", process)
            with httpx.Client(base_url=url, timeout=10) as client:
                deadline = time.monotonic() + 6  # a few seconds of traffic, a few scrapes
                while time.monotonic() < deadline:
                    for path in ("/io/1", "/io/2", "/cpu", "/pair/1", "/blocks", "/no/such"):
                        client.get(path)
            _check_prometheus(prometheus)
        finally:
            process.terminate()
            process.wait(timeout=30)
            if process.stdout:
                process.stdout.close()


def _check_prometheus(prometheus: str) -> None:
    # Every recording rule has values for the routes exercised.
    expected = {
        "gateway:route_requests:rate5m": {"/io/{item_id}", "/cpu", "/pair/{item_id}", "/blocks"},
        "gateway:route_blocked_thread_seconds:rate5m": {"/io/{item_id}", "/cpu"},
        "gateway:route_cpu_share:ratio5m": {"/io/{item_id}", "/cpu"},
        "gateway:route_loop_blocked_seconds:rate5m": {"/blocks"},
        "gateway:route_latency_seconds:p95_5m": {"/pair/{item_id}", "/io/{item_id}"},
    }
    for name in recorded_names():
        result = _wait_for(prometheus, name)
        assert result, f"recording rule {name} has no value"
        routes = {series["metric"].get("route") for series in result}
        missing = expected.get(name, set()) - routes
        assert not missing, f"{name} lacks routes {missing}: {routes}"
    will_not_help = {
        s["metric"]["route"]: float(s["value"][1])
        for s in _query(prometheus, "gateway:route_async_will_not_help")
    }
    assert will_not_help["/cpu"] == 1 and will_not_help["/io/{item_id}"] == 0, will_not_help
    # Every dashboard query evaluates to data.
    for title, expr in dashboard_queries():
        query = re.sub(r"\$__rate_interval", "1m", expr)
        assert _wait_for(prometheus, query, timeout=20), f"panel {title!r}: {query} is empty"
    # Alert rules load and evaluate without errors.
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    evaluated = [rule for group in rules for rule in group["rules"]]
    assert len(evaluated) == len(recorded_names()) + 4
    for rule in evaluated:
        assert rule["health"] != "err", rule
