"""SqliteStore on a real file: the conformance suite, and what only a file can show."""

from __future__ import annotations

import json
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxagent import RunError, UsageError
from rxagent.checkpoint.conformance import make_checkpoint
from rxagent.checkpoint.sqlite import SqliteSaver
from rxagent.store import IndexConfig, PutOp, StoreError
from rxagent.store.conformance import StoreConformance, letter_embeddings
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


def _index(calls: list[str] | None = None) -> IndexConfig:
    def embed(texts: list[str]) -> list[list[float]]:
        if calls is not None:
            calls.extend(texts)
        return letter_embeddings(texts)

    return IndexConfig(dims=3, embed=embed, fields=["text"])


def test_a_reopened_file_keeps_items_order_and_vectors(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteStore(path, index=_index()) as store:
        store.put(("m", "2"), "b", {"text": "b"})
        store.put(("m", "1"), "a", {"text": "aaa", "n": 1})
        store.put(("m", "2"), "ab", {"text": "ab"})
        before = store.get(("m", "1"), "a")
    calls: list[str] = []
    with SqliteStore.from_conn_string(str(path), index=_index(calls)) as reopened:
        assert reopened.get(("m", "1"), "a") == before
        assert [i.key for i in reopened.search(("m",))] == ["b", "ab", "a"]
        ranked = reopened.search(("m",), query="a")
        assert [i.key for i in ranked] == ["a", "ab", "b"]
        assert calls == ["a"]  # only the query: the items' vectors were in the file
        assert reopened.list_namespaces() == [("m", "1"), ("m", "2")]


def test_values_are_json_text_and_vectors_floats_in_a_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteStore(path, index=_index()) as store:
        store.put(("m",), "k", {"text": "abc", "é": [1, None]})
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        (value,) = raw.execute("SELECT value FROM rxagent_store_items").fetchone()
        assert json.loads(value) == {"text": "abc", "é": [1, None]}
        (blob,) = raw.execute("SELECT vector FROM rxagent_store_vectors").fetchone()
        assert struct.unpack("<3d", blob) == (1.0, 1.0, 1.0)
    finally:
        raw.close()


def test_a_file_of_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteStore(path) as store:
        store.put(("m",), "k", {"v": 1})
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE rxagent_meta SET value = '2' WHERE key = 'store_schema_version'")
    raw.close()
    with pytest.raises(StoreError, match=r"schema version 2.*upgrade rxagent"):
        SqliteStore(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT value FROM rxagent_meta").fetchall() == [("2",)]
        assert raw.execute("SELECT count(*) FROM rxagent_store_items").fetchone() == (1,)
    finally:
        raw.close()


def test_a_file_that_is_no_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100)
    with pytest.raises(StoreError, match=r"notes\.txt") as caught:
        SqliteStore(path)
    assert isinstance(caught.value, RunError)
    assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    with SqliteStore.from_conn_string(str(tmp_path / "store.db")) as store:
        store.setup()  # LangGraph code calls it; nothing left to do
    store.close()  # closing again is fine
    for call in (lambda: store.get(("m",), "k"), store.setup):
        with pytest.raises(UsageError, match="closed"):
            call()


def test_one_file_holds_a_store_and_a_saver(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    with SqliteSaver(path) as saver, SqliteStore(path) as store:
        saver.put(make_checkpoint())
        store.put(("m",), "k", {"v": 1})
    with SqliteStore(path) as store, SqliteSaver(path) as saver:
        assert saver.get("thread-1") is not None
        item = store.get(("m",), "k")
        assert item is not None and item.value == {"v": 1}


def test_a_connection_of_ones_own_is_used_and_left_open(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "store.db", check_same_thread=False)
    with SqliteStore(connection) as store:
        store.put(("m",), "k", {"v": 1})
    assert connection.execute("SELECT count(*) FROM rxagent_store_items").fetchone() == (1,)
    connection.close()
    with SqliteStore(tmp_path / "store.db") as reopened:
        assert reopened.get(("m",), "k") is not None


def test_a_failed_batch_stores_nothing_of_it(tmp_path: Path) -> None:
    calls = 0

    def embed(texts: list[str]) -> list[list[float]]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the embedding service is down")
        return letter_embeddings(texts)

    with SqliteStore(tmp_path / "s.db", index=IndexConfig(dims=3, embed=embed)) as store:
        store.put(("m",), "kept", {"v": 1})
        with pytest.raises(RuntimeError, match="down"):
            store.batch([PutOp(("m",), "a", {"v": 2}), PutOp(("m",), "kept", None)])
        assert [i.key for i in store.search(("m",))] == ["kept"]
        # A failure half-way through the writes rolls them all back, and the store goes on.
        connection = store._connection
        assert connection is not None
        connection.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON rxagent_store_items"
            " WHEN NEW.key = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        with pytest.raises(StoreError, match="refused"):
            store.batch([PutOp(("m",), "b", {"v": 3}), PutOp(("m",), "refused", {"v": 0})])
        assert [i.key for i in store.search(("m",))] == ["kept"]
        store.put(("m",), "c", {"v": 4})
        assert [i.key for i in store.search(("m",))] == ["kept", "c"]


def test_lookups_walk_an_index_instead_of_scanning_a_table(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        for n in range(3):
            store.put(("m", str(n)), f"k{n}", {"n": n})
        statements: list[str] = []
        connection = store._connection
        assert connection is not None
        connection.set_trace_callback(statements.append)
        store.get(("m", "1"), "k1")
        store.search(("m", "1"))
        store.list_namespaces(prefix=("m",))
        store.put(("m", "1"), "k1", {"n": 10})
        store.delete(("m", "2"), "k2")
        connection.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) >= 5
        for statement in selects:
            plan = " ".join(
                row[-1] for row in connection.execute("EXPLAIN QUERY PLAN " + statement)
            )
            assert "SCAN" not in plan, (statement, plan)


_WRITER = """
import sys
from rxagent.store.sqlite import SqliteStore

path, name = sys.argv[1:]
with SqliteStore(path) as store:
    for n in range(40):
        store.put(("shared",), f"{name}-{n}", {"n": n})
        store.put(("own", name), str(n), {"n": n})
"""


def test_several_processes_write_one_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name])
        for name in ("one", "two", "three")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    with SqliteStore(path) as store:
        assert len(store.search(("shared",), limit=1000)) == 3 * 40
        for name in ("one", "two", "three"):
            mine = [i for i in store.search(("shared",), limit=1000) if i.key.startswith(name)]
            assert [i.value["n"] for i in mine] == list(range(40))  # in the order written
            assert len(store.search(("own", name), limit=1000)) == 40
        assert store.list_namespaces(max_depth=1) == [("own",), ("shared",)]
