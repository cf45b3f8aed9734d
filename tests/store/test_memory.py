"""InMemoryStore keeps every promise of the conformance suite."""

from __future__ import annotations

from typing import Any

import pytest

from rxagent.store import IndexConfig, InMemoryStore
from rxagent.store.conformance import StoreConformance


class TestInMemoryStore(StoreConformance):
    @pytest.fixture
    def make_store(self) -> Any:
        def make(index: IndexConfig | None = None) -> InMemoryStore:
            return InMemoryStore(index=index)

        return make
