"""The worker's and gateway's heap settings: the loaded heap frozen, the youngest generation collected less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from baton import heap


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_is_loaded_and_collects_the_young_less_often(restored: None) -> None:
    loaded = [{"kept": i} for i in range(1000)]
    gc.set_threshold(700, 10, 10)
    heap.settle()
    assert gc.get_freeze_count() >= len(loaded)
    assert gc.get_threshold() == (heap.YOUNG_GENERATION_OBJECTS, 10, 10)
    # Garbage made after it is still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_a_higher_threshold_set_by_the_operator_is_kept(restored: None) -> None:
    gc.set_threshold(50_000, 10, 10)
    heap.settle()
    assert gc.get_threshold()[0] == 50_000
