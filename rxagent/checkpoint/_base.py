"""What a checkpoint saver stores, and the interface every saver implements.

A saver is storage and nothing else: it keeps opaque, JSON-able records and hands them back.
What a record means (the state a step added, the steps still to run) is the agent's business
(``rxagent/_thread_state.py``), so a saver of one's own (Postgres, say) is a few queries, and
``rxagent.checkpoint.conformance`` tells whether it keeps its promises.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

import anyio.to_thread

from .._exceptions import UsageError

__all__ = [
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointTuple",
    "PendingWrite",
    "new_checkpoint_id",
]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One checkpoint of a thread, as a saver stores it.

    Attributes:
        thread_id: the conversation it belongs to.
        checkpoint_ns: ``""`` for a top-level run; a nested run's namespace otherwise.
        checkpoint_id: unique, and ordered by time within a thread (:func:`new_checkpoint_id`):
            savers list a thread's checkpoints newest first by sorting on it.
        parent_id: the checkpoint this one follows, ``None`` for a thread's first.
        created_at: when it was made, ISO 8601 in UTC.
        state: what the agent keeps (JSON-able; the saver never looks inside).
        metadata: JSON-able facts about it (``source``, ``step``, ``run_id``...), which
            :meth:`BaseCheckpointSaver.list` can filter on.
    """

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    created_at: str
    state: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A value a task of an unfinished step wrote (a tool's result, an interrupt), kept with the
    checkpoint the step started from, so that a resumed step does not run that task again."""

    task_id: str
    channel: str
    value: Any


@dataclass(frozen=True, slots=True)
class CheckpointTuple:
    """A checkpoint as read back: the record, and the writes made on top of it so far (in the
    order they were made)."""

    checkpoint: Checkpoint
    pending_writes: tuple[PendingWrite, ...] = ()


class BaseCheckpointSaver(ABC):
    """Where an agent keeps its threads' checkpoints.

    Implement the five sync methods. The async ones run them in a worker thread, so a saver
    that blocks (a file, a socket) never holds up the event loop; a saver that never blocks sets
    ``in_place = True``, and a run then calls its sync methods directly, as for
    ``InMemorySaver``. A saver with a native async driver overrides the async methods. Values are
    JSON-able (dicts with str keys, lists, str, int, float, bool, None); a saver may store them
    as JSON text and must give back equal values.
    """

    in_place: ClassVar[bool] = False
    """Whether the methods never block, so that an event loop may call the sync ones itself."""

    @abstractmethod
    def put(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` (replacing one of the same thread, namespace and id)."""

    @abstractmethod
    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
    ) -> None:
        """Add the ``(channel, value)`` writes of task ``task_id`` to the checkpoint.

        Writing a task's writes again replaces them where they stood (the task keeps its place
        among the others): a retried task never doubles its writes.
        """

    @abstractmethod
    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> CheckpointTuple | None:
        """The checkpoint ``checkpoint_id`` of the thread (its latest when ``None``), with its
        pending writes; ``None`` if there is none."""

    @abstractmethod
    def list(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> Iterator[CheckpointTuple]:
        """The thread's checkpoints in the namespace, newest first.

        Args:
            before: only those older than this checkpoint id.
            limit: at most this many.
            filter: only those whose metadata holds each of these keys with an equal value.
        """

    @abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Forget the thread: its checkpoints and writes in every namespace."""

    def delete_for_runs(self, run_ids: Sequence[str], *, threads: Sequence[str] = ()) -> None:
        """Forget the checkpoints whose metadata ``run_id`` is one of ``run_ids`` (in every
        thread and namespace), with their writes: what those runs stored, so that their threads
        are as they were before them. LangGraph's name and signature; the server's ``rollback``
        uses it. Optional: a saver that does not offer it keeps this default.

        Args:
            run_ids: the runs.
            threads: threads the caller knows the runs wrote to (the server's rollback passes
                the run's thread). A saver whose own index of runs may miss some checkpoints
                (``RedisSaver``'s, for those put before it kept one) also looks there; the
                others need not.

        Raises:
            UsageError: the saver cannot do it (this default).
        """
        raise UsageError(f"{type(self).__name__} cannot delete a run's checkpoints "
                         "(delete_for_runs)")

    def close(self) -> None:
        """Let go of what the saver holds (a connection, a client); by default nothing. A saver
        is also a context manager that closes it: ``with SqliteSaver(path) as saver:``."""
        return  # nothing to let go of, unless a saver says otherwise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def batch(self) -> AbstractContextManager[None]:
        """Make the calls inside the ``with`` block (from one thread) one unit of work, as one
        transaction, if the storage has them: all or none of them are stored. A run's writer
        stores what it has queued that way. By default each call is a unit of its own."""
        return contextlib.nullcontext()

    def _write_mark(self, thread_id: str) -> tuple[int, int] | None:
        """Where the thread's stored records stand, told at once, or ``None`` (the default)
        when the saver cannot tell without waiting. A run calls it on the event loop.

        A mark is ``(epoch, writes)``: ``writes`` counts this saver object's own ``put``,
        ``put_writes`` and ``delete_thread`` calls on the thread, and ``epoch`` moves on
        whenever something else may have changed what is stored (another connection or
        process, a transaction rolled back). Marks ``(e, w)`` and later ``(e, w + n)`` mean
        that the saver made exactly ``n`` writes to the thread in between and nothing else
        touched it: a run that made those ``n`` writes knows the thread's newest checkpoint
        without reading it back (``rxagent/_thread_run.py``)."""
        return None

    # -- async forms: the sync ones in a worker thread -----------------------------------------

    async def aput(self, checkpoint: Checkpoint) -> None:
        """:meth:`put`, awaited."""
        await anyio.to_thread.run_sync(self.put, checkpoint)

    async def aput_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
    ) -> None:
        """:meth:`put_writes`, awaited."""
        await anyio.to_thread.run_sync(
            self.put_writes, thread_id, checkpoint_ns, checkpoint_id, task_id, writes
        )

    async def aget(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> CheckpointTuple | None:
        """:meth:`get`, awaited."""
        return await anyio.to_thread.run_sync(self.get, thread_id, checkpoint_ns, checkpoint_id)

    async def alist(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """:meth:`list`, iterated with ``async for`` (read whole in a worker thread)."""

        def read() -> list[CheckpointTuple]:
            return list(
                self.list(thread_id, checkpoint_ns, before=before, limit=limit, filter=filter)
            )

        for item in await anyio.to_thread.run_sync(read):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        """:meth:`delete_thread`, awaited."""
        await anyio.to_thread.run_sync(self.delete_thread, thread_id)

    async def adelete_for_runs(
        self, run_ids: Sequence[str], *, threads: Sequence[str] = ()
    ) -> None:
        """:meth:`delete_for_runs`, awaited."""
        await anyio.to_thread.run_sync(
            functools.partial(delete_runs_now, self, list(run_ids), threads=list(threads)))


def delete_runs_now(
    saver: BaseCheckpointSaver, run_ids: Sequence[str], *, threads: Sequence[str]
) -> None:
    """``saver.delete_for_runs``, naming ``threads`` only to a saver that takes them: one
    written to LangGraph's signature (``run_ids`` alone) is called with that alone."""
    if _takes_threads(saver.delete_for_runs):
        saver.delete_for_runs(run_ids, threads=threads)
    else:
        saver.delete_for_runs(run_ids)


async def delete_runs(
    saver: BaseCheckpointSaver, run_ids: Sequence[str], *, threads: Sequence[str]
) -> None:
    """``saver.adelete_for_runs``, as :func:`delete_runs_now` calls its sync twin."""
    if _takes_threads(saver.adelete_for_runs):
        await saver.adelete_for_runs(run_ids, threads=threads)
    else:
        await saver.adelete_for_runs(run_ids)


def _takes_threads(method: Callable[..., Any]) -> bool:
    return "threads" in inspect.signature(method).parameters


_id_lock = threading.Lock()
_last_id_time = 0


def new_checkpoint_id() -> str:
    """A new checkpoint id: a UUID version 7 (RFC 9562), whose text sorts by time.

    Ids made by one process sort in the order they were made, even within one millisecond:
    the 74 bits after the time are a counter that starts at random and only goes up.
    """
    global _last_id_time
    with _id_lock:
        # Milliseconds in the top 48 bits; 12 + 62 bits of counter and randomness below,
        # advanced by one when the clock has not moved on (or went back).
        now = time.time_ns() // 1_000_000 << 74 | int.from_bytes(os.urandom(10)) >> 6
        if now <= _last_id_time:
            now = _last_id_time + 1
        _last_id_time = now
    # Lay out version 7 and the RFC variant around the 122 bits of time and counter.
    high, low = now >> 62, now & (1 << 62) - 1
    value = (high >> 12) << 80 | 0x7 << 76 | (high & 0xFFF) << 64 | 0b10 << 62 | low
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
