"""The x-gateway-implementation response header: which side served a route's request."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway import MemoryFlagStore
from tests.apps.probe import create_probe_gateway, probe_settings

pytestmark = pytest.mark.anyio


async def answers(tmp_path, paths, **settings):
    values = {"database_url": f"sqlite:///{tmp_path / 'gw.db'}", **settings}
    gateway = create_probe_gateway(probe_settings(**values), store=MemoryFlagStore())
    app = gateway.build()
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gw"
        ) as client,
    ):
        return {path: await client.get(path) for path in paths}


@pytest.mark.parametrize("metrics", [True, False], ids=["metrics", "no-metrics"])
@pytest.mark.parametrize("mode", ["legacy", "async"])
async def test_every_route_answer_names_the_side_that_served_it(tmp_path, metrics, mode):
    paths = ["/probe", "/other/3", "/legacy-only", "/async-only"]
    found = await answers(tmp_path, paths, metrics=metrics, default_mode=mode)
    sides = {path: r.headers.get("x-gateway-implementation") for path, r in found.items()}
    assert sides == {"/probe": mode, "/other/3": mode, "/legacy-only": "legacy",
                     "/async-only": "async"}  # fmt: skip
    assert found["/probe"].json()["implementation"] == mode  # the header tells the truth
    assert found["/probe"].headers.get_list("x-gateway-implementation") == [mode]


@pytest.mark.parametrize("metrics", [True, False], ids=["metrics", "no-metrics"])
async def test_admin_metrics_and_unmatched_paths_get_no_header(tmp_path, metrics):
    paths = ["/_gateway/live", "/_gateway/routes", "/nowhere", "/openapi.json"]
    paths += ["/metrics"] if metrics else []
    found = await answers(tmp_path, paths, metrics=metrics)
    assert found["/nowhere"].status_code == 404
    assert {path: r.headers.get("x-gateway-implementation") for path, r in found.items()} == {
        path: None for path in paths
    }


@pytest.mark.parametrize("metrics", [True, False], ids=["metrics", "no-metrics"])
async def test_the_header_has_a_name_of_your_choice_or_none(tmp_path, metrics):
    named = await answers(tmp_path, ["/probe"], metrics=metrics, implementation_header="X-Side")
    assert named["/probe"].headers["x-side"] == "legacy"
    assert "x-gateway-implementation" not in named["/probe"].headers
    off = await answers(tmp_path, ["/probe"], metrics=metrics, implementation_header="")
    assert [k for k in off["/probe"].headers if "implementation" in k or k == "x-side"] == []


async def test_a_validation_error_still_names_the_side(tmp_path):
    found = await answers(tmp_path, ["/other/not-a-number"])
    assert found["/other/not-a-number"].status_code == 422
    assert found["/other/not-a-number"].headers["x-gateway-implementation"] == "legacy"
