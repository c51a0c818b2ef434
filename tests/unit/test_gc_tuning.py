"""Server processes tune the garbage collector once they are built (bench/README.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hub.app import GC_GEN0_THRESHOLD, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(10)]  # made at start: in the heap before tuning
    tune_gc()
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD > 700
