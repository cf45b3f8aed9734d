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
    rxagent_store_items       seq, ns_seq, key, value, created_at, updated_at, ttl,
                              expires_at                 unique (ns_seq, key); seq orders the
                                                         items as they were first put; ttl in
                                                         minutes, expires_at in seconds since
                                                         the epoch (NULL: never)
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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Self

from .._exceptions import StoreError, UsageError
from .._sqlite_files import connect, set_up, where
from ._base import (
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
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
    ttl REAL,
    expires_at REAL,
    UNIQUE (ns_seq, key)
);
CREATE INDEX IF NOT EXISTS rxagent_store_expiry ON rxagent_store_items (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS rxagent_store_vectors (
    item_seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (item_seq, idx)
)
"""

_ROWS = (
    "SELECT n.namespace, i.key, i.value, i.created_at, i.updated_at, i.seq, i.ttl"
    " FROM rxagent_store_namespaces n JOIN rxagent_store_items i ON i.ns_seq = n.seq"
)
_LIVE = "(i.expires_at IS NULL OR i.expires_at > ?)"  # an item whose time is not up


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
        ttl: how items expire (see :class:`~rxagent.store.TTLConfig`), as for
            :class:`~rxagent.store.InMemoryStore`.
        busy_timeout: seconds to wait for another process's write before failing with
            :class:`~rxagent.store.StoreError`.

    Raises:
        StoreError: the file cannot be opened, is not a SQLite database, or holds a store of a
            newer schema than this rxagent reads.
        UsageError: an ``index`` or ``ttl`` that cannot work.

    Use it in a ``with`` block, or call :meth:`close` when done.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | sqlite3.Connection,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        busy_timeout: float = 30.0,
    ) -> None:
        super().__init__(index, ttl)
        self._lock = threading.Lock()
        self._owns_connection = not isinstance(path, sqlite3.Connection)
        self._where = where(path)
        with _storage_errors(f"open {self._where}"):
            connection = connect(path, busy_timeout)
        try:
            with _storage_errors(f"set up {self._where}"):
                set_up(connection, schema=_SCHEMA, version_key="store_schema_version",
                       version=SCHEMA_VERSION, too_new=self._too_new)
        except BaseException:
            if self._owns_connection:
                connection.close()
            raise
        self._connection: sqlite3.Connection | None = connection

    def _too_new(self, version: int) -> Exception:
        return StoreError(
            f"{self._where} holds a store of schema version {version}, written by a "
            f"newer rxagent; this one reads version {SCHEMA_VERSION}: upgrade rxagent "
            "to open it"
        )

    # -- lifetime ------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        path: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        busy_timeout: float = 30.0,
    ) -> Iterator[Self]:
        """A store on the file ``path``, closed when the ``with`` block ends."""
        with cls(path, index=index, ttl=ttl, busy_timeout=busy_timeout) as store:
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
            connection = self._open()
            when = self._clock()
            reads = _Reads(connection, when.timestamp())
            # A batch that writes takes the write lock from the start, so that its reads and
            # its writes see one state.
            with _transaction(connection, "BEGIN IMMEDIATE" if plan.puts else "BEGIN"):
                results: list[Result] = []
                for op in plan.ops:
                    if isinstance(op, GetOp):
                        results.append(reads.get(op))
                    elif isinstance(op, SearchOp):
                        results.append(reads.search(op, embedded.queries.get(op.query or "")))
                    elif isinstance(op, ListNamespacesOp):
                        results.append(reads.list_namespaces(op))
                    else:
                        results.append(None)
                if plan.puts:
                    reads.refresh()  # before the writes: a put after a read decides
                    _write(connection, plan, embedded, when)
                    if self._sweep_due(reads.now):
                        _sweep(connection, reads.now)
            if reads.to_refresh:
                # Read items with a TTL start their time again: a write, in a transaction of
                # its own, so that reads of items without one never take the write lock.
                with _transaction(connection, "BEGIN IMMEDIATE"):
                    reads.refresh()
            return results

    def sweep_ttl(self) -> int:
        with self._lock, _storage_errors("sweep expired items"):
            connection = self._open()
            with _transaction(connection, "BEGIN IMMEDIATE"):
                return _sweep(connection, self._clock().timestamp())

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise UsageError("this SqliteStore is closed")
        return self._connection


@contextmanager
def _transaction(connection: sqlite3.Connection, begin: str) -> Iterator[None]:
    connection.execute(begin)
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


class _Reads:
    """A batch's reads at one moment: items whose time is up are not there, and the items
    read with ``refresh_ttl`` are noted, to start their time again."""

    def __init__(self, connection: sqlite3.Connection, now: float) -> None:
        self.connection = connection
        self.now = now
        self.to_refresh: dict[int, float] = {}  # item seq: its ttl in minutes

    def _noted(self, rows: Iterable[tuple[Any, ...]], refresh: bool) -> None:
        if refresh:
            self.to_refresh.update((row[5], row[6]) for row in rows if row[6] is not None)

    def get(self, op: GetOp) -> Item | None:
        row = self.connection.execute(
            f"{_ROWS} WHERE n.namespace = ? AND i.key = ? AND {_LIVE}",
            (_text(op.namespace), op.key, self.now),
        ).fetchone()
        if row is None:
            return None
        self._noted([row], op.refresh_ttl)
        return Item(value=json.loads(row[2]), key=row[1], namespace=op.namespace,
                    created_at=row[3], updated_at=row[4])

    def search(self, op: SearchOp, query: list[float] | None) -> list[SearchItem]:
        where, params = _under(op.namespace_prefix)
        sql = f"{_ROWS} WHERE {where} AND {_LIVE} ORDER BY n.seq, i.seq"
        params.append(self.now)  # type: ignore[arg-type]
        plain = query is None and not op.filter
        if plain:  # SQL alone decides the page
            sql += " LIMIT ? OFFSET ?"
            params += [op.limit, op.offset]  # type: ignore[list-item]
        candidates: list[tuple[tuple[Any, ...], Vectors]] = []
        stop = op.offset + op.limit if query is None else None
        for row in self.connection.execute(sql, params):
            if len(candidates) == stop:
                break
            if plain or matches_filter(json.loads(row[2]), op.filter):
                candidates.append((row, []))
        if query is not None and candidates:
            candidates = self._with_vectors(candidates, op.namespace_prefix)
        found: list[tuple[tuple[Any, ...], float | None]] = (
            [(row, None) for row, _ in candidates] if plain
            else rank(candidates, query, op.offset, op.limit)
        )
        self._noted([row for row, _ in found], op.refresh_ttl)
        return [
            SearchItem(_labels(row[0]), row[1], json.loads(row[2]), row[3], row[4], score)
            for row, score in found
        ]

    def _with_vectors(
        self, candidates: list[tuple[tuple[Any, ...], Vectors]], prefix: tuple[str, ...]
    ) -> list[tuple[tuple[Any, ...], Vectors]]:
        where, params = _under(prefix)
        vectors: dict[int, Vectors] = {}
        for item_seq, blob in self.connection.execute(
            "SELECT v.item_seq, v.vector FROM rxagent_store_vectors v"
            " JOIN rxagent_store_items i ON i.seq = v.item_seq"
            " JOIN rxagent_store_namespaces n ON n.seq = i.ns_seq"
            f" WHERE {where} ORDER BY v.item_seq, v.idx",
            params,
        ):
            vectors.setdefault(item_seq, []).append(_unpack(blob))
        return [(row, vectors.get(row[5], [])) for row, _ in candidates]

    def list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        # The first prefix's labels before its first "*" narrow the rows in SQL; the rest of
        # the conditions are Python's.
        fixed: tuple[str, ...] = ()
        prefixes = [c.path for c in op.match_conditions or () if c.match_type == "prefix"]
        for label in prefixes[0] if prefixes else ():
            if label == "*":
                break
            fixed += (label,)
        where, params = _under(fixed)
        rows = self.connection.execute(
            "SELECT n.namespace FROM rxagent_store_namespaces n WHERE EXISTS"
            f" (SELECT 1 FROM rxagent_store_items i WHERE i.ns_seq = n.seq AND {_LIVE})"
            f" AND {where}",
            [self.now, *params],
        )
        return page_of_namespaces(
            (_labels(text) for (text,) in rows), op.match_conditions, op.max_depth, op.offset,
            op.limit,
        )

    def refresh(self) -> None:
        self.connection.executemany(
            "UPDATE rxagent_store_items SET expires_at = ? WHERE seq = ? AND expires_at > ?",
            [(self.now + ttl * 60, seq, self.now) for seq, ttl in self.to_refresh.items()],
        )
        self.to_refresh.clear()


def _write(
    connection: sqlite3.Connection, plan: Plan, embedded: Embedded, when: datetime
) -> None:
    now, stamp = when.timestamp(), when.isoformat()
    for (namespace, key), (op, text) in plan.puts.items():
        ns_text = _text(namespace)
        where = "n.namespace = ? AND i.key = ?"
        params: list[Any] = [ns_text, key]
        if text is not None:  # to put: only an expired item is removed first
            where += f" AND NOT {_LIVE}"
            params.append(now)
        row = connection.execute(
            "SELECT i.seq FROM rxagent_store_namespaces n JOIN rxagent_store_items i"
            f" ON i.ns_seq = n.seq WHERE {where}",
            params,
        ).fetchone()
        if row is not None:  # deleted, or expired: what is put now is new, and goes last
            connection.execute("DELETE FROM rxagent_store_items WHERE seq = ?", row)
            connection.execute("DELETE FROM rxagent_store_vectors WHERE item_seq = ?", row)
        if text is None:
            continue
        connection.execute(
            "INSERT OR IGNORE INTO rxagent_store_namespaces (namespace) VALUES (?)", (ns_text,)
        )
        (ns_seq,) = connection.execute(
            "SELECT seq FROM rxagent_store_namespaces WHERE namespace = ?", (ns_text,)
        ).fetchone()
        expires_at = None if op.ttl is None else now + op.ttl * 60
        # An item put again keeps its seq (its place in a search) and its created_at.
        connection.execute(
            "INSERT INTO rxagent_store_items"
            " (ns_seq, key, value, created_at, updated_at, ttl, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ns_seq, key) DO UPDATE SET"
            " value = excluded.value, updated_at = excluded.updated_at, ttl = excluded.ttl,"
            " expires_at = excluded.expires_at",
            (ns_seq, key, text, stamp, stamp, op.ttl, expires_at),
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


def _sweep(connection: sqlite3.Connection, now: float) -> int:
    expired = "SELECT seq FROM rxagent_store_items WHERE expires_at <= ?"
    connection.execute(
        f"DELETE FROM rxagent_store_vectors WHERE item_seq IN ({expired})", (now,)
    )
    return connection.execute(
        "DELETE FROM rxagent_store_items WHERE expires_at <= ?", (now,)
    ).rowcount
