"""``SqliteSaver``: checkpoints in a SQLite file, the embedded durable saver.

One file holds every thread; several threads of a process and several processes can use it at
once. What it costs: one connection per saver, guarded by a lock, so the threads of one process
take turns (a query takes well under a millisecond; the async forms wait in a worker thread, off
the event loop); processes take turns to write (SQLite's write lock, waited for up to
``busy_timeout``) while readers carry on beside them (write-ahead log).

Layout (schema version 1, kept in ``rxagent_meta``)::

    rxagent_meta         key, value                    ("schema_version", "1")
    rxagent_checkpoints  thread_id, checkpoint_ns, checkpoint_id, parent_id, created_at,
                         state, metadata               primary key (thread, ns, id)
    rxagent_writes       thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
                         task_order, channel, value    primary key (thread, ns, id, task, idx)
    rxagent_checkpoints_run   index on json_extract(metadata, '$.run_id')

Values are JSON text, never pickle. The primary keys are the indexes: the latest checkpoint, one
checkpoint, a page of a listing and a checkpoint's writes are each a walk down one of them;
``delete_for_runs`` (a rollback) walks the index on the metadata's ``run_id``. Tables are
prefixed so the file can be shared with other tables of one's own.

The run index came after the tables, within schema version 1: a file made before it gets it the
first time a saver opens the file (one scan of the checkpoints, once), and the version stays 1,
so an older rxagent still opens the file (SQLite keeps the index up to date on its writes too).

Durability: ``synchronous=NORMAL`` in WAL mode, so a process killed at any point loses nothing
it committed; a power cut may lose the last commits (``synchronous=FULL`` would not, for a sync
per commit).

A run going on from where this process left its thread reads nothing: the saver counts its own
writes per thread and asks SQLite (``PRAGMA data_version``, a look at the write-ahead log's
index in shared memory) whether any other connection has committed since, which costs the
event loop 7-20 µs (three statements) where a read costs it a hop to the saver's thread and
back (0.15 ms).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

from .._exceptions import CheckpointError, UsageError
from .._sqlite_files import connect, set_up, where
from ._base import BaseCheckpointSaver, Checkpoint, CheckpointTuple, PendingWrite

__all__ = ["SqliteSaver"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rxagent_checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_id TEXT,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS rxagent_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    task_order INTEGER NOT NULL,
    channel TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
"""

# Added to files made before it when a saver opens them: additive, so no new schema version
# (an older rxagent would refuse a file of a newer one).
_RUN_INDEX = "rxagent_checkpoints_run"
_RUN_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {_RUN_INDEX}"
    " ON rxagent_checkpoints (json_extract(metadata, '$.run_id'))"
)

_COLUMNS = "checkpoint_id, parent_id, created_at, state, metadata"
_PAGE = 100  # checkpoints read per query while a listing is iterated


def _dumps(value: Any) -> str:
    # ASCII-only text: a lone surrogate in a str still round-trips (UTF-8 would refuse it).
    return json.dumps(value, separators=(",", ":"))


@contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise CheckpointError(f"SqliteSaver could not {what}: {error}") from error


class SqliteSaver(BaseCheckpointSaver):
    """Keeps checkpoints in a SQLite file, shared by the threads and processes that open it.

    Args:
        path: the database file (made if missing); ``":memory:"`` for one that lives as long
            as the saver; or an open ``sqlite3.Connection`` made with
            ``check_same_thread=False``, which :meth:`close` leaves open.
        busy_timeout: seconds to wait for another process's write before failing with
            :class:`~rxagent.CheckpointError`.

    Raises:
        CheckpointError: the file cannot be opened, is not a SQLite database, or holds
            checkpoints of a newer schema than this rxagent reads.

    Use it in a ``with`` block, or call :meth:`close` when done.
    """

    def __init__(
        self, path: str | os.PathLike[str] | sqlite3.Connection, *, busy_timeout: float = 30.0
    ) -> None:
        self._lock = threading.RLock()  # re-entered by the calls inside batch()
        self._batching = False
        # What _write_mark() tells from: this saver's writes per thread, and an epoch that
        # moves on whenever anything else may have changed the file.
        self._written: dict[str, int] = {}
        self._epoch = 0
        self._data_version: int | None = None  # as last seen by _write_mark()
        self._owns_connection = not isinstance(path, sqlite3.Connection)
        self._where = where(path)
        with _storage_errors(f"open {self._where}"):
            connection = connect(path, busy_timeout)
        try:
            with _storage_errors(f"set up {self._where}"):
                set_up(connection, schema=_SCHEMA, version_key="schema_version",
                       version=SCHEMA_VERSION, too_new=self._too_new)
                _add_run_index(connection)
                self._busy_ms = int(connection.execute("PRAGMA busy_timeout").fetchone()[0])
                self._changes = connection.total_changes  # made on it outside this saver: none
        except BaseException:
            if self._owns_connection:
                connection.close()
            raise
        self._connection: sqlite3.Connection | None = connection

    def _too_new(self, version: int) -> Exception:
        return CheckpointError(
            f"{self._where} holds checkpoints of schema version {version}, written by a "
            f"newer rxagent; this one reads version {SCHEMA_VERSION}: upgrade rxagent "
            "to open it"
        )

    # -- lifetime ------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def from_conn_string(cls, path: str, *, busy_timeout: float = 30.0) -> Iterator[Self]:
        """A saver on the file ``path``, closed when the ``with`` block ends."""
        with cls(path, busy_timeout=busy_timeout) as saver:
            yield saver

    def close(self) -> None:
        """Close the connection (unless it was given); the saver cannot be used afterwards.
        Closing twice is fine."""
        with self._lock:
            if self._connection is not None and self._owns_connection:
                self._connection.close()
            self._connection = None

    @contextmanager
    def _transaction(self, what: str, begin: str = "BEGIN") -> Iterator[sqlite3.Connection]:
        """The connection, inside a transaction and the lock, for one method's statements."""
        with self._lock, _storage_errors(what):
            connection = self._connection
            if connection is None:
                raise UsageError("this SqliteSaver is closed")
            if self._batching:  # inside batch(): its transaction holds this call's statements
                yield connection
                return
            connection.execute(begin)
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                self._epoch += 1  # what was counted in it may not have been kept
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The calls inside the block in one transaction (and one commit), from this thread."""
        with self._lock, _storage_errors("store a batch"):
            connection = self._connection
            if connection is None:
                raise UsageError("this SqliteSaver is closed")
            if self._batching:  # nested: the outer batch decides
                yield
                return
            connection.execute("BEGIN IMMEDIATE")
            self._batching = True
            try:
                yield
                connection.execute("COMMIT")
            except BaseException:
                self._epoch += 1  # what was counted in it was not kept
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            finally:
                self._batching = False

    # -- the five methods ----------------------------------------------------------------------

    def put(self, checkpoint: Checkpoint) -> None:
        row = (
            checkpoint.thread_id,
            checkpoint.checkpoint_ns,
            checkpoint.checkpoint_id,
            checkpoint.parent_id,
            checkpoint.created_at,
            _dumps(checkpoint.state),
            _dumps(checkpoint.metadata),
        )
        with self._transaction("store a checkpoint", "BEGIN IMMEDIATE") as connection:
            connection.execute(
                "INSERT OR REPLACE INTO rxagent_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)", row
            )
            self._wrote(connection, checkpoint.thread_id)

    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
    ) -> None:
        encoded = [(channel, _dumps(value)) for channel, value in writes]
        where = "thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
        key = (thread_id, checkpoint_ns, checkpoint_id)
        with self._transaction("store writes", "BEGIN IMMEDIATE") as connection:
            # A task written again keeps its place; a new one goes after the others.
            row = connection.execute(
                f"SELECT task_order FROM rxagent_writes WHERE {where} AND task_id = ? LIMIT 1",
                (*key, task_id),
            ).fetchone()
            if row is None:  # a new task: nothing of it to delete
                row = connection.execute(
                    f"SELECT coalesce(max(task_order) + 1, 0) FROM rxagent_writes WHERE {where}",
                    key,
                ).fetchone()
            else:
                connection.execute(
                    f"DELETE FROM rxagent_writes WHERE {where} AND task_id = ?", (*key, task_id)
                )
            connection.executemany(
                "INSERT INTO rxagent_writes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (*key, task_id, idx, row[0], channel, value)
                    for idx, (channel, value) in enumerate(encoded)
                ],
            )
            self._wrote(connection, thread_id)

    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> CheckpointTuple | None:
        query = (
            f"SELECT {_COLUMNS} FROM rxagent_checkpoints"
            " WHERE thread_id = ? AND checkpoint_ns = ?"
        )
        params: tuple[str, ...] = (thread_id, checkpoint_ns)
        if checkpoint_id is None:
            query += " ORDER BY checkpoint_id DESC LIMIT 1"
        else:
            query += " AND checkpoint_id = ?"
            params += (checkpoint_id,)
        with self._transaction("read a checkpoint") as connection:
            rows = connection.execute(query, params).fetchall()
            found = _tuples(connection, thread_id, checkpoint_ns, rows)
        return found[0] if found else None

    def list(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Iterator[CheckpointTuple]:
        # SQL narrows by the scalar filter values; Python then compares every value exactly
        # (lists and objects, 1 against 1.0...), so the SQL need only never leave a match out.
        conditions, filter_params, exact = _filter_sql(filter or {})
        found = 0
        while limit is None or found < limit:
            # As many rows as are still wanted, when SQL alone decides which match.
            page_size = _PAGE if limit is None or not exact else min(_PAGE, limit - found)
            query = (
                f"SELECT {_COLUMNS} FROM rxagent_checkpoints"
                " WHERE thread_id = ? AND checkpoint_ns = ?"
            )
            params: list[Any] = [thread_id, checkpoint_ns]
            if before is not None:
                query += " AND checkpoint_id < ?"
                params.append(before)
            query += "".join(f" AND {condition}" for condition in conditions)
            query += " ORDER BY checkpoint_id DESC LIMIT ?"
            params += [*filter_params, page_size]
            # The lock is held for one page at a time, never while the caller holds the
            # iterator: a caller writing as it reads goes on.
            with self._transaction("list checkpoints") as connection:
                rows = connection.execute(query, params).fetchall()
                page = _tuples(connection, thread_id, checkpoint_ns, rows)
            for item in page:
                if limit is not None and found >= limit:
                    return
                if filter and not _matches(item.checkpoint.metadata, filter):
                    continue
                found += 1
                yield item
            if len(rows) < page_size:
                return
            before = rows[-1][0]

    def delete_thread(self, thread_id: str) -> None:
        with self._transaction("delete a thread", "BEGIN IMMEDIATE") as connection:
            connection.execute("DELETE FROM rxagent_checkpoints WHERE thread_id = ?", (thread_id,))
            connection.execute("DELETE FROM rxagent_writes WHERE thread_id = ?", (thread_id,))
            self._wrote(connection, thread_id)

    def delete_for_runs(self, run_ids: Sequence[str], *, threads: Sequence[str] = ()) -> None:
        # The expression is the run index's, word for word: SQLite walks the index only then.
        ids = list(run_ids)
        with self._transaction("delete runs' checkpoints", "BEGIN IMMEDIATE") as connection:
            for start in range(0, len(ids), 500):  # under SQLite's limit on parameters
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = connection.execute(
                    "SELECT thread_id, checkpoint_ns, checkpoint_id FROM rxagent_checkpoints"
                    f" WHERE json_extract(metadata, '$.run_id') IN ({marks})", chunk,
                ).fetchall()
                connection.executemany(
                    "DELETE FROM rxagent_checkpoints"
                    " WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?", rows)
                connection.executemany(
                    "DELETE FROM rxagent_writes"
                    " WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?", rows)
                for thread_id in {row[0] for row in rows}:
                    self._wrote(connection, thread_id)

    # -- what has changed ----------------------------------------------------------------------

    def _wrote(self, connection: sqlite3.Connection, thread_id: str) -> None:
        """Count a write of this saver's to the thread (under the lock, in its transaction)."""
        self._written[thread_id] = self._written.get(thread_id, 0) + 1
        self._changes = connection.total_changes

    def _write_mark(self, thread_id: str) -> tuple[int, int] | None:
        # In place on the event loop, so it never waits: not for the lock (a None instead),
        # nor for SQLite (busy_timeout 0 for the one statement: busy is a None too).
        if not self._lock.acquire(blocking=False):
            return None
        try:
            connection = self._connection
            if connection is None or self._batching:
                return None
            try:
                connection.execute("PRAGMA busy_timeout = 0")
                try:
                    # A read transaction of its own: the number moves on when another
                    # connection (of this process or another) has committed since the last.
                    version = connection.execute("PRAGMA data_version").fetchone()[0]
                finally:
                    connection.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            except sqlite3.Error:
                return None
            if version != self._data_version:
                self._data_version = version
                self._epoch += 1
            if connection.total_changes != self._changes:  # a given connection, used by others
                self._changes = connection.total_changes
                self._epoch += 1
            return self._epoch, self._written.get(thread_id, 0)
        finally:
            self._lock.release()


def _add_run_index(connection: sqlite3.Connection) -> None:
    """Make the run index in a file made before it (once: a look at the schema otherwise, with
    no write lock taken)."""
    found = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (_RUN_INDEX,)
    ).fetchone()
    if found is None:
        # IF NOT EXISTS: another process opening the file may have made it meanwhile.
        connection.execute(_RUN_INDEX_SQL)


def _tuples(
    connection: sqlite3.Connection, thread_id: str, ns: str, rows: Sequence[Any]
) -> list[CheckpointTuple]:
    """Checkpoint rows (newest first) as tuples, with their writes read in one query."""
    if not rows:
        return []
    ids = [row[0] for row in rows]
    writes: dict[str, list[PendingWrite]] = {}
    for checkpoint_id, task_id, channel, value in connection.execute(
        "SELECT checkpoint_id, task_id, channel, value FROM rxagent_writes"
        " WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id BETWEEN ? AND ?"
        " ORDER BY checkpoint_id, task_order, idx",
        (thread_id, ns, ids[-1], ids[0]),
    ):
        writes.setdefault(checkpoint_id, []).append(
            PendingWrite(task_id, channel, json.loads(value))
        )
    return [
        CheckpointTuple(
            Checkpoint(
                thread_id, ns, checkpoint_id, parent_id, created_at,
                json.loads(state), json.loads(metadata),
            ),
            tuple(writes.get(checkpoint_id, ())),
        )
        for checkpoint_id, parent_id, created_at, state, metadata in rows
    ]


def _filter_sql(filter: Mapping[str, Any]) -> tuple[list[str], list[Any], bool]:
    """SQL conditions that keep every checkpoint whose metadata matches ``filter``, and
    whether they keep only those (else the caller's exact check drops a few more)."""
    conditions: list[str] = []
    params: list[Any] = []
    exact = True
    for key, value in filter.items():
        path = f'$."{key}"'
        if '"' in key or "\\" in key:
            exact = False  # not writable as a JSON path: left to the exact check
        elif value is None:
            conditions.append("json_type(metadata, ?) = 'null'")
            params.append(path)
        elif isinstance(value, str | int | float):  # bool is an int: true extracts as 1
            conditions.append("json_extract(metadata, ?) = ?")
            params += [path, value]
            # 1 == 1.0 == true in SQLite as in Python; a str never equals a number in either.
        else:
            exact = False  # a list or an object: compared in Python
    return conditions, params, exact


def _matches(metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    return all(name in metadata and metadata[name] == value for name, value in filter.items())
