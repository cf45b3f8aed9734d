"""InMemorySaver keeps every promise of the conformance suite."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rxagent.checkpoint import InMemorySaver
from rxagent.checkpoint.conformance import SaverConformance, make_checkpoint


class TestInMemorySaver(SaverConformance):
    @pytest.fixture
    def saver(self) -> InMemorySaver:
        return InMemorySaver()


class _SyncLangGraphSignature(InMemorySaver):
    # delete_for_runs as LangGraph's savers spell it (no threads); the async one inherited.
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:  # type: ignore[override]
        super().delete_for_runs(run_ids)


@pytest.mark.anyio
async def test_the_async_deletion_names_threads_only_to_a_saver_that_takes_them() -> None:
    saver = _SyncLangGraphSignature()
    checkpoint = make_checkpoint("t", "", metadata={"source": "loop", "step": 0, "run_id": "r"})
    saver.put(checkpoint)
    await saver.adelete_for_runs(["r"], threads=["t"])
    assert saver.get("t") is None
