"""A store of one's own on BaseStore alone: the conformance suite holds for one that only
implements batch() (and abatch()), without TTLs, and the default abatch() leaves the loop."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import pytest

from rxagent.store import BaseStore, IndexConfig, InMemoryStore, Op, Result
from rxagent.store.conformance import StoreConformance


class Delegating(BaseStore):
    """All it has is batch() and abatch(), handed to an InMemoryStore; no TTLs."""

    supports_ttl = False

    def __init__(self, index: IndexConfig | None = None) -> None:
        self.inner = InMemoryStore(index=index)
        self.threads: list[int] = []

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        self.threads.append(threading.get_ident())
        return self.inner.batch(ops)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await self.inner.abatch(ops)


class TestAStoreOfOnesOwn(StoreConformance):
    @pytest.fixture
    def make_store(self) -> Any:
        return Delegating


class BatchOnly(Delegating):
    abatch = BaseStore.abatch  # the default: batch() in a worker thread


@pytest.mark.anyio
async def test_the_default_abatch_runs_batch_in_a_worker_thread() -> None:
    store = BatchOnly()
    await store.aput(("a",), "k", {"v": 1})
    got = await store.aget(("a",), "k")
    assert got is not None and got.value == {"v": 1}
    assert store.threads and threading.get_ident() not in store.threads
