"""A run's event log: what every client of the run reads, from the start or from an id.

Each event gets the next integer id of its run (1, 2, 3...), so a client that resumes after
event N gets exactly N+1 onwards: no id repeats, and there is one store, so the switch from
stored to live events cannot skip or repeat one. Each client is a :class:`LogReader` with its
own cursor.

:class:`EventLog` is the interface; :class:`MemoryEventLog` keeps one process's runs. The log
for many processes (``_redis.RedisEventLog``, a Redis Stream) implements the same three calls:
``append``, ``aclose``, and a reader's ``read`` with a timeout; each process follows a run's
stream with one tail that feeds a :class:`MemoryEventLog` starting where the tail started.

Memory: a log that is not kept for resuming drops what all its readers have read, and its
writer waits while the slowest reader is ``max_lag`` events or ``max_lag_bytes`` bytes of frames
behind, so a slow HTTP client holds the run back instead of growing a buffer (by bytes too: a
token's frame is close to a kilobyte, and a thousand held streams each a thousand events behind
would be a gigabyte). A reader's bytes count as behind until it reads again, which its response
does once the write of the batch before has returned: so the frames a held stream keeps in this
process, in the log and in the write its response waits on together, stay under
``max_lag_bytes`` (plus one frame), instead of twice that. A kept log (``stream_resumable``)
holds every event until the registry forgets the run.

A log that can hold its producer back (``hold_while_waiting``: the server's run gives it the
run's demand, and writes each part's frames as the part comes, in the run's own task) does so
the moment a reader falls behind, instead of making the writer wait: what the run was making
is still written, and the run stops before its next part until the reader has caught up. How
far behind is too far depends on the reader: one still writing its last batch (a slow client)
holds the run at ``HELD_LAG_BYTES``; while every reader waits for events, the run makes a batch
first (``BATCH_LAG_BYTES``, or less when many runs are in flight). A log fed by a tail has no
producer to hold and waits before appending, as before.

What the writer and the readers wait on is made only when one of them waits, not one per event,
and is a :class:`~rxagent._loops.Wakeup` per waiting task rather than an ``anyio.Event``: an idle
``anyio.Event`` is most of a kilobyte on asyncio, and a held stream's reader waits all the time.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Protocol

from .._loops import Wakeup

__all__ = ["Entry", "EventLog", "Holdable", "LogReader", "MemoryEventLog", "ReadBatch"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One event: its id in the run, its name, and its frame without the id
    (``_sse.frame``)."""

    id: int
    event: str
    body: bytes


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """What a read found: the events after the reader's cursor (maybe none, when the wait timed
    out), and whether the log is closed and the reader has had everything."""

    entries: list[Entry]
    done: bool


class LogReader(ABC):
    """One client's position in a log."""

    @abstractmethod
    async def read(self, timeout: float) -> ReadBatch:
        """The events after the cursor, waiting up to ``timeout`` seconds for one to come."""

    @abstractmethod
    def close(self) -> None:
        """Stop reading (the writer no longer waits for this reader)."""


# The bytes a reader may be behind once the log can hold its producer back
# (MemoryEventLog.hold_while_waiting), in two cases.
#
# While a reader is writing its last batch (its client is slow: a write waits only when the
# connection's buffers are full), HELD_LAG_BYTES, none: the run stops at the part it is on,
# and a paused stream keeps that part's frames, the batch in its write and the connection's
# buffer (rxagent/server/_serve.py). The run goes on when the reader comes back for more, and
# batches up to the bound below while the reader waits for it. At 4 KiB a paused stream kept
# 2.4 KiB more of frames (tracemalloc, bench/_serve_memory.py); frames made ahead of a write
# that waits gain a slow client nothing, since the connection's buffers are full anyway.
#
# While every reader waits for the next event (it has written all it read: a fast client),
# the run makes a batch before its readers take it: a wake-up and a socket write per batch,
# not per few events. The write is most of a batch's cost (a loopback send does the receiving
# side's work too): at 4 KiB a batch is about five events, and the server's CPU per event was
# 21 us against 13.5 at 16 KiB (bench/_serve_memory.py --cpu). But a batch is memory each
# stream holds while it flows, and many held streams flow at once (into their sockets'
# buffers): at 1,000 held streams 16 KiB cost 23 KiB of RSS per stream more than 4 KiB. So
# the streams share BATCH_BUDGET_BYTES: each may batch up to BATCH_LAG_BYTES while up to 64
# flow, down to MIN_BATCH_BYTES from 512 on (at 200 held streams, 2 MiB gave 77 KiB per
# stream and 1 MiB 69 KiB, bench/serve.py). The floor trades the two: at 1,000 held streams,
# 4 KiB gave 49.5 KiB per stream, 2 KiB 47.1 and 1 KiB (about a token's frame, 830 bytes in
# messages-tuple mode) 46.4; at 1,000 streams flowing at once, the server's CPU per 100-token
# run was 2.88, 3.43 and 4.02 ms.
HELD_LAG_BYTES = 0
BATCH_LAG_BYTES = 16384
MIN_BATCH_BYTES = 2048
BATCH_BUDGET_BYTES = 1024 * 1024


class Holdable(Protocol):
    """What produces a log's events, and can be told to stop for a while (the run's
    :class:`~rxagent._demand.Demand`)."""

    def hold(self) -> None: ...

    def release(self) -> None: ...


class EventLog(ABC):
    """The events of one run, in order, with consecutive ids from 1."""

    @abstractmethod
    async def append(self, event: str, body: bytes) -> int:
        """Add an event named ``event``; its id. May wait while the readers are too far
        behind."""

    def hold_while_waiting(self, producer: Holdable) -> bool:
        """Hold ``producer`` back while a reader is too far behind, instead of waiting in
        :meth:`append`: what it had made is still written, so that a paused stream keeps
        frames here rather than the larger parts they come from upstream as well. Whether
        the log does: then :meth:`append_now` adds events (a log that cannot returns False,
        and its writer waits in :meth:`append`)."""
        return False

    def append_now(self, event: str, body: bytes) -> int:
        """:meth:`append` without waiting, for the writer of a log that holds its producer
        back (:meth:`hold_while_waiting`)."""
        raise NotImplementedError("this log waits for room: use append()")

    @abstractmethod
    async def aclose(self) -> None:
        """The run is over: readers end once they have read everything."""

    @abstractmethod
    def reader(self, after: int | None) -> LogReader:
        """A reader of the events after id ``after``; ``0`` (or ``-1``) reads from the first,
        ``None`` from the next event to come (live only)."""


class MemoryEventLog(EventLog):
    """An event log in this process's memory.

    Args:
        keep: keep every event (for joins with ``Last-Event-ID``); otherwise drop what every
            reader has read.
        max_lag: the writer waits while a reader is this many events behind.
        max_lag_bytes: ... or this many bytes of frames behind.
        start: the id before the first event (a log that follows a run from its middle).
    """

    def __init__(
        self, *, keep: bool, max_lag: int = 1024, max_lag_bytes: int = 16384, start: int = 0
    ) -> None:
        self.keep = keep
        self.max_lag = max_lag
        self.max_lag_bytes = max_lag_bytes
        self._entries: list[Entry] = []
        self._bytes = 0  # the bytes of every frame appended so far
        self._first = start + 1  # the id of _entries[0]
        self._last = start
        self._closed = False
        # A list: most logs have one reader, and one in a set costs four times as much, on
        # every open stream.
        self._readers: list[_MemoryReader] = []
        self._changed: list[Wakeup] = []  # the readers waiting for the next append
        self._room: Wakeup | None = None  # set when a reader moves, if the writer waits
        self._producer: Holdable | None = None  # held back while a reader is behind
        self._holding = False
        self._batch_lag_bytes = max_lag_bytes  # the most while no reader is writing
        self._min_batch_bytes = 0  # ... at the least, however many runs share the budget
        self._writing = 0  # the readers that took a batch and have not read again since
        self._ahead = start  # the furthest a reader started past the events appended then

    @property
    def last_id(self) -> int:
        return self._last

    @property
    def closed(self) -> bool:
        return self._closed

    async def append(self, event: str, body: bytes) -> int:
        return await self.append_at(self._last + 1, event, body)

    # How many logs of this process hold their producers back and are not closed: the runs
    # in flight, among which BATCH_BUDGET_BYTES is shared. A count, not a set of the logs: a
    # weak set's entry cost every open stream half a kilobyte (bench/_serve_memory.py). The
    # server closes every run's log; one it did not would only make the others' batches
    # smaller.
    _in_flight: ClassVar[int] = 0

    def hold_while_waiting(
        self, producer: Holdable, *, max_lag_bytes: int = HELD_LAG_BYTES,
        batch_lag_bytes: int = BATCH_LAG_BYTES, min_batch_bytes: int = MIN_BATCH_BYTES,
    ) -> bool:
        """See :meth:`EventLog.hold_while_waiting`. The bytes a reader may be behind become
        ``max_lag_bytes`` while a reader is writing its last batch (a slow client; 0: none,
        the run stops at the part it is on), and while every reader waits for events,
        ``batch_lag_bytes`` or this log's share of ``BATCH_BUDGET_BYTES`` (but not under
        ``min_batch_bytes``), whichever is less."""
        if self._producer is None and not self._closed:
            MemoryEventLog._in_flight += 1
        self._producer = producer
        self.max_lag_bytes = max_lag_bytes
        self._batch_lag_bytes = batch_lag_bytes
        self._min_batch_bytes = min_batch_bytes
        return True

    def append_now(self, event: str, body: bytes) -> int:
        if self._producer is None:
            raise RuntimeError("append_now() is for a log that holds its producer back")
        return self._add(self._last + 1, event, body)

    async def append_at(self, event_id: int, event: str, body: bytes) -> int:
        """Add an event with the id it has elsewhere (a tail of a Redis Stream, whose oldest
        events may have been trimmed: ids may jump, never go back)."""
        if self._producer is None and self._readers and self._behind():
            await self._wait_for_room()
        return self._add(event_id, event, body)

    def _add(self, event_id: int, event: str, body: bytes) -> int:
        producer = self._producer
        if event_id <= self._last:
            raise ValueError(f"event {event_id} comes after {self._last}")
        if not self._entries:
            self._first = event_id
        self._last = event_id
        self._bytes += len(body)
        if event_id <= self._ahead:
            # A reader that started past this event (a tail's client that read it elsewhere)
            # does not need it: it is not behind by it.
            for reader in self._readers:
                if reader.cursor >= event_id:
                    reader.position += len(body)
        if self.keep or self._readers:
            self._entries.append(Entry(self._last, event, body))
            self._wake()
        else:  # nobody reads it, and nobody will: a later reader starts live
            self._entries.clear()
            self._first = self._last + 1
        if producer is not None and not self._holding and self._readers and self._behind():
            # The run stops at the part it is on, until the reader has caught up (_moved).
            # The writer does not wait: it writes what was made already, as frames (smaller
            # than the parts they come from, and read in the same batch), then waits where
            # it waits anyway, for the producer's next part.
            self._holding = True
            producer.hold()
        return self._last

    def full(self) -> bool:
        """Whether :meth:`append_at` would wait now for a reader to move (a log with no
        producer to hold back, fed by a Redis tail)."""
        return self._producer is None and bool(self._readers) and self._behind()

    def close(self) -> None:
        """:meth:`aclose` without waiting (nothing to wait for in memory)."""
        if self._producer is not None and not self._closed:
            MemoryEventLog._in_flight -= 1
        self._closed = True
        self._wake()

    async def aclose(self) -> None:
        self.close()

    def holds_after(self, cursor: int) -> bool:
        """Whether a reader at ``cursor`` would miss nothing here: every event after it is
        still held, or is still to come."""
        return cursor >= self._last or self._first <= cursor + 1

    def reader(self, after: int | None) -> LogReader:
        start = self._last if after is None else max(after, 0)
        self._ahead = max(self._ahead, start)
        # Its byte position: everything held after ``start`` is still to read.
        position = self._bytes - sum(len(entry.body) for entry in self._after(start))
        reader = _MemoryReader(self, start, position)
        self._readers.append(reader)
        return reader

    def _behind(self) -> bool:
        """Whether the slowest reader is too far behind for the writer to go on."""
        bound = self.max_lag_bytes
        if not self._writing and self._producer is not None:
            share = BATCH_BUDGET_BYTES // max(MemoryEventLog._in_flight, 1)
            bound = min(self._batch_lag_bytes, max(share, self._min_batch_bytes))
        return (self._last - self._slowest() >= self.max_lag
                or self._bytes - self._slowest_bytes() >= bound)

    async def _wait_for_room(self) -> None:
        while self._readers and self._behind():
            if self._room is None:
                self._room = Wakeup()
            await self._room.wait()

    # -- for the readers ---------------------------------------------------------------------

    def _wake(self) -> None:
        if self._changed:
            waiting, self._changed = self._changed, []
            for wakeup in waiting:
                wakeup.set()

    def _change(self) -> Wakeup:
        """A wake-up the next append (or the log's end) sets."""
        wakeup = Wakeup()
        self._changed.append(wakeup)
        return wakeup

    def _slowest(self) -> int:
        return min(reader.cursor for reader in self._readers)

    def _slowest_bytes(self) -> int:
        return min(reader.position for reader in self._readers)

    def _after(self, cursor: int) -> list[Entry]:
        # By search, not by offset: a log fed by a tail may have a jump in its ids.
        return self._entries[bisect.bisect_right(self._entries, cursor, key=_entry_id):]

    def _moved(self) -> None:
        """A reader read or left: let the writer on, and drop what nobody needs."""
        if self._room is not None:
            self._room.set()
            self._room = None
        if self._holding and not (self._readers and self._behind()):
            self._holding = False
            assert self._producer is not None
            self._producer.release()
        if self.keep:
            return
        upto = self._slowest() if self._readers else self._last
        drop = bisect.bisect_right(self._entries, upto, key=_entry_id)
        if drop > 0:
            del self._entries[:drop]
            self._first = self._entries[0].id if self._entries else self._last + 1


def _entry_id(entry: Entry) -> int:
    return entry.id


class _MemoryReader(LogReader):
    def __init__(self, log: MemoryEventLog, cursor: int, position: int) -> None:
        self.log = log
        self.cursor = cursor
        self.position = position  # the bytes of frames up to the cursor, less the last batch's
        self._unsent = 0  # the last batch's bytes: being written until the next read

    async def read(self, timeout: float) -> ReadBatch:
        log = self.log
        if self._unsent:  # the batch read last time has been written
            self.position += self._unsent
            self._unsent = 0
            log._writing -= 1
            log._moved()
        if self.cursor >= log.last_id and not log.closed:
            changed = log._change()
            try:
                await changed.wait_at_most(timeout)
            finally:
                if not changed.is_set():  # timed out or cancelled: not woken, not kept
                    log._changed.remove(changed)
        entries = log._after(self.cursor)
        if entries:
            self.cursor = entries[-1].id
            self._unsent = sum(len(entry.body) for entry in entries)
            log._writing += 1
            log._moved()
        return ReadBatch(entries, log.closed and self.cursor >= log.last_id)

    def close(self) -> None:
        log = self.log
        if self in log._readers:
            log._readers.remove(self)
            if self._unsent:
                log._writing -= 1
            log._moved()
