"""``SqliteStore``: long-term memory in a SQLite file, the embedded durable store.

One file holds every namespace; several threads of a process and several processes can use it
at once, and it can be the file a ``SqliteSaver`` keeps threads in. What it costs: one
connection per store, guarded by a lock, so the threads of one process take turns (the async
forms wait in a worker thread, off the event loop); processes take turns to write (SQLite's
write lock, waited for up to ``busy_timeout``) while readers carry on beside them (write-ahead
log). A search reads the rows of its namespace prefix in order and filters them in Python
(the same code as ``InMemoryStore``'s, so both answer alike); with a query, it also reads their
vectors and ranks them in Python: fine for the thousands of memories of a user, not for
millions of documents.

Layout (``store_schema_version`` 1, kept in ``rxagent_meta``)::

    rxagent_meta              key, value                 ("store_schema_version", "1")
    rxagent_store_namespaces  seq, namespace             labels joined with "."; seq orders
                                                         them as they first held an item
    rxagent_store_items       seq, ns_seq, key, value, created_at, updated_at
                                                         unique (ns_seq, key); seq orders the
                                                         items as they were first put
    rxagent_store_vectors     item_seq, idx, vector      little-endian float64s

Values are JSON text, never pickle; times ISO 8601 text in UTC. A namespace, once it has held an
item, keeps its row (and its place in a search's order) when emptied.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self

from .._exceptions import StoreError, UsageError
from ._base import GetOp, IndexConfig, Item, ListNamespacesOp, Result, SearchItem, SearchOp
from ._match import matches_filter, page_of_namespaces, rank
from ._plan import Embedded, Plan, PlannedStore, Vectors

__all__ = ["SqliteStore"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rxagent_store_namespaces (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS rxagent_store_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ns_seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (ns_seq, key)
);
CREATE TABLE IF NOT EXISTS rxagent_store_vectors (
    item_seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (item_seq, idx)
)
"""

_ROWS = (
    "SELECT n.namespace, i.key, i.value, i.created_at, i.updated_at, i.seq"
    " FROM rxagent_store_namespaces n JOIN rxagent_store_items i ON i.ns_seq = n.seq"
)


@contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise StoreError(f"SqliteStore could not {what}: {error}") from error


def _text(namespace: tuple[str, ...]) -> str:
    return ".".join(namespace)  # labels hold no "." (validate_namespace)


def _labels(text: str) -> tuple[str, ...]:
    return tuple(text.split("."))


def _under(prefix: tuple[str, ...], column: str = "n.namespace") -> tuple[str, list[str]]:
    """SQL for the namespaces at or below ``prefix``: a range on the text, which the unique
    index walks ("a.b" and everything from "a.b." up to, not including, "a.b/")."""
    if not prefix:
        return "1", []
    text = _text(prefix)
    return f"({column} = ? OR ({column} >= ? AND {column} < ?))", [text, text + ".", text + "/"]


def _pack(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}d", *vector)


def _unpack(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 8}d", blob))


class SqliteStore(PlannedStore):
    """Keeps items in a SQLite file, shared by the threads and processes that open it.

    Args:
        path: the database file (made if missing); ``":memory:"`` for one that lives as long
            as the store; or an open ``sqlite3.Connection`` made with
            ``check_same_thread=False``, which :meth:`close` leaves open.
        index: semantic search, as for :class:`~rxagent.store.InMemoryStore`; the vectors are
            kept in the file.
        busy_timeout: seconds to wait for another process's write before failing with
            :class:`~rxagent.store.StoreError`.

    Raises:
        StoreError: the file cannot be opened, is not a SQLite database, or holds a store of a
            newer schema than this rxagent reads.
        UsageError: an ``index`` that cannot work.

    Use it in a ``with`` block, or call :meth:`close` when done.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | sqlite3.Connection,
        *,
        index: IndexConfig | None = None,
        busy_timeout: float = 30.0,
    ) -> None:
        super().__init__(index)
        self._lock = threading.Lock()
        self._owns_connection = not isinstance(path, sqlite3.Connection)
        if isinstance(path, sqlite3.Connection):
            self._where = "the connection given"
            connection = path
        else:
            self._where = repr(os.fspath(path))
            with _storage_errors(f"open {self._where}"):
                # Autocommit (isolation_level=None): each batch opens its own transaction.
                connection = sqlite3.connect(
                    os.fspath(path), timeout=busy_timeout, isolation_level=None,
                    check_same_thread=False,
                )
        try:
            with _storage_errors(f"set up {self._where}"):
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                self._migrate(connection)
        except BaseException:
            if self._owns_connection:
                connection.close()
            raise
        self._connection: sqlite3.Connection | None = connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")  # one process sets up a new file; others wait
        try:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS rxagent_meta (key TEXT PRIMARY KEY, value TEXT)"
            )
            row = connection.execute(
                "SELECT value FROM rxagent_meta WHERE key = 'store_schema_version'"
            ).fetchone()
            if row is None:
                # One statement at a time: executescript() would commit the transaction.
                for statement in _SCHEMA.split(";"):
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO rxagent_meta VALUES ('store_schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self._where} holds a store of schema version {row[0]}, written by a "
                    f"newer rxagent; this one reads version {SCHEMA_VERSION}: upgrade rxagent "
                    "to open it"
                )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    # -- lifetime ------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, path: str, *, index: IndexConfig | None = None, busy_timeout: float = 30.0
    ) -> Iterator[Self]:
        """A store on the file ``path``, closed when the ``with`` block ends."""
        with cls(path, index=index, busy_timeout=busy_timeout) as store:
            yield store

    def setup(self) -> None:
        """Nothing left to do: the store set its file up when it was made. Here for LangGraph
        code, which calls ``store.setup()`` before using a ``SqliteStore``."""
        with self._lock:
            if self._connection is None:
                raise UsageError("this SqliteStore is closed")

    def close(self) -> None:
        """Close the connection (unless it was given); the store cannot be used afterwards.
        Closing twice is fine."""
        with self._lock:
            if self._connection is not None and self._owns_connection:
                self._connection.close()
            self._connection = None

    # -- a batch: its reads, then its writes, in one transaction -------------------------------

    def _run(self, plan: Plan, embedded: Embedded) -> list[Result]:
        with self._lock, _storage_errors("run a batch"):
            connection = self._connection
            if connection is None:
                raise UsageError("this SqliteStore is closed")
            # A batch that writes takes the write lock from the start, so that its reads and
            # its writes see one state.
            connection.execute("BEGIN IMMEDIATE" if plan.puts else "BEGIN")
            try:
                results: list[Result] = []
                for op in plan.ops:
                    if isinstance(op, GetOp):
                        results.append(_get(connection, op))
                    elif isinstance(op, SearchOp):
                        query = embedded.queries.get(op.query or "")
                        results.append(_search(connection, op, query))
                    elif isinstance(op, ListNamespacesOp):
                        results.append(_list_namespaces(connection, op))
                    else:
                        results.append(None)
                _write(connection, plan, embedded)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return results


def _get(connection: sqlite3.Connection, op: GetOp) -> Item | None:
    row = connection.execute(
        f"{_ROWS} WHERE n.namespace = ? AND i.key = ?", (_text(op.namespace), op.key)
    ).fetchone()
    if row is None:
        return None
    return Item(value=json.loads(row[2]), key=row[1], namespace=op.namespace,
                created_at=row[3], updated_at=row[4])


def _search(
    connection: sqlite3.Connection, op: SearchOp, query: list[float] | None
) -> list[SearchItem]:
    where, params = _under(op.namespace_prefix)
    sql = f"{_ROWS} WHERE {where} ORDER BY n.seq, i.seq"
    plain = query is None and not op.filter
    if plain:  # SQL alone decides the page
        sql += " LIMIT ? OFFSET ?"
        params += [op.limit, op.offset]  # type: ignore[list-item]
    candidates: list[tuple[tuple[Any, ...], Vectors]] = []
    stop = op.offset + op.limit if query is None else None
    for row in connection.execute(sql, params):
        if len(candidates) == stop:
            break
        if plain or matches_filter(json.loads(row[2]), op.filter):
            candidates.append((row, []))
    if plain:
        return [_search_item(row, None) for row, _ in candidates]
    if query is not None and candidates:
        vectors: dict[int, Vectors] = {}
        vector_sql = (
            "SELECT v.item_seq, v.vector FROM rxagent_store_vectors v"
            " JOIN rxagent_store_items i ON i.seq = v.item_seq"
            " JOIN rxagent_store_namespaces n ON n.seq = i.ns_seq"
            f" WHERE {where} ORDER BY v.item_seq, v.idx"
        )
        for item_seq, blob in connection.execute(vector_sql, _under(op.namespace_prefix)[1]):
            vectors.setdefault(item_seq, []).append(_unpack(blob))
        candidates = [(row, vectors.get(row[5], [])) for row, _ in candidates]
    return [_search_item(row, score) for row, score in rank(candidates, query, op.offset, op.limit)]


def _search_item(row: tuple[Any, ...], score: float | None) -> SearchItem:
    return SearchItem(_labels(row[0]), row[1], json.loads(row[2]), row[3], row[4], score)


def _list_namespaces(connection: sqlite3.Connection, op: ListNamespacesOp) -> list[tuple[str, ...]]:
    # The first prefix's labels before its first "*" narrow the rows in SQL; the rest of the
    # conditions are Python's.
    fixed: tuple[str, ...] = ()
    prefixes = [c.path for c in op.match_conditions or () if c.match_type == "prefix"]
    for label in prefixes[0] if prefixes else ():
        if label == "*":
            break
        fixed += (label,)
    where, params = _under(fixed)
    rows = connection.execute(
        "SELECT n.namespace FROM rxagent_store_namespaces n WHERE"
        " EXISTS (SELECT 1 FROM rxagent_store_items i WHERE i.ns_seq = n.seq)"
        f" AND {where}",
        params,
    )
    return page_of_namespaces(
        (_labels(text) for (text,) in rows), op.match_conditions, op.max_depth, op.offset,
        op.limit,
    )


def _write(connection: sqlite3.Connection, plan: Plan, embedded: Embedded) -> None:
    now = datetime.now(UTC).isoformat()
    for (namespace, key), (_, text) in plan.puts.items():
        ns_text = _text(namespace)
        if text is None:
            row = connection.execute(
                "SELECT i.seq FROM rxagent_store_namespaces n JOIN rxagent_store_items i"
                " ON i.ns_seq = n.seq WHERE n.namespace = ? AND i.key = ?", (ns_text, key)
            ).fetchone()
            if row is not None:
                connection.execute("DELETE FROM rxagent_store_items WHERE seq = ?", row)
                connection.execute("DELETE FROM rxagent_store_vectors WHERE item_seq = ?", row)
            continue
        connection.execute(
            "INSERT OR IGNORE INTO rxagent_store_namespaces (namespace) VALUES (?)", (ns_text,)
        )
        (ns_seq,) = connection.execute(
            "SELECT seq FROM rxagent_store_namespaces WHERE namespace = ?", (ns_text,)
        ).fetchone()
        # An item put again keeps its seq (its place in a search) and its created_at.
        connection.execute(
            "INSERT INTO rxagent_store_items (ns_seq, key, value, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (ns_seq, key)"
            " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (ns_seq, key, text, now, now),
        )
        (item_seq,) = connection.execute(
            "SELECT seq FROM rxagent_store_items WHERE ns_seq = ? AND key = ?", (ns_seq, key)
        ).fetchone()
        connection.execute("DELETE FROM rxagent_store_vectors WHERE item_seq = ?", (item_seq,))
        connection.executemany(
            "INSERT INTO rxagent_store_vectors VALUES (?, ?, ?)",
            [
                (item_seq, idx, _pack(vector))
                for idx, vector in enumerate(embedded.items.get((namespace, key), []))
            ],
        )
