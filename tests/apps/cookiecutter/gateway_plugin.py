"""`pytest -p gateway_plugin`: the app's own tests, unchanged, against the composed app.

Loaded before the app's conftest imports `app.main.app`, it puts the composed app there: the
legacy app mounted whole, the twins of `migrated/` paired with their routes. The conftest's
`app.dependency_overrides[deps.get_db] = ...` then lands on the composed app, as it would in
a project that serves the gateway. From the environment: GATEWAY_* (GATEWAY_DATABASE_URL is
the tests' database, for the twins and the flags; GATEWAY_DEFAULT_MODE=async flips every
paired route), and COOKIECUTTER_SERVED, a file that gets which side served each route.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from app import main
from app.core.config import settings
from migrated.api import api_router
from prometheus_client import CollectorRegistry

from gateway import Gateway, Settings

registry = CollectorRegistry()
gateway = Gateway(Settings.from_environ(), registry=registry)
gateway.include_legacy(main.app)
gateway.include_async(api_router, prefix=settings.API_V1_STR)
main.app = gateway.build()


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    served: dict[str, dict[str, int]] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "gateway_requests_total":
                key = f"{sample.labels['method']} {sample.labels['route']}"
                sides = served.setdefault(key, {})
                side = sample.labels["implementation"]
                sides[side] = sides.get(side, 0) + int(sample.value)
    paired = sorted(key for key, entry in gateway.entries.items() if entry.paired)
    report = {"paired": paired, "served": served}
    Path(os.environ["COOKIECUTTER_SERVED"]).write_text(json.dumps(report))
