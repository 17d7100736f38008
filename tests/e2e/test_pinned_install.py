"""Installed into an app pinned to the oldest supported versions, the gateway moves no pin.

Run by `nox -s pinned_install`, which pins the app's FastAPI, pydantic and SQLAlchemy,
installs the gateway on top, and names the pins in GATEWAY_PINNED ("fastapi==0.100.1 ...").
"""

import os
from importlib.metadata import version

import httpx
import pytest
from fastapi import FastAPI

PINNED = os.environ.get("GATEWAY_PINNED", "")

pytestmark = pytest.mark.skipif(
    not PINNED, reason="runs in `nox -s pinned_install`, which sets GATEWAY_PINNED"
)


def test_no_pin_moved() -> None:
    pins = dict(pin.split("==") for pin in PINNED.split())
    installed = {name: version(name) for name in pins}
    assert installed == pins, f"installing the gateway moved pins: {installed} != {pins}"


@pytest.mark.anyio
async def test_a_small_gateway_builds_and_serves(tmp_path) -> None:
    from gateway import Gateway, Settings

    legacy = FastAPI()

    @legacy.get("/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    url = f"sqlite:///{tmp_path / 'pinned.db'}"
    gw = Gateway(Settings.from_environ({}, database_url=url))
    gw.include_legacy(legacy)
    app = gw.build()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/ping")
    assert (response.status_code, response.json()) == (200, {"pong": True})
