"""SqliteStore on a real file: the conformance suite, and what only a file can show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxagent.store import IndexConfig
from rxagent.store.conformance import StoreConformance
from rxagent.store.sqlite import SqliteStore


class TestSqliteStore(StoreConformance):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Iterator[Any]:
        made: list[SqliteStore] = []

        def make(index: IndexConfig | None = None) -> SqliteStore:
            made.append(SqliteStore(tmp_path / f"store-{len(made)}.db", index=index))
            return made[-1]

        yield make
        for store in made:
            store.close()


class TestSqliteStoreInMemory(StoreConformance):
    """``":memory:"``: one database as long as the store, shared by the threads that use it."""

    @pytest.fixture
    def make_store(self) -> Iterator[Any]:
        made: list[SqliteStore] = []

        def make(index: IndexConfig | None = None) -> SqliteStore:
            made.append(SqliteStore(":memory:", index=index))
            return made[-1]

        yield make
        for store in made:
            store.close()
