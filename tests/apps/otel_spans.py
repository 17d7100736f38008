"""The probe gateway traced by OpenTelemetry's SDK into its in-memory exporter, in a process of
its own (a tracer provider is set once per process, and FastAPI 0.165+ traces every app of a
process that has one): prints the finished spans as JSON.

    python -m tests.apps.otel_spans sqlite:///x.db asgi     # the ASGI instrumentation
    python -m tests.apps.otel_spans sqlite:///x.db native   # FastAPI's own telemetry

The requests: GET /probe on legacy, flipped to async, then shadowed (its twin compared),
and GET /legacy-only (one implementation).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import httpx
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.apps.probe import ADMIN_TOKEN, create_probe_gateway, probe_settings

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def traffic(app: Any, gateway: Any) -> None:
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def flip(mode: str) -> None:
                body = {"mode": mode, "reason": "otel test"}
                found = await client.put("/_gateway/routes/GET /probe", json=body, headers=AUTH)
                found.raise_for_status()

            (await client.get("/probe", headers={"x-step": "legacy"})).raise_for_status()
            await flip("async")
            (await client.get("/probe", headers={"x-step": "async"})).raise_for_status()
            await flip("shadow")
            (await client.get("/probe", headers={"x-step": "shadow"})).raise_for_status()
            await gateway.shadow.settle()  # the twin runs after the response
            (await client.get("/legacy-only")).raise_for_status()


def main(database_url: str, kind: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    gateway = create_probe_gateway(probe_settings(database_url))
    app: Any = gateway.build()
    if kind == "asgi":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        app = OpenTelemetryMiddleware(app)
    anyio.run(traffic, app, gateway)
    provider.shutdown()
    spans = [
        {
            "name": span.name,
            "kind": span.kind.name,
            "trace_id": span.context.trace_id,
            "span_id": span.context.span_id,
            "parent_id": span.parent.span_id if span.parent else None,
            "status": span.status.status_code.name,
            "attributes": dict(span.attributes or {}),
        }
        for span in exporter.get_finished_spans()
    ]
    print(json.dumps(spans, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
