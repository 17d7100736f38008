"""Fixtures of the CLI's tests."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def isolated_imports(monkeypatch):
    """Undo what loading an app from a directory does to sys.path and sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
