"""A service's collector settings: start-up objects frozen, rare young collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from tracking_common.gc_tuning import GEN0_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    tune_gc()
    assert gc.get_freeze_count() > 0
    gen0, gen1, gen2 = gc.get_threshold()
    assert gen0 == GEN0_THRESHOLD
    assert gen1 >= 20
    assert gen2 >= 100


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_takes_a_higher_young_threshold() -> None:
    tune_gc(gen0_threshold=GEN0_THRESHOLD * 4)
    assert gc.get_threshold()[0] == GEN0_THRESHOLD * 4
