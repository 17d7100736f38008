"""The shipped Prometheus rules, alerts and Grafana dashboard, checked by promtool (the
rules, and unit tests that fire and spare each alert) and by a real Prometheus scraping a
real `gateway serve`: every rule, panel query, variable query and the flip annotation."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway import Settings
from gateway.testing import free_port, serve_in_subprocess, wait_until_ready
from tests.apps.metrics import scenario_gateway
from tests.conftest import started_client

ROOT = Path(__file__).resolve().parents[2]
RULES = [
    ROOT / "deploy/prometheus/gateway-rules.yml",
    ROOT / "deploy/prometheus/gateway-alerts.yml",
]
ALERTS_TEST = ROOT / "deploy/prometheus/gateway-alerts-test.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/gateway.json"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (scripts/test installs it)"
)
# A selector of one of the gateway's series, with its matchers if it has any.
SELECTOR = re.compile(r"\b(gateway[_:][A-Za-z0-9_:]*)\s*(?:\{([^}]*)\})?")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
FILTERS = {
    "instance": 'instance=~"$instance"',
    "route": 'route=~"$route"',
    "method": 'method=~"$method"',
}
GRAFANA_REGEX_SPECIALS = re.compile(r"[$^*{}\[\]\'+?.()|]")
FLIP_ANNOTATION = "Flips"


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def dashboard_queries() -> list[tuple[str, str]]:
    """(title, expr) of every panel query and every Prometheus annotation."""
    board = dashboard()
    panels = [
        (panel["title"], target["expr"]) for panel in board["panels"] for target in panel["targets"]
    ]
    annotations = [
        (f"annotation {item['name']}", item["expr"])
        for item in board["annotations"]["list"]
        if item.get("datasource", {}).get("type") == "prometheus"
    ]
    return panels + annotations


def variable_queries() -> dict[str, tuple[str, str]]:
    """name -> (series selector, label) of every label_values() query variable."""
    found = {}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["query"])
            assert match, (
                f"variable {variable['name']}: {variable['query']!r} is not label_values()"
            )
            found[variable["name"]] = (match["selector"].strip(), match["label"])
    return found


def grafana_regex(value: str) -> str:
    """A selected value as Grafana writes it into a Prometheus regex matcher: special
    characters escaped with a backslash that the PromQL string itself escapes."""
    return GRAFANA_REGEX_SPECIALS.sub(lambda m: "\\\\" + m.group(0), value)


def interpolate(expr: str, **values: str) -> str:
    """The expr as Grafana sends it: each variable replaced (its `.*` All value unless
    given), $__rate_interval by a fixed window."""
    expr = expr.replace("$__rate_interval", "1m")
    for name in ("instance", "route", "method"):
        expr = expr.replace(f"${name}", values.get(name, ".*"))
    return expr


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load(RULES[1].read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


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


def test_dashboard_has_instance_route_and_method_variables_and_a_flip_annotation():
    variables = variable_queries()
    assert list(variables) == ["instance", "route", "method"]
    # Each narrows the next: routes of the chosen instances, methods of the chosen routes.
    assert FILTERS["instance"] in variables["route"][0]
    assert (
        FILTERS["instance"] in variables["method"][0] and FILTERS["route"] in variables["method"][0]
    )
    for variable in dashboard()["templating"]["list"][1:]:
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
    [flips] = [a for a in dashboard()["annotations"]["list"] if a["name"] == FLIP_ANNOTATION]
    assert "changes(gateway_route_mode" in flips["expr"] and flips["enable"]
    assert "{{route}}" in flips["titleFormat"] and "{{mode}}" in flips["titleFormat"]


def test_every_dashboard_query_filters_every_gateway_series_by_instance():
    for title, expr in dashboard_queries():
        selectors = SELECTOR.findall(expr)
        assert selectors, f"{title!r}: {expr} reads no gateway series"
        for name, matchers in selectors:
            assert FILTERS["instance"] in matchers, (
                f"{title!r}: {name}{{{matchers}}} is not filtered by the instance variable"
            )


def test_every_alert_has_a_summary_a_description_and_a_runbook_page():
    runbook = ROOT / "docs" / "runbook"
    index = (runbook / "index.md").read_text()
    for rule in alert_rules():
        alert, annotations = rule["alert"], rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key, "").strip(), f"alert {alert} has no {key}"
        expected = f"docs/runbook/{alert}.md"
        assert annotations["runbook_url"] == expected, (
            f"alert {alert}: runbook_url {annotations['runbook_url']!r}, expected {expected!r}"
        )
        page = ROOT / expected
        assert page.exists(), f"alert {alert}: no runbook page {expected}"
        assert page.read_text().startswith(f"# {alert}\n"), f"{expected} is not about {alert}"
        assert f"]({alert}.md)" in index, f"docs/runbook/index.md does not list {alert}"


@needs_promtool
def test_promtool_parses_every_dashboard_and_variable_query(tmp_path):
    # promtool has no offline PromQL parser of its own, but `check rules` parses each
    # rule's expr: every query goes in as a recording rule, interpolated as Grafana would.
    queries = [(title, interpolate(expr)) for title, expr in dashboard_queries()]
    queries += [(f"variable {name}", interpolate(s)) for name, (s, _) in variable_queries().items()]
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout, result.stdout


@needs_promtool
def test_promtool_unit_tests_fire_and_spare_every_alert():
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(ALERTS_TEST)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(ALERTS_TEST.read_text())
    assert sorted(tests["rule_files"]) == sorted(path.name for path in RULES)
    cases = [case for group in tests["tests"] for case in group["alert_rule_test"]]
    for rule in alert_rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case.get("exp_alerts") for case in mine), f"no test fires {rule['alert']}"
        assert any(not case.get("exp_alerts") for case in mine), (
            f"no test checks that {rule['alert']} stays silent"
        )


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
    env = {
        "GATEWAY_DATABASE_URL": postgres_url,
        "GATEWAY_DEFAULT_MODE": "async",
        "GATEWAY_ADMIN_TOKENS": f"ops={ADMIN_TOKEN}",
    }
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
                flip = client.put(
                    "/_gateway/routes/" + quote(FLIPPED, safe=""),
                    json={"mode": "legacy", "reason": "annotation test"},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                assert flip.status_code == 200, flip.text
            _check_prometheus(prometheus, target)
        finally:
            process.terminate()
            process.wait(timeout=30)
            if process.stdout:
                process.stdout.close()


ADMIN_TOKEN = "ops-token-0123456789abcdef"
FLIPPED = "GET /pair/{item_id}"  # flipped from async to legacy while Prometheus watches


def _series(prometheus: str, selector: str) -> list[dict[str, str]]:
    """What Grafana's label_values(selector, label) reads: the series API."""
    response = httpx.get(f"{prometheus}/api/v1/series", params={"match[]": selector}, timeout=10)
    body = response.json()
    assert body["status"] == "success", (selector, body)
    return body["data"]  # type: ignore[no-any-return]


def _check_prometheus(prometheus: str, target: str) -> None:
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
    _check_variables(prometheus, target)
    # Every dashboard query and the flip annotation evaluate to data with every variable
    # at All; the annotation shows the flip made after the traffic.
    for title, expr in dashboard_queries():
        query = interpolate(expr)
        result = _wait_for(prometheus, query, timeout=20)
        assert result, f"{title!r}: {query} is empty"
        if title == f"annotation {FLIP_ANNOTATION}":
            method, _, route = FLIPPED.partition(" ")
            flips = {
                (s["metric"]["method"], s["metric"]["route"], s["metric"]["mode"]) for s in result
            }
            assert flips == {(method, route, "legacy")}, flips
    _check_filters(prometheus, target)
    # Alert rules load and evaluate without errors.
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    evaluated = [rule for group in rules for rule in group["rules"]]
    assert len(evaluated) == len(recorded_names()) + len(alert_rules())
    for rule in evaluated:
        assert rule["health"] != "err", rule
    firing = {a["labels"]["alertname"] for a in _query_alerts(prometheus)}
    assert not {"GatewayTargetDown", "GatewayTargetsMissing", "GatewayFlagStoreDown"} & firing


def _query_alerts(prometheus: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()
    return body["data"]["alerts"]  # type: ignore[no-any-return]


def _check_variables(prometheus: str, target: str) -> None:
    values = {}
    for name, (selector, label) in variable_queries().items():
        series = _series(prometheus, interpolate(selector))
        values[name] = {s[label] for s in series if label in s}
        assert values[name], f"variable {name}: {selector} gives no {label} values"
    assert values["instance"] == {target}, values["instance"]
    # Only the paired and legacy routes: not /metrics, the admin API or unmatched paths.
    assert {"/io/{item_id}", "/cpu", "/pair/{item_id}", "/blocks"} <= values["route"]
    assert not {"/metrics", "/_gateway", "(unmatched)"} & values["route"], values["route"]
    assert values["method"] == {"GET"}, values["method"]


def _check_filters(prometheus: str, target: str) -> None:
    """One instance and one route chosen: every query keeps to them, and every selector of a
    per-route series filters by route and method."""
    chosen = {"instance": target, "route": "/io/{item_id}", "method": "GET"}
    escaped = {name: grafana_regex(value) for name, value in chosen.items()}
    for title, expr in dashboard_queries():
        for name, matchers in SELECTOR.findall(expr):
            per_route = any("route" in s for s in _series(prometheus, name))
            for label in ("route", "method"):
                assert not per_route or FILTERS[label] in matchers, (
                    f"{title!r}: {name} has a route label but is not filtered by ${label}"
                )
        for series in _query(prometheus, interpolate(expr, **escaped)):
            for label, value in chosen.items():
                found = series["metric"].get(label, value)
                assert found == value, f"{title!r} with {label}={value} shows {label}={found}"
