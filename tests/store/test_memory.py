"""InMemoryStore keeps every promise of the conformance suite."""

from __future__ import annotations

from typing import Any

import pytest

from rxagent.store import IndexConfig, InMemoryStore
from rxagent.store.conformance import StoreConformance, letter_embeddings


class TestInMemoryStore(StoreConformance):
    @pytest.fixture
    def make_store(self) -> Any:
        def make(index: IndexConfig | None = None) -> InMemoryStore:
            return InMemoryStore(index=index)

        return make


@pytest.mark.anyio
async def test_a_langchain_embeddings_without_async_methods_of_its_own_works_under_trio() -> None:
    # LangChain's default aembed_* need asyncio's executor; the store runs the sync ones in a
    # worker thread instead, so this passes under trio as under asyncio.
    from langchain_core.embeddings import Embeddings

    class Letters(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return letter_embeddings(texts)

        def embed_query(self, text: str) -> list[float]:
            return letter_embeddings([text])[0]

    class AsyncLetters(Letters):
        calls = 0

        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            AsyncLetters.calls += 1
            return letter_embeddings(texts)

        async def aembed_query(self, text: str) -> list[float]:
            AsyncLetters.calls += 1
            return letter_embeddings([text])[0]

    for embeddings in (Letters(), AsyncLetters()):
        store = InMemoryStore(index={"dims": 3, "embed": embeddings, "fields": ["t"]})
        await store.aput(("d",), "b", {"t": "b"})
        await store.aput(("d",), "a", {"t": "aa"})
        assert [i.key for i in await store.asearch(("d",), query="a")] == ["a", "b"]
    assert AsyncLetters.calls == 3  # its own async methods were used


def test_a_search_item_equals_the_item_whatever_its_score() -> None:
    store = InMemoryStore()
    store.put(("a",), "k", {"v": 1})
    found = store.search(("a",))[0]
    assert found == store.get(("a",), "k") and found.score is None
    store.put(("a",), "k", {"v": 2})
    assert found != store.get(("a",), "k")
