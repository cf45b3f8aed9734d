"""``InMemorySaver``: checkpoints in a dict of this process, for tests and notebooks."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from ._base import BaseCheckpointSaver, Checkpoint, CheckpointTuple, PendingWrite, delete_runs_now

__all__ = ["InMemorySaver"]

# What a stored checkpoint keeps: its fields, with state and metadata as JSON text, so that
# what a caller does to a value it got back never reaches the store (as with a real database).
_Row = tuple[str | None, str, str, str]  # parent_id, created_at, state, metadata


class InMemorySaver(BaseCheckpointSaver):
    """Keeps checkpoints in memory: gone with the process, shared by whatever holds it.

    Safe to use from several threads. The async methods do not go to a worker thread: nothing
    here blocks.
    """

    in_place = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], dict[str, _Row]] = {}
        self._latest: dict[tuple[str, str], str] = {}
        self._writes: dict[tuple[str, str, str], dict[str, list[tuple[str, str]]]] = {}

    def put(self, checkpoint: Checkpoint) -> None:
        key = (checkpoint.thread_id, checkpoint.checkpoint_ns)
        row = (
            checkpoint.parent_id,
            checkpoint.created_at,
            json.dumps(checkpoint.state),
            json.dumps(checkpoint.metadata),
        )
        with self._lock:
            self._rows.setdefault(key, {})[checkpoint.checkpoint_id] = row
            if checkpoint.checkpoint_id > self._latest.get(key, ""):
                self._latest[key] = checkpoint.checkpoint_id

    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
    ) -> None:
        encoded = [(channel, json.dumps(value)) for channel, value in writes]
        with self._lock:
            self._writes.setdefault((thread_id, checkpoint_ns, checkpoint_id), {})[task_id] = (
                encoded
            )

    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> CheckpointTuple | None:
        key = (thread_id, checkpoint_ns)
        with self._lock:
            if checkpoint_id is None:
                checkpoint_id = self._latest.get(key)
                if checkpoint_id is None:
                    return None
            row = self._rows.get(key, {}).get(checkpoint_id)
            if row is None:
                return None
            return self._tuple(thread_id, checkpoint_ns, checkpoint_id, row)

    def list(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Iterator[CheckpointTuple]:
        with self._lock:
            rows = dict(self._rows.get((thread_id, checkpoint_ns), {}))
        found = 0
        for checkpoint_id in sorted(rows, reverse=True):
            if limit is not None and found >= limit:
                return
            if before is not None and checkpoint_id >= before:
                continue
            with self._lock:
                item = self._tuple(thread_id, checkpoint_ns, checkpoint_id, rows[checkpoint_id])
            if filter and any(
                item.checkpoint.metadata.get(name, _MISSING) != value
                for name, value in filter.items()
            ):
                continue
            found += 1
            yield item

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            for key in [key for key in self._rows if key[0] == thread_id]:
                del self._rows[key]
                self._latest.pop(key, None)
            for write_key in [key for key in self._writes if key[0] == thread_id]:
                del self._writes[write_key]

    def delete_for_runs(self, run_ids: Sequence[str], *, threads: Sequence[str] = ()) -> None:
        wanted = set(run_ids)
        with self._lock:
            for key, rows in self._rows.items():
                gone = [checkpoint_id for checkpoint_id, row in rows.items()
                        if json.loads(row[3]).get("run_id") in wanted]
                for checkpoint_id in gone:
                    del rows[checkpoint_id]
                    self._writes.pop((*key, checkpoint_id), None)
                if gone and self._latest.get(key) in gone:
                    if rows:
                        self._latest[key] = max(rows)
                    else:
                        del self._latest[key]

    def _tuple(self, thread_id: str, ns: str, checkpoint_id: str, row: _Row) -> CheckpointTuple:
        parent_id, created_at, state, metadata = row
        writes = self._writes.get((thread_id, ns, checkpoint_id), {})
        return CheckpointTuple(
            Checkpoint(
                thread_id, ns, checkpoint_id, parent_id, created_at,
                json.loads(state), json.loads(metadata),
            ),
            tuple(
                PendingWrite(task_id, channel, json.loads(value))
                for task_id, task_writes in writes.items()
                for channel, value in task_writes
            ),
        )

    # Nothing here blocks: the async forms run in place instead of in a worker thread.

    async def aput(self, checkpoint: Checkpoint) -> None:
        self.put(checkpoint)

    async def aput_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
    ) -> None:
        self.put_writes(thread_id, checkpoint_ns, checkpoint_id, task_id, writes)

    async def aget(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> CheckpointTuple | None:
        return self.get(thread_id, checkpoint_ns, checkpoint_id)

    async def alist(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(thread_id, checkpoint_ns, before=before, limit=limit,
                              filter=filter):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def adelete_for_runs(
        self, run_ids: Sequence[str], *, threads: Sequence[str] = ()
    ) -> None:
        delete_runs_now(self, run_ids, threads=threads)  # (a subclass may take no threads)


_MISSING = object()
