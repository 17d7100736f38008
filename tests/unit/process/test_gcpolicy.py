"""gateway._process.gc: what a GC policy does to the process, and that restore undoes it."""

from __future__ import annotations

import gc

import pytest

from gateway._process.gc import GcPolicy


@pytest.fixture(autouse=True)
def _clean_collector():
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_freeze_moves_the_heap_out_of_collection_and_restore_brings_it_back():
    policy = GcPolicy(freeze=True)
    policy.apply()
    assert gc.get_freeze_count() > 0
    policy.apply()  # a second start of the same app changes nothing more
    policy.restore()
    assert gc.get_freeze_count() == 0


def test_thresholds_are_set_and_the_old_ones_restored():
    before = gc.get_threshold()
    policy = GcPolicy(freeze=False, thresholds=(12345, 11, 12))
    policy.apply()
    assert gc.get_threshold() == (12345, 11, 12)
    assert gc.get_freeze_count() == 0
    policy.restore()
    assert gc.get_threshold() == before


def test_an_empty_policy_touches_nothing():
    before = gc.get_threshold()
    policy = GcPolicy(freeze=False, thresholds=None)
    policy.apply()
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
    policy.restore()
    assert gc.get_threshold() == before
