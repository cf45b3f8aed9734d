"""``rxagent serve`` and ``rxagent worker`` set the cyclic collector up for a server process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from rxagent.server._serve import GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_what_is_loaded_and_collects_the_young_less_often() -> None:
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    tune_gc()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 1000  # the modules loaded so far, at least
