"""OpenTelemetry on the request's span: the route, the implementation that served it and the
mode, and a child span per shadowed twin with its outcome. The SDK's in-memory exporter in a
process of its own (tests/apps/otel_spans.py), with the ASGI instrumentation and with
FastAPI's own telemetry where FastAPI has it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from gateway.routing import otel

ROOT = Path(__file__).resolve().parents[3]


def spans_of(database_url: str, kind: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.apps.otel_spans", database_url, kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", ["asgi", "native"])
def test_the_request_span_says_route_implementation_and_mode(sqlite_url, kind):
    if kind == "native" and find_spec("fastapi.telemetry") is None:
        pytest.skip("this FastAPI has no telemetry of its own (0.165+)")
    spans = spans_of(sqlite_url, kind)
    tagged = [s for s in spans if "gateway.route" in s["attributes"] and s["kind"] == "SERVER"]
    seen = [
        (s["attributes"]["gateway.route"], s["attributes"]["gateway.implementation"],
         s["attributes"]["gateway.mode"])
        for s in tagged
    ]  # fmt: skip
    assert seen == [
        ("GET /probe", "legacy", "legacy"),
        ("GET /probe", "async", "async"),
        ("GET /probe", "legacy", "shadow"),  # legacy serves; the twin runs beside it
        ("GET /legacy-only", "legacy", "legacy"),  # one implementation: it is the mode
    ]
    admin = [s for s in spans if s["name"].startswith("PUT /_gateway/routes")]
    assert admin and not any("gateway.route" in s["attributes"] for s in admin)

    [twin] = [s for s in spans if s["name"] == "gateway.shadow"]
    shadowed = tagged[2]
    assert (twin["trace_id"], twin["parent_id"]) == (shadowed["trace_id"], shadowed["span_id"])
    assert twin["attributes"] == {
        "gateway.route": "GET /probe",
        "gateway.implementation": "async",
        "gateway.mode": "shadow",
        "gateway.shadow.outcome": "different",  # the probe's twin answers "async"
    }


def test_without_opentelemetry_there_is_no_hook(monkeypatch):
    monkeypatch.setattr(otel, "find_spec", lambda name: None)
    assert otel._hooks() == (None, None)
