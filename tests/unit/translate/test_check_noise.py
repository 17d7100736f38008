"""--check learns noise: fields that differ between two runs of the legacy function on the
same snapshot (a random salt, a uuid, a server-side `now()`) are named as noise, not called
a difference; a twin broken elsewhere on the same function is still caught."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from gateway.translate.check.noise import NOISE, learn, masked, named
from gateway.translate.check.runner import check_modules
from gateway.urls import derive_urls
from tests.unit.translate.written import load_code

pytestmark = [pytest.mark.anyio]

LEGACY = """
import secrets
import uuid
from datetime import datetime

from sqlalchemy import String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Secret(Base):
    __tablename__ = "check_noise_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    salt: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(36))
    created: Mapped[datetime] = mapped_column(server_default=func.now())


def add_secret(db: Session, name: str) -> Secret:
    secret = Secret(name=name, salt=secrets.token_hex(8), token=str(uuid.uuid4()))
    db.add(secret)
    db.commit()
    db.refresh(secret)
    return secret
"""

TWIN = """
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from {legacy} import Secret


async def add_secret(db: AsyncSession, name: str) -> Secret:
    secret = Secret(name={name}, salt=secrets.token_hex(8), token=str(uuid.uuid4()))
    db.add(secret)
    await db.commit()
    await db.refresh(secret)
    return secret
"""


@pytest.fixture
def modules(tmp_path: Path, postgres_url: str):
    legacy = load_code(LEGACY, tmp_path, "check_noise_legacy")
    twins = {
        kind: load_code(TWIN.format(legacy=legacy.__name__, name=name), tmp_path, f"twin_{kind}")
        for kind, name in {"correct": "name", "broken": "name.upper()"}.items()
    }
    engine = create_engine(derive_urls(postgres_url)[0], poolclass=NullPool)
    legacy.Base.metadata.create_all(engine)
    engine.dispose()
    yield legacy, twins
    for name in [legacy.__name__, *(m.__name__ for m in twins.values())]:
        del sys.modules[name]


def test_learn_masks_what_differs_and_keeps_other_shapes():
    first = {"result": [1, "salt-a"], "tables": {"t": [{"id": "1", "salt": "'a'"}]}}
    second = {"result": [1, "salt-b"], "tables": {"t": [{"id": "1", "salt": "'b'"}]}}
    mask = learn(first, second)
    assert mask == {"result": [1, NOISE], "tables": {"t": [{"id": "1", "salt": NOISE}]}}
    assert named(mask) == ["result", "tables.t.salt"]
    twin = {"result": [2, "salt-c"], "tables": {"t": [{"id": "1", "salt": "'c'"}]}}
    assert masked(mask, twin) == {
        "result": [2, NOISE],
        "tables": {"t": [{"id": "1", "salt": NOISE}]},
    }
    assert masked(mask, twin) != masked(mask, first)  # the 2 is not noise: still a difference
    assert masked(mask, {"result": [1], "tables": {}}) == {"result": [1], "tables": {}}


@pytest.mark.postgres
async def test_salts_uuids_and_now_are_noise_not_differences(modules, postgres_url):
    legacy, twins = modules
    [verdict] = await check_modules(legacy, twins["correct"], postgres_url)
    assert verdict.status == "verified", str(verdict)
    assert verdict.runs >= 1
    for field in ("tables.check_noise_secrets.salt", "tables.check_noise_secrets.token",
                  "tables.check_noise_secrets.created"):  # fmt: skip
        assert field in verdict.detail, str(verdict)
    assert "check_noise_secrets.name" not in verdict.detail


@pytest.mark.postgres
async def test_a_broken_twin_is_still_caught_among_the_noise(modules, postgres_url):
    legacy, twins = modules
    [verdict] = await check_modules(legacy, twins["broken"], postgres_url)
    assert verdict.status == "differs", str(verdict)
    assert "result" in verdict.detail
