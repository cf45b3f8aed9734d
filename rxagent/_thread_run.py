"""One run's hold on its thread: the checkpoint it starts from, and the checkpoints it makes,
written when its ``durability`` says.

- ``"sync"``: each checkpoint and each finished tool's result is written before the run goes on,
  so a process killed at any point loses nothing that had finished.
- ``"async"`` (the default): they are written in order while the run goes on (for a saver
  with sync methods only, by its writer thread, which takes them in within
  :data:`WAKE_AFTER` seconds, or :data:`LOOK_EVERY` while a sync stream's reader keeps the loop
  stopped); the run ends only once all are written.
- ``"exit"``: only when the run ends (normally, interrupted or failed), as one checkpoint whose
  writes are all the run's steps: the least writing, and a killed process loses the run.

Checkpoint writes happen between steps, never per token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from queue import Empty, SimpleQueue
from typing import Any, TypeVar, cast

import anyio

from ._exceptions import ThreadBusyError, UsageError
from ._loops import current_loop, waker
from ._thread_state import (
    Durability,
    Head,
    Write,
    as_record,
    encode_task_writes,
    find_left,
    leave,
    load_head,
    remember,
)
from .checkpoint import BaseCheckpointSaver

__all__ = ["DURABILITIES", "ThreadRun", "thread_of"]

DURABILITIES = ("exit", "async", "sync")

# The threads with a run going in this process, by saver.
_BUSY: weakref.WeakKeyDictionary[BaseCheckpointSaver, set[tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def thread_of(config: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The ``thread_id`` and ``checkpoint_id`` a run's config names (``configurable``)."""
    configurable = (config or {}).get("configurable") or {}
    if not isinstance(configurable, dict):
        raise UsageError(f"config['configurable'] is a dict, got {configurable!r}")
    thread_id = configurable.get("thread_id")
    checkpoint_id = configurable.get("checkpoint_id")
    for key, value in (("thread_id", thread_id), ("checkpoint_id", checkpoint_id)):
        if value is not None and not isinstance(value, (str, int)):
            raise UsageError(f"config['configurable'][{key!r}] is a str, got {value!r}")
    return (
        None if thread_id is None else str(thread_id),
        None if checkpoint_id is None else str(checkpoint_id),
    )


_T = TypeVar("_T")

# One write to a saver: ("put", (checkpoint,)) or ("put_writes", (thread, ns, id, task, writes)).
_Op = tuple[str, tuple[Any, ...]]


class _Writes:
    """One run's ``"async"`` writes on a saver thread, as far as the thread knows: the first
    that failed."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Exception | None = None


WAKE_AFTER = 0.02
"""Seconds after a run hands its saver's thread a write before its loop wakes the thread to
store it (sooner when the run ends and waits for its writes)."""
LOOK_EVERY = 0.5
"""How often the thread looks for writes on its own, for those of a run whose loop is
stopped (a sync stream's reader holding an item)..."""
LOOK_FOR = 10.0
"""...for this many seconds after its last write; then it sleeps until a write wakes it."""


class _SaverThread:
    """The thread that makes every call a run makes on one saver with sync methods only
    (SQLite, Redis), in the order they were made: its reads, and its writes.

    A run hands it each ``"async"`` write and goes on, without waking it: the write joins a
    list, and the run's loop wakes the thread :data:`WAKE_AFTER` seconds later, or when the run
    ends and waits for its writes (a trio loop, which has no timer, wakes it at once). The
    thread stores all it finds in one unit of work (one transaction). Waking it for each write
    cost more than the write: the woken thread waits for the interpreter lock while the loop
    runs the next step, and each time the loop lets go of the lock (every turn of the loop)
    it is signalled in vain; on a 2-core machine that made a 3-step turn on SQLite 0.25 ms
    dearer, and 2 ms when other processes kept the cores busy. A run whose loop is stopped
    (a sync ``stream()`` whose reader holds an item) wakes nobody: the thread also looks on its
    own every :data:`LOOK_EVERY` seconds, until :data:`LOOK_FOR` seconds pass without a
    write; asleep, it is woken by the next write. So a killed process loses the writes of the
    last :data:`WAKE_AFTER` seconds (:data:`LOOK_EVERY` while the loop is stopped).

    Reads, and the writes a run waits for, are one hop each. anyio's worker threads would do
    the same, but every sync ``invoke()`` started a new one for its first call (20 threads for
    20 calls), and starting a thread costs more than the hop. The thread holds the saver
    weakly and ends with it.
    """

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        self.pid = os.getpid()  # a forked child has no such thread: it makes its own
        self._held: deque[tuple[_Writes, _Op]] = deque()  # handed over, not stored yet
        self._queue: SimpleQueue[Callable[[], None] | None] = SimpleQueue()  # jobs, wake-ups
        self._looking = True  # whether the thread looks at _held on its own
        weakref.finalize(saver, self._queue.put, None)
        threading.Thread(
            target=self._work, args=(weakref.ref(saver),), daemon=True,
            name="rxagent-checkpoint-writer",
        ).start()

    def write(self, owner: _Writes, op: _Op) -> None:
        self._held.append((owner, op))
        if not self._looking:  # asleep until woken (the thread checks _held once more first)
            self._queue.put(_look)

    def wake(self) -> None:
        """Have the thread store what it holds now."""
        self._queue.put(_look)

    def then(self, owner: _Writes, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the thread) once every write handed over so far is made."""
        self._queue.put(callback)

    async def call(self, work: Callable[[], _T]) -> _T:
        """``work()`` on the thread, after every write handed over before it (so a run reads
        what the runs before it wrote); its result, or its exception, here."""
        loop = current_loop()
        assert loop is not None
        done = anyio.Event()
        wake = waker(loop, done.set)
        outcome: list[tuple[bool, Any]] = []

        def job() -> None:
            try:
                outcome.append((True, work()))
            except BaseException as error:  # handed to the caller, raised there
                outcome.append((False, error))
            finally:
                wake()

        self._queue.put(job)
        await done.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return cast(_T, value)

    def _work(self, saver_ref: weakref.ref[BaseCheckpointSaver]) -> None:
        held, queue = self._held, self._queue
        last_write = time.monotonic()
        while True:
            try:
                job = queue.get(timeout=LOOK_EVERY) if self._looking else queue.get()
            except Empty:
                job = _look
            if job is None:  # the saver is gone
                return
            if held:  # first, as the job comes after them
                writes = []
                while held:
                    writes.append(held.popleft())
                saver = saver_ref()
                if saver is None:
                    return
                _store(saver, writes)
                del saver
                last_write = time.monotonic()
            if job is not _look:
                # A loop that closed before its run ended must not end the thread, which goes
                # on for the other runs.
                with contextlib.suppress(Exception):
                    job()
            if not self._looking:  # woken: a run is going
                self._looking = True
                last_write = time.monotonic()
            elif time.monotonic() - last_write > LOOK_FOR:
                self._looking = False
                # A write handed over before write() could see the flag is looked at now.
                self._looking = bool(held)


def _wake_later(saver_thread: _SaverThread) -> asyncio.TimerHandle | None:
    """Wake the saver thread in :data:`WAKE_AFTER` seconds, by the running asyncio loop; at once
    on another loop (trio), which has no timer to call."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        saver_thread.wake()
        return None
    return loop.call_later(WAKE_AFTER, saver_thread.wake)


def _look() -> None:
    """A wake-up: the writer thread looks at what it holds."""


def _store(saver: BaseCheckpointSaver, writes: list[tuple[_Writes, _Op]]) -> None:
    """Make the writes of the runs that have not failed, as one unit of the saver's work; if
    that fails, every run in it fails with the error (a transaction undoes all of it)."""
    pending = [(owner, op) for owner, op in writes if owner.error is None]
    try:
        with saver.batch():
            for _, (name, args) in pending:
                getattr(saver, name)(*args)
    except Exception as error:
        for owner, _ in pending:
            owner.error = error


_SAVER_THREADS: weakref.WeakKeyDictionary[BaseCheckpointSaver, _SaverThread] = (
    weakref.WeakKeyDictionary()
)
_saver_threads_lock = threading.Lock()


def _saver_thread(saver: BaseCheckpointSaver) -> _SaverThread:
    with _saver_threads_lock:
        found = _SAVER_THREADS.get(saver)
        if found is None or found.pid != os.getpid():
            found = _SAVER_THREADS[saver] = _SaverThread(saver)
        return found


class ThreadRun:
    """A run on a thread: :meth:`open` it around the run, :meth:`save` each checkpoint and
    :meth:`save_task` each finished or interrupted tool call.

    How a write reaches the saver depends on the saver. One whose methods never block
    (``in_place``, as ``InMemorySaver``) is called at once, whatever the durability: there is
    nothing to wait for. One that implements only the sync methods (SQLite, Redis) never runs
    on the event loop: its ``"async"`` writes go to its writer thread (:class:`_SaverThread`),
    the others (and its reads) through the same thread, all of a batch in one hop. A run
    starts without reading where the saver's write mark shows that only this process's last
    run on the thread wrote to it since (:func:`~rxagent._thread_state.leave`). One with async
    methods of its own is awaited, for ``"async"`` by a task of the run's.
    """

    def __init__(
        self,
        saver: BaseCheckpointSaver,
        thread_id: str,
        *,
        ns: str = "",
        checkpoint_id: str | None = None,
        durability: Durability = "async",
        run_id: str | None = None,
    ) -> None:
        if durability not in DURABILITIES:
            raise UsageError(f"durability is one of {DURABILITIES}, got {durability!r}")
        self.saver = saver
        self.thread_id = thread_id
        self.ns = ns
        self.start_id = checkpoint_id
        self.durability = durability
        # The checkpoints' metadata run_id: the caller's (a server's run), so that
        # delete_for_runs finds what the run wrote (the server's rollback).
        self.run_id = run_id or str(uuid.uuid4())
        self.head: Head | None = None
        self._saved_id: str | None = None  # the newest checkpoint written: the next one's parent
        self._unsaved: list[Write] = []  # the writes made since
        self._stored: tuple[str | None, list[Write]] | None = None  # its record's parent, writes
        self._mark: tuple[int, int] | None = None  # the saver's write mark as the run starts
        self._loaded_id: str | None = None  # the checkpoint it starts from
        self._ops = 0  # the writes handed to the saver since
        self._in_thread = type(saver).aput is BaseCheckpointSaver.aput  # sync methods only
        self._queue: list[_Op] | None = None  # the "async" writer's, while it runs
        self._handed: tuple[_SaverThread, _Writes] | None = None  # or the saver thread's
        self._wake: anyio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None  # to wake the saver thread
        self._write_error: Exception | None = None

    @asynccontextmanager
    async def open(self) -> AsyncIterator[ThreadRun]:
        """Hold the thread for the run: read where it starts, and write what is left at the end
        (and for ``"async"``, run the writer)."""
        busy = _BUSY.setdefault(self.saver, set())
        key = (self.thread_id, self.ns)
        if key in busy:
            raise ThreadBusyError(
                f"thread {self.thread_id!r} already has a run going; one thread holds one "
                "conversation, so wait for that run to end (or use another thread_id)"
            )
        busy.add(key)
        try:
            self._mark = self.saver._write_mark(self.thread_id)
            if self.start_id is None:  # where a run of this process left it, if nobody wrote since
                self.head = find_left(self.saver, self.thread_id, self.ns, self._mark)
            if self.head is None:
                read = _saver_thread(self.saver).call if self._in_thread else None
                self.head = await load_head(
                    self.saver, self.thread_id, self.ns, self.start_id, read=read
                )
            self._saved_id = self._loaded_id = self.head.checkpoint_id if self.head else None
            if self.durability == "async" and self._in_thread:
                async with self._on_saver_thread():
                    yield self
            elif self.durability == "async" and not self.saver.in_place:
                async with self._writer():
                    yield self
            else:
                try:
                    yield self
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._write_at_exit()
        finally:
            busy.discard(key)
            # The run's newest state, for the thread's next run in this process. (Only now:
            # the steps' states share the run's growing message list, so that no step copies
            # the conversation.)
            if self.head is not None and self._saved_id == self.head.checkpoint_id:
                remember(self.saver, self.head)
                self._leave(self.head)

    def _leave(self, head: Head) -> None:
        """Keep ``head`` for the thread's next run in this process, with the saver's write mark
        that shows every write of this run made and nothing else written: the next run checks
        it, so nothing needs to be asked now (nor waited for, after a cancellation)."""
        start = self._mark
        # Only a thread's newest checkpoint is kept: where the run started from it, and its
        # own checkpoints sort after it (a checkpoint id another process made in the same
        # millisecond may sort after this process's next one).
        if start is None or self.start_id is not None or (
            self._loaded_id is not None and head.checkpoint_id < self._loaded_id
        ):
            return
        if self._stored is not None:  # as its record says, which a read would give back
            parent_id, writes = self._stored
            head = replace(head, parent_id=parent_id, writes=writes)
        leave(self.saver, head, (start[0], start[1] + self._ops))

    async def save(self, head: Head) -> None:
        """``head`` is the run's newest checkpoint: write it as durability says."""
        self.head = head
        self._unsaved.extend(head.writes)
        if self.durability == "exit":
            return
        record = as_record(head, self._unsaved, self._saved_id)
        self._stored = (self._saved_id, self._unsaved)
        self._unsaved = []
        self._saved_id = head.checkpoint_id
        await self._write(("put", (record,)))

    async def save_task(self, task_id: str, writes: list[tuple[str, Any]]) -> None:
        """A task of the newest checkpoint's next step wrote ``writes``: keep them with it."""
        head = self.head
        assert head is not None
        head.pending[task_id] = writes
        if self.durability == "exit":
            return
        encoded = encode_task_writes(writes)
        await self._write(("put_writes", (
            head.thread_id, head.checkpoint_ns, head.checkpoint_id, task_id, encoded,
        )))

    async def _write(self, op: _Op) -> None:
        self._ops += 1
        if self._handed is not None:
            saver_thread, writes = self._handed
            if writes.error is not None:  # a write failed: the run fails with it
                raise writes.error
            saver_thread.write(writes, op)
            if self._timer is None:
                self._timer = _wake_later(saver_thread)
            return
        if self._queue is None:
            await self._apply([op])
            return
        if self._write_error is not None:  # the writer has stopped on a failed write
            raise self._write_error
        self._queue.append(op)
        if self._wake is not None:
            self._wake.set()

    async def _apply(self, ops: list[_Op]) -> None:
        """Make ``ops`` on the saver, in order, as the saver wants to be called."""
        saver = self.saver
        if saver.in_place:
            for name, args in ops:
                getattr(saver, name)(*args)
        elif self._in_thread:  # one hop to the saver's thread for all of them

            def apply() -> None:
                with saver.batch():
                    for name, args in ops:
                        getattr(saver, name)(*args)

            await _saver_thread(saver).call(apply)
        else:
            for name, args in ops:
                await getattr(saver, f"a{name}")(*args)

    @asynccontextmanager
    async def _on_saver_thread(self) -> AsyncIterator[None]:
        """Hand the ``"async"`` writes to the saver's thread, and wait for them at the end.
        Errors, the run's or a write's, are raised as they are."""
        saver_thread, writes = self._handed = (_saver_thread(self.saver), _Writes())
        loop = current_loop()
        assert loop is not None
        try:
            yield
        except Exception:
            # The run failed, but what it finished is still written: a failed run goes on
            # from there. (On cancellation, the writes handed over are made all the same.)
            await self._written(saver_thread, writes, loop)
            raise
        else:
            await self._written(saver_thread, writes, loop)
        finally:
            self._handed = None
            if self._timer is not None:  # cancelled before it waited: stored all the same
                self._timer.cancel()
                self._timer = None
                saver_thread.wake()
        if writes.error is not None:
            raise writes.error

    async def _written(self, saver_thread: _SaverThread, writes: _Writes, loop: Any) -> None:
        if self._timer is not None:  # asking for them wakes the thread
            self._timer.cancel()
            self._timer = None
        done = anyio.Event()
        saver_thread.then(writes, waker(loop, done.set))
        await done.wait()

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        """Run the ``"async"`` writer around the run: a task that takes what was queued since
        its last round, all at once. Errors, the run's or a write's, are raised as they are, not
        in an exception group."""
        self._queue = []
        closed = False

        async def drain() -> None:
            try:
                while True:
                    if self._queue:
                        ops, self._queue = self._queue, []
                        await self._apply(ops)
                    elif closed:
                        return
                    else:
                        self._wake = anyio.Event()
                        await self._wake.wait()
            except Exception as error:
                self._write_error = error

        failed: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(drain)
            try:
                yield
            except Exception as error:
                # The run failed, but what it finished stays written: a failed run goes on
                # from there. (On cancellation the writes still queued are dropped.)
                failed = error
            finally:
                closed = True
                if self._wake is not None:
                    self._wake.set()
        self._queue = None
        if failed is not None:
            raise failed
        if self._write_error is not None:
            raise self._write_error

    async def _write_at_exit(self) -> None:
        """``"exit"``: the run's checkpoints as one, with the newest one's pending writes."""
        head = self.head
        if self.durability != "exit" or head is None:
            return
        ops: list[_Op] = []
        if head.checkpoint_id != self._saved_id:
            ops.append(("put", (as_record(head, self._unsaved, self._saved_id),)))
            self._stored = (self._saved_id, self._unsaved)
            self._unsaved = []
            self._saved_id = head.checkpoint_id
        ops.extend(
            ("put_writes", (head.thread_id, head.checkpoint_ns, head.checkpoint_id, task_id,
                            encode_task_writes(writes)))
            for task_id, writes in head.pending.items()
        )
        self._ops += len(ops)
        await self._apply(ops)
