"""Case instrumented: bare_async plus prometheus-fastapi-instrumentator's default setup,
the reference for what a common metrics library costs per request.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from bench.apps import bare_async


def create_app() -> FastAPI:
    app = bare_async.create_app()
    Instrumentator().instrument(app).expose(app)
    return app
