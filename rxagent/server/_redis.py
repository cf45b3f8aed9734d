"""Many processes on Redis: runs' events in Redis Streams, run and thread records in hashes,
cancelling over pub/sub, and a lock per thread with a lease.

Any process serves any request: a run executes in the process that created it (a background
run: in whichever worker takes it from the queue), and any process streams it, joins it,
cancels it or waits for it; should that process die, another worker continues the run from its
last checkpoint once its lease has run out. Layout, every key under a prefix
(``rxagent:server:`` by default)::

    {p}run:{r}            hash: record (JSON: ids, metadata, stream options), status,
                          updated_at, lease (ms since the epoch until which the process running
                          it vouches for it), outcome (JSON, once ended), cancel ("1" once asked)
    {p}events:{r}         stream: event N is the entry N-0 (the run's own counter, so that a
                          client's Last-Event-ID: N reads from N-0 on), fields e (name) and
                          b (frame); the entry {last}-1 closes it
    {p}thread-runs:{t}    sorted set: the thread's run ids by creation time
    {p}thread-lock:{t}    string: the id of the run that has the thread, with a lease (PX)
    {p}thread:{t}         hash: created_at, updated_at, metadata (JSON), status
    {p}threads            sorted set: thread ids by creation time
    {p}cancel             pub/sub channel: ids of runs to cancel
    {p}worker:{name}      string, with the lease as its time to live: a process taking runs
                          from the queue, while it lives
    {p}queue              stream: background runs, one entry per run ({run: id}), taken by
                          the consumer group "workers"
    {p}held               stream: runs streamed or awaited by the request that made them, one
                          entry per run, in the pending list of their creator (in the group
                          "workers") from the start: nobody else takes them while it lives,
                          and any worker claims them once it stops renewing them
    {p}readers:{r}        hash: each live tail of the run (any process's) and how far it has
                          read, "{id}:{ms}" (renewed every third of the lease); the run's
                          writer waits while the slowest is max_events behind; "left:{id}":
                          where a client that left mid-run was, kept (not renewed) for its
                          join, which takes it over

Each process follows a run's stream with one tail (a blocking XREAD) shared by all its clients
of that run: the tail feeds a :class:`~rxagent.server._events.MemoryEventLog` that starts where
it started, and each client first reads what came before from the stream itself (XRANGE), then
goes over to the tail. The tail stops when its last client leaves. While a run lives, the
process running it renews its lease, its keys' time to live and its thread's lock every third of
the lease; a run whose lease has run out (its process died) reads as ``pending`` until another
worker claims it from the queue or the held stream (as ``error``, ``RunLost``, if it was kept
out of them: ``move_streamed=False``).

Costs: one round trip per batch of events written (pipelined XADDs, with a read of the run's
readers), and a client that joins late reads the stream from Redis in pages. The writer waits
while the slowest live tail of the run, in any process, is ``max_events`` behind (each tail
waits in turn for its slowest client), so that trimming the stream to ``max_events`` never
takes away what a live client has not read; a tail reports how far it has read with one HSET
per batch it reads.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import anyio

from .._agent import Agent
from .._exceptions import UsageError
from .._interrupts import Command
from ._events import Entry, EventLog, LogReader, MemoryEventLog, ReadBatch
from ._runs import LocalRunner, Run, RunRequest, RunStatus, ThreadBusy
from ._sse import dumps, frame
from ._threads import ThreadRecord, ThreadStatus, ThreadStore, now

try:
    import redis.asyncio as aredis
    from redis.exceptions import RedisError
except ImportError as error:
    raise UsageError(
        "serving on Redis needs the redis package, an optional dependency of rxagent: "
        "pip install 'rxagent[server,redis]'"
    ) from error

__all__ = ["Keys", "RedisEventLog", "RedisRunRegistry", "RedisThreadStore", "Tails", "aredis"]

logger = logging.getLogger("rxagent.server")

Spawn = Callable[[Callable[[], Any]], None]

_END = 1  # the sequence part of the entry that closes a run's stream (events are N-0)
_PAGE = 256  # entries per XRANGE or XREAD round trip
_BLOCK_MS = 1000  # a tail's XREAD waits this long before it checks that the run still lives
_READERS_POLL = 0.05  # seconds between a held-back writer's reads of how far readers are
# Runs a worker takes from the queue that wait for their turn on a busy thread, per job slot:
# they hold no slot, but each polls its thread's lock; beyond this the rest stay in the queue.
_WAITING_PER_JOB = 10
_ACTIVE = ("pending", "running")
# _ANY: redis-py types each reply as "awaitable or not" (one annotation for the sync and async
# clients), and its mappings narrowly; the clients here are kept as ``Any`` and the replies
# read as what the asyncio client returns with ``decode_responses`` off (bytes).

# Renew or release a lock only while it is the holder's: a lease that ran out may have been
# taken by another run since.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2])
else return 0 end
"""
# Take a thread's lock for a run, or keep it if the run has it already (a background run whose
# creator took it, with ``reject``, for the worker that runs it).
_TAKE = """
local holder = redis.call('get', KEYS[1])
if holder == false then return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 end
if holder == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
# A streamed or awaited run, made here and run here at once: its entry (KEYS[1]: the held
# stream) goes straight into this process's pending list (ARGV[1]: the group, ARGV[2]: this
# consumer), as if this process had taken it from a queue. Only this script adds to the held
# stream, so the entry it reads is the one it added. ARGV[3]: the run id. The entry's id.
_HOLD = """
pcall(redis.call, 'xgroup', 'create', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local id = redis.call('xadd', KEYS[1], '*', 'run', ARGV[3])
redis.call('xreadgroup', 'GROUP', ARGV[1], ARGV[2], 'STREAMS', KEYS[1], '>')
return id
"""
# A reader's first report (KEYS[1]: the run's readers; ARGV: its id, its position, now in ms,
# the hash's time to live, the oldest stamp still counted). A reader that starts at N takes over
# the place kept for a client that left at N or after (the nearest such: a client that rejoins
# with Last-Event-ID N had been handed events up to there, some maybe lost in transit).
_REJOIN = """
redis.call('hset', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
redis.call('pexpire', KEYS[1], ARGV[4])
local fields = redis.call('hgetall', KEYS[1])
local best, best_at = false, nil
for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 5) == 'left:' then
        local at, stamp = string.match(fields[i + 1], '^(%d+):(%d+)$')
        at, stamp = tonumber(at), tonumber(stamp)
        if at >= tonumber(ARGV[2]) and stamp >= tonumber(ARGV[5])
                and (best_at == nil or at < best_at) then
            best, best_at = fields[i], at
        end
    end
end
if best then redis.call('hdel', KEYS[1], best) end
return best
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1])
else return 0 end
"""
# A worker takes a queued run (KEYS[1], its hash) if it is still to run: names itself in it and
# counts the attempt (returned); 0 if it has ended (cancelled while queued, say) or is forgotten.
_TAKE_QUEUED = """
local status = redis.call('hget', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' then return 0 end
redis.call('hset', KEYS[1], 'worker', ARGV[1])
return redis.call('hincrby', KEYS[1], 'attempt', 1)
"""
# Cancel a background run that no worker has taken yet: it ends here, ``interrupted``, its
# stream closed (KEYS[2], after its last event) and its thread's lock (KEYS[3]) let go if it
# held it. 0 if a worker has it (then the worker cancels it) or it is not a queued pending run.
# ARGV: updated_at, outcome, retention (ms), run id.
_CANCEL_QUEUED = """
if redis.call('hget', KEYS[1], 'status') ~= 'pending'
    or redis.call('hexists', KEYS[1], 'queued') == 0
    or redis.call('hexists', KEYS[1], 'worker') == 1 then return 0 end
redis.call('hset', KEYS[1], 'status', 'interrupted', 'updated_at', ARGV[1], 'outcome', ARGV[2])
redis.call('pexpire', KEYS[1], ARGV[3])
local top = redis.call('xrevrange', KEYS[2], '+', '-', 'COUNT', 1)
if #top > 0 then
    redis.call('xadd', KEYS[2], string.match(top[1][1], '^(%d+)-') .. '-1', 'end', '1')
    redis.call('pexpire', KEYS[2], ARGV[3])
end
if redis.call('get', KEYS[3]) == ARGV[4] then redis.call('del', KEYS[3]) end
return 1
"""


def _ms() -> int:
    return int(time.time() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_id(value: bytes | str) -> tuple[int, int]:
    number, _, sequence = _text(value).partition("-")
    return int(number), int(sequence or 0)


class Keys:
    """The key names, under ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.threads = f"{prefix}threads"
        self.cancel = f"{prefix}cancel"
        self.queue = f"{prefix}queue"
        self.held = f"{prefix}held"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def events(self, run_id: str) -> str:
        return f"{self.prefix}events:{run_id}"

    def thread(self, thread_id: str) -> str:
        return f"{self.prefix}thread:{thread_id}"

    def thread_runs(self, thread_id: str) -> str:
        return f"{self.prefix}thread-runs:{thread_id}"

    def thread_lock(self, thread_id: str) -> str:
        return f"{self.prefix}thread-lock:{thread_id}"

    def worker(self, consumer: str) -> str:
        return f"{self.prefix}worker:{consumer}"

    def readers(self, run_id: str) -> str:
        return f"{self.prefix}readers:{run_id}"


# -- events -----------------------------------------------------------------------------------


_GROUP = "workers"  # the queue's consumer group


class RedisEventLog(EventLog):
    """The writing end of a run's stream, in the process that runs it.

    Events are written in batches: ``append`` queues an event and returns; a task of the
    log's writes all that is queued in one pipelined round trip, then what was queued
    meanwhile, and so on. ``append`` waits while ``max_pending`` events are queued (a Redis
    slower than the run holds the run back), and raises the error a write met.

    Args:
        redis: the client.
        keys: the key names.
        tails: this process's tails, for :meth:`reader`.
        run_id: the run.
        spawn: starts the writing task.
        max_events: the stream is trimmed (approximately) to this many entries, and
            ``append`` waits while the slowest live reader (a tail, in any process) is this
            many events behind.
        retention: seconds the stream is kept once closed.
        max_pending: ``append`` waits while this many events are not yet written.
        lease: a reader that has not said how far it is for this long is not waited for
            (its process died).
    """

    def __init__(
        self, redis: aredis.Redis, keys: Keys, tails: Tails, run_id: str, spawn: Spawn, *,
        max_events: int, retention: float, max_pending: int = 1024, lease: float = 10.0,
    ) -> None:
        self._redis: Any = redis  # see _ANY
        self._key = keys.events(run_id)
        self._readers_key = keys.readers(run_id)
        self._lease_ms = int(lease * 1000)
        self._slowest: int | None = None  # how far the slowest live reader is, last we read
        self._expected_until = 0  # until then (ms), a reader yet to report counts, at 0
        self.waiting_for_readers = False  # append() is held back by a slow reader now
        self._tails = tails
        self._run_id = run_id
        self._spawn = spawn
        self._max_events = max_events
        self._retention_ms = int(retention * 1000)
        self._max_pending = max_pending
        self._last = 0
        self._pending: list[tuple[int, str, bytes]] = []
        self._writing = False  # a writing task runs; always so while events are pending
        self._written = anyio.Event()  # set when the writing task ends
        self._room = anyio.Event()  # set when the writing task takes a batch
        self._error: Exception | None = None

    async def append(self, event: str, body: bytes) -> int:
        while len(self._pending) >= self._max_pending and self._error is None:
            await self._room.wait()
        while (self._slowest is not None and self._last - self._slowest >= self._max_events
               and self._error is None):
            # Trimming would take away what that reader has not read: wait for it instead.
            self.waiting_for_readers = True
            await anyio.sleep(_READERS_POLL)
            self._note_readers(await self._redis.hgetall(self._readers_key))
        self.waiting_for_readers = False
        if self._error is not None:
            raise self._error
        self._last += 1
        self._pending.append((self._last, event, body))
        if not self._writing:
            self._writing = True
            self._written = anyio.Event()
            self._spawn(self._write)
        return self._last

    async def _write(self) -> None:
        try:
            while self._pending and self._error is None:
                batch, self._pending = self._pending, []
                self._room.set()
                self._room = anyio.Event()
                async with self._redis.pipeline(transaction=False) as pipe:
                    for event_id, event, body in batch:
                        pipe.xadd(self._key, {"e": event, "b": body}, id=f"{event_id}-0",
                                  maxlen=self._max_events, approximate=True)
                    pipe.hgetall(self._readers_key)  # in the same round trip
                    replies = await pipe.execute()
                self._note_readers(replies[-1])
        except Exception as error:  # the run's next append raises it
            logger.exception("run %s: its events could not be written", self._run_id)
            self._error = error
        finally:
            self._pending.clear()
            self._writing = False
            self._room.set()
            self._written.set()

    def expect_reader(self) -> None:
        """A reader made with the run (its request's) reports only at its first read: until
        then (at most a lease) it counts as a reader at the start, or the run, on a slow
        machine, could go ``max_events`` past it and have what it has not read trimmed."""
        self._expected_until = _ms() + self._lease_ms
        self._slowest = 0

    def _note_readers(self, fields: Mapping[bytes, bytes]) -> None:
        now = _ms()
        horizon = now - self._lease_ms
        positions = []
        for value in fields.values():
            position, _, stamp = _text(value).partition(":")
            if int(stamp or 0) >= horizon:
                positions.append(int(position))
        if positions:
            self._expected_until = 0
        elif now < self._expected_until:
            positions.append(0)
        self._slowest = min(positions) if positions else None

    async def flush(self) -> None:
        """Wait until every event appended so far is written (or failed to be)."""
        while self._writing:
            await self._written.wait()

    def resume_after(self, last: int) -> None:
        """Write on after event ``last`` (a run going on in a new attempt)."""
        self._last = last

    async def aclose(self) -> None:
        await self.flush()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self._key, {"end": "1"}, id=f"{self._last}-{_END}")
            pipe.pexpire(self._key, self._retention_ms)
            await pipe.execute()

    def reader(self, after: int | None) -> LogReader:
        return self._tails.reader(self._run_id, after)


class Tails:
    """This process's tails of runs' streams, one per run that clients here follow.

    Args:
        redis: the client.
        keys: the key names.
        spawn: starts a task in the app's task group (a tail's XREAD loop).
    """

    def __init__(
        self, redis: aredis.Redis, keys: Keys, spawn: Spawn, *, name: str = "tails",
        lease: float = 10.0,
    ) -> None:
        self._redis: Any = redis  # see _ANY
        self._keys = keys
        self._spawn = spawn
        self._tails: dict[str, _Tail] = {}
        self._name = name  # tails report how far they are under "{name}:{n}"
        self._made = 0
        self._lease_ms = int(lease * 1000)

        # Clients still reading the stream in pages (before they go over to a tail), by their
        # reader id: they report how far they are themselves.
        self.paging: dict[str, _RedisReader] = {}
        self._rejoin = self._redis.register_script(_REJOIN)

    def __iter__(self) -> Iterator[_Tail]:
        return iter(list(self._tails.values()))

    def new_reader_id(self) -> str:
        self._made += 1
        return f"{self._name}:{self._made}"

    async def report(self, run_id: str, reader_id: str, position: int) -> None:
        """Say how far a reader of the run has read, for its writer (wherever it runs)."""
        key = self._keys.readers(run_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, reader_id, f"{position}:{_ms()}")
            pipe.pexpire(key, 3 * self._lease_ms)
            await pipe.execute()

    async def rejoin(self, run_id: str, reader_id: str, position: int) -> None:
        """:meth:`report` for a reader's first time, taking over the place kept for the client
        it may be (:meth:`keep_place`)."""
        await self._rejoin(keys=[self._keys.readers(run_id)],
                           args=[reader_id, position, _ms(), 3 * self._lease_ms,
                                 _ms() - self._lease_ms])

    async def keep_place(self, run_id: str, reader_id: str, position: int) -> None:
        """A client left before the run's end: its place stays, under ``left:{id}``, so that
        the run does not trim what it has not read before it rejoins. Not renewed: the writer
        stops waiting for it a lease after it left, as for a reader whose process died."""
        key = self._keys.readers(run_id)
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hset(key, f"left:{reader_id}", f"{position}:{_ms()}")
                    pipe.hdel(key, reader_id)
                    pipe.pexpire(key, 3 * self._lease_ms)
                    await pipe.execute()
        except RedisError:  # then it is no reader between connections, as before
            logger.exception("a reader of run %s could not keep its place", run_id)

    async def leave(self, run_id: str, reader_id: str) -> None:
        """The reader is gone: the run's writer no longer waits for it."""
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._redis.hdel(self._keys.readers(run_id), reader_id)
        except RedisError:  # then it goes stale after the lease
            logger.exception("a reader of run %s could not leave", run_id)

    def __len__(self) -> int:
        return len(self._tails)

    def spawn(self, work: Callable[[], Any]) -> None:
        self._spawn(work)

    def attached(self, run_id: str) -> int:
        """How many clients here read the run from its tail."""
        tail = self._tails.get(run_id)
        return 0 if tail is None else tail.users

    def reader(self, run_id: str, after: int | None) -> LogReader:
        """A reader of the run's events after ``after`` (``None``: live only)."""
        return _RedisReader(self, run_id, after)

    async def page(self, run_id: str, cursor: int) -> tuple[list[Entry], bool]:
        """Up to a page of the events after ``cursor``, read from the stream; and whether
        the stream's end came in the page."""
        found = await self._redis.xrange(self._keys.events(run_id), min=f"({cursor}-0",
                                         max="+", count=_PAGE)
        entries: list[Entry] = []
        for entry_id, fields in found:
            number, sequence = _entry_id(entry_id)
            if sequence == _END:
                return entries, True
            entries.append(Entry(number, _text(fields[b"e"]), fields[b"b"]))
        return entries, False

    async def attach(self, run_id: str) -> _Tail:
        """The run's tail, made (and started) if no client here follows the run yet."""
        tail = self._tails.get(run_id)
        if tail is None:
            top = await self._redis.xrevrange(self._keys.events(run_id), count=1)
            start, sequence = _entry_id(top[0][0]) if top else (0, 0)
            tail = self._tails.get(run_id)  # another client may have made it meanwhile
            if tail is None:
                tail = _Tail(self, run_id, start, closed=sequence == _END,
                             reader_id=self.new_reader_id())
                self._tails[run_id] = tail
                if not tail.log.closed:
                    self._spawn(tail.follow)
        tail.users += 1
        return tail

    def detach(self, tail: _Tail) -> None:
        tail.users -= 1
        if tail.users == 0:
            tail.stop()
            if self._tails.get(tail.run_id) is tail:
                del self._tails[tail.run_id]


class _Tail:
    """One blocking XREAD loop on a run's stream, feeding a log that this process's clients of
    the run read; it waits while its slowest client is far behind (the log's ``max_lag``), and
    says how far it has read (the run's writer waits for it in turn)."""

    def __init__(
        self, tails: Tails, run_id: str, start: int, *, closed: bool, reader_id: str
    ) -> None:
        self._tails = tails
        self._redis: Any = tails._redis  # see _ANY
        self._keys = tails._keys
        self.run_id = run_id
        self.reader_id = reader_id
        self.users = 0
        self.log = MemoryEventLog(keep=False, start=start)
        if closed:
            self.log.close()
        self._scope = anyio.CancelScope()

    def stop(self) -> None:
        self._scope.cancel()

    async def follow(self) -> None:
        with self._scope:
            try:
                await self._tails.report(self.run_id, self.reader_id, self.log.last_id)
                await self._follow()
            except Exception:  # Redis went away: the clients' streams end, and they ask again
                logger.exception("the tail of run %s failed", self.run_id)
            finally:
                self.log.close()
        await self._tails.leave(self.run_id, self.reader_id)

    async def _follow(self) -> None:
        key = self._keys.events(self.run_id)
        last = f"{self.log.last_id}-0"
        while True:
            reply = await self._redis.xread({key: last}, count=_PAGE, block=_BLOCK_MS)
            if not reply:
                if await self._lives():
                    continue
                # Ended without closing its stream (its process died), or forgotten: take
                # what the stream has, then end.
                reply = [[key, await self._redis.xrange(key, min=f"({last}", max="+")]]
            for entry_id, fields in reply[0][1]:
                number, sequence = _entry_id(entry_id)
                if sequence == _END:
                    return
                if self.log.full():
                    # It is about to wait for its slowest client: it says how far it has read
                    # first, or the run's writer would wait for where the page began.
                    await self._tails.report(self.run_id, self.reader_id, self.log.last_id)
                await self.log.append_at(number, _text(fields[b"e"]), fields[b"b"])
                last = _text(entry_id)
            if not reply[0][1] and not await self._lives():
                return
            if reply[0][1]:
                await self._tails.report(self.run_id, self.reader_id, self.log.last_id)

    async def _lives(self) -> bool:
        status, lease, queued = await self._redis.hmget(self._keys.run(self.run_id),
                                                        ["status", "lease", "queued"])
        # A queued run whose worker died lives on: another worker will take it.
        return (status is not None and _text(status) in _ACTIVE
                and (int(lease or 0) >= _ms() or queued is not None))


class _RedisReader(LogReader):
    """A client's reader: from the stream in pages until it has caught up, then from the
    process's tail of the run. A client that leaves before the run's end keeps its place for a
    lease (:meth:`Tails.keep_place`), for the join it may come back with."""

    def __init__(self, tails: Tails, run_id: str, after: int | None) -> None:
        self._tails = tails
        self._run_id = run_id
        self._cursor = None if after is None else max(after, 0)
        self._tail: _Tail | None = None
        self._local: LogReader | None = None
        self._closed = False
        self._done = False  # it has read the run's end
        self.reader_id = tails.new_reader_id()
        self.reported = False  # how far it is, while it reads in pages

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def cursor(self) -> int:
        return self._cursor or 0

    async def _report(self) -> None:
        # While it reads the stream in pages, the run's writer waits for it too: trimming the
        # stream would take what it has not read yet.
        self._tails.paging[self.reader_id] = self
        first = not self.reported
        self.reported = True
        if first:
            await self._tails.rejoin(self._run_id, self.reader_id, self.cursor)
        else:
            await self._tails.report(self._run_id, self.reader_id, self.cursor)

    async def _unreport(self) -> None:
        if self.reported:
            self.reported = False
            self._tails.paging.pop(self.reader_id, None)
            await self._tails.leave(self._run_id, self.reader_id)

    async def read(self, timeout: float) -> ReadBatch:
        batch = await self._read(timeout)
        if batch.entries:
            self._cursor = batch.entries[-1].id
        self._done = batch.done
        return batch

    async def _read(self, timeout: float) -> ReadBatch:
        while self._local is None:
            if self._cursor is not None:
                if not self.reported:  # the writer knows of it from its first read
                    await self._report()
                entries, done = await self._tails.page(self._run_id, self._cursor)
                if entries or done:
                    if entries:
                        self._cursor = entries[-1].id
                        await self._report()
                    return ReadBatch(entries, done)
            tail = await self._tails.attach(self._run_id)
            cursor = tail.log.last_id if self._cursor is None else self._cursor
            if self._closed:
                self._tails.detach(tail)
                return ReadBatch([], True)
            if not tail.log.holds_after(cursor):
                # The tail has gone past events this client has not read: read them from the
                # stream first.
                self._tails.detach(tail)
                continue
            self._tail = tail
            self._cursor = cursor
            self._local = tail.log.reader(cursor)
            await self._unreport()  # the tail it reads from says how far it is now
        return await self._local.read(timeout)

    def close(self) -> None:
        self._closed = True
        if self._local is not None:
            self._local.close()
        if not self._done and self._cursor is not None:
            # Left before the run's end: its place is kept before its tail may stop (and
            # take the tail's place away).
            self._tails.spawn(self._leave_keeping_place)
            return
        self._detach()
        if self.reported:
            self._tails.spawn(self._unreport)

    def _detach(self) -> None:
        if self._tail is not None:
            self._tails.detach(self._tail)
            self._tail = None

    async def _leave_keeping_place(self) -> None:
        # Out of the renewals first: they would write its live entry again after this.
        self._tails.paging.pop(self.reader_id, None)
        self.reported = False
        try:
            await self._tails.keep_place(self._run_id, self.reader_id, self.cursor)
        finally:
            self._detach()


# -- runs -------------------------------------------------------------------------------------


def _request_json(request: RunRequest) -> str:
    """What a worker needs to run a queued run (the agent is the worker's, by graph id)."""
    run_input: Any = request.input
    if isinstance(run_input, Command):
        run_input = {"__command__": {"resume": run_input.resume, "update": run_input.update}}
    return json.dumps({
        "input": run_input, "config": request.config, "durability": request.durability,
        "temporary": request.temporary, "context": request.context,
    })


def _request_from(record: Mapping[str, Any], queued: Mapping[str, Any], agent: Agent,
                  *, resume: bool) -> RunRequest:
    """A queued run's request; ``resume``: going on from the thread's last checkpoint."""
    run_input = queued["input"]
    if isinstance(run_input, dict) and "__command__" in run_input:
        run_input = Command(**run_input["__command__"])
    return RunRequest(record["graph_id"], record["assistant_id"], agent,
                      None if resume else run_input, queued["config"], record["modes"],
                      record["subgraphs"], record["resumable"], queued["durability"],
                      queued["temporary"], queued.get("context"))


def _record(run: Run) -> str:
    request = run.request
    return json.dumps({
        "run_id": run.run_id, "thread_id": run.thread_id, "graph_id": request.graph_id,
        "assistant_id": request.assistant_id, "created_at": run.created_at,
        "metadata": run.metadata, "multitask_strategy": run.multitask_strategy,
        "modes": request.modes, "subgraphs": request.subgraphs,
        "resumable": request.resumable,
    })


def _run_from(fields: Mapping[bytes, bytes]) -> Run:
    """A run executing elsewhere (or ended), from its hash."""
    record = json.loads(fields[b"record"])
    request = RunRequest(record["graph_id"], record["assistant_id"], None, None, {},
                         record["modes"], record["subgraphs"], record["resumable"])
    run = Run(record["run_id"], record["thread_id"], request, record["metadata"],
              record["multitask_strategy"], None, created_at=record["created_at"])
    run.updated_at = _text(fields.get(b"updated_at", b""))
    status = _text(fields.get(b"status", b"pending"))
    if status in _ACTIVE and int(fields.get(b"lease", b"0")) < _ms():
        if b"queued" in fields:
            status = "pending"  # its worker died: another one will take it
        else:
            status = "error"  # its process stopped renewing it: it died
            run.error = {"error": "RunLost", "message": "the process running it stopped"}
    run.status = cast(RunStatus, status)
    if b"outcome" in fields:
        outcome = json.loads(fields[b"outcome"])
        run.values = outcome.get("values")
        run.error = outcome.get("error") or run.error
    return run


class RedisRunRegistry(LocalRunner):
    """Runs kept in Redis: created and executed in this process, seen from every process.

    A run streamed or awaited by the request that made it executes here at once, with no trip
    through the queue; with ``graphs`` (and ``move_streamed``) it is also recorded as taken by
    this process (an entry of the held stream in its pending list, and its request in its
    hash), so that another worker claims it and continues it from its last checkpoint should
    this process stop renewing it. What that costs at the start: one ``EVAL`` in the
    transaction that writes the run's record (no round trip of its own), and the request's
    JSON in the record.

    Args:
        redis: the client (asyncio).
        spawn: starts a task in the app's task group.
        threads: the thread records.
        prefix: put before every key.
        retention: seconds a finished run's record and events are kept for joins.
        lease: seconds a run (and its thread's lock) outlives its process.
        max_events: a run's stream is trimmed to about this many events, and the run waits
            while its slowest live reader is this many events behind.
        graphs: the agents, by graph id, to run background runs with: a registry given them
            takes background runs from the queue (:meth:`serve`), any process's.
        consumer: this process's name in the queue's consumer group.
        jobs_per_worker: how many background runs this process runs at once; it takes runs
            from the queue while it runs fewer, and the others wait there, ``pending``, for
            this worker or another. A run taken that must wait for its turn on a busy thread
            does not count meanwhile (up to ten times as many such runs per worker).
        move_streamed: with ``graphs``, streamed and awaited runs are continued by another
            worker if this process dies; ``False``: they end ``error`` (``RunLost``) then.
    """

    def __init__(
        self,
        redis: aredis.Redis,
        spawn: Spawn,
        threads: ThreadStore,
        *,
        prefix: str = "rxagent:server:",
        retention: float = 600.0,
        lease: float = 10.0,
        max_events: int = 100_000,
        graphs: Mapping[str, Agent] | None = None,
        consumer: str | None = None,
        jobs_per_worker: int = 10,
        move_streamed: bool = True,
    ) -> None:
        super().__init__(threads)
        self.jobs_per_worker = jobs_per_worker
        self.move_streamed = move_streamed
        self._freed = anyio.Event()  # set when a run taken from the queue leaves room here
        # Runs taken from the queue that found they must wait for their turn on their thread:
        # they hold no slot meanwhile (at most _max_waiting of them), and take one when their
        # turn comes (_slots: at most jobs_per_worker run at once).
        self._waiting_turn: set[str] = set()
        self._max_waiting = _WAITING_PER_JOB * jobs_per_worker
        self._job_slots: anyio.Semaphore | None = None  # made on the loop, when first needed
        self._taking: anyio.Lock | None = None  # the queue's readers take turns (made lazily)
        self.graphs = dict(graphs or {})
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self._queued: dict[str, str] = {}  # run id -> its queue entry, for runs taken here
        self._held: dict[str, str] = {}  # run id -> its held stream entry, for runs held here
        self._stopping = False
        self._redis: Any = redis  # see _ANY
        self._spawn = spawn
        self.keys = Keys(prefix)
        self.retention = retention
        self.lease = lease
        self.max_events = max_events
        self.tails = Tails(redis, self.keys, spawn, name=self.consumer, lease=lease)
        self._local: dict[str, Run] = {}  # the runs executing here
        self._last_on_thread: dict[str, Run] = {}
        self._holding: set[str] = set()  # runs here that hold their thread's lock
        self._renew = redis.register_script(_RENEW)
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)
        self._take_queued_run = redis.register_script(_TAKE_QUEUED)
        self._cancel_queued = redis.register_script(_CANCEL_QUEUED)

    @property
    def _lease_ms(self) -> int:
        return int(self.lease * 1000)

    @property
    def _alive_ttl_ms(self) -> int:
        """The keys' time to live while the run lives: should its process die, they are kept
        ``retention`` after its last renewal."""
        return int((self.retention + self.lease) * 1000)

    async def _lock(self, thread_id: str, run_id: str) -> bool:
        taken = await self._take(keys=[self.keys.thread_lock(thread_id)],
                                 args=[run_id, self._lease_ms])
        if taken:
            self._holding.add(run_id)
        return bool(taken)

    async def create(
        self,
        run_id: str,
        thread_id: str,
        request: RunRequest,
        *,
        metadata: Mapping[str, Any],
        multitask_strategy: str,
        follow: bool,
        background: bool = False,
    ) -> tuple[Run, LogReader | None]:
        if multitask_strategy == "reject":
            busy = [run for run in await self.on_thread(thread_id) if run.active]
            if busy:
                raise ThreadBusy(thread_id, busy[0].run_id)
            # Two processes may both have seen the thread idle: the lock decides.
            if not await self._lock(thread_id, run_id):
                holder = await self._redis.get(self.keys.thread_lock(thread_id))
                raise ThreadBusy(thread_id, None if holder is None else _text(holder))
        log = RedisEventLog(self._redis, self.keys, self.tails, run_id, self._spawn,
                            max_events=self.max_events, retention=self.retention,
                            lease=self.lease)
        run = Run(run_id, thread_id, request, dict(metadata), multitask_strategy, log)
        previous = self._last_on_thread.get(thread_id)
        if not background:
            self._local[run_id] = run
            self._last_on_thread[thread_id] = run
        moves = not background and self.move_streamed and request.graph_id in self.graphs
        fields = {"record": _record(run), "status": run.status, "updated_at": run.created_at,
                  "lease": _ms() + self._lease_ms, "attempt": 1}
        if background or moves:
            fields |= {"queued": _request_json(request)}
        if moves:
            # Taken by this process, its first attempt ("attempt" counts the takes from 2 on,
            # as a queued run's first taker leaves it).
            fields |= {"worker": self.consumer, "attempt": 2}
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self.keys.run(run_id), mapping=fields)
                pipe.pexpire(self.keys.run(run_id), self._alive_ttl_ms)
                pipe.zadd(self.keys.thread_runs(thread_id), {run_id: time.time()})
                if moves:
                    pipe.eval(_HOLD, 1, self.keys.held, _GROUP, self.consumer, run_id)
                replies = await pipe.execute()
            if moves:
                self._held[run_id] = _text(replies[-1])
            if follow:
                log.expect_reader()
            # The first frame, written now so that a client sees it before the run's turn.
            await log.append("metadata", frame("metadata", {"run_id": run_id, "attempt": 1}))
            await log.flush()  # in the stream before the stream's TTL is set, or a worker runs it
            await self._redis.pexpire(self.keys.events(run_id), self._alive_ttl_ms)
            if background:
                # Whichever worker takes it runs it (the thread's lock, if taken here, is the
                # run's: the worker keeps it).
                self._holding.discard(run_id)
                await self._redis.xadd(self.keys.queue, {"run": run_id})
        except BaseException:
            await self._ended(run)
            raise
        reader = self.reader(run, 0) if follow else None
        if not background:
            self._spawn(lambda: self._execute(run, previous))
        return run, reader

    async def get(self, run_id: str) -> Run | None:
        local = self._local.get(run_id)
        if local is not None:
            return local
        fields = await self._redis.hgetall(self.keys.run(run_id))
        return _run_from(fields) if fields else None

    async def on_thread(self, thread_id: str) -> list[Run]:
        key = self.keys.thread_runs(thread_id)
        ids = [_text(run_id) for run_id in await self._redis.zrevrange(key, 0, -1)]
        return await self._runs(key, ids)

    async def _runs(self, key: str, ids: list[str]) -> list[Run]:
        """The runs of these ids, dropping from the sorted set ``key`` those forgotten."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id in ids:
                pipe.hgetall(self.keys.run(run_id))
            found = await pipe.execute() if ids else []
        runs, gone = [], []
        for run_id, fields in zip(ids, found, strict=True):
            if run_id in self._local:
                runs.append(self._local[run_id])
            elif fields:
                runs.append(_run_from(fields))
            else:
                gone.append(run_id)
        if gone:
            await self._redis.zrem(key, *gone)
        return runs

    def reader(self, run: Run, after: int | None) -> LogReader:
        return self.tails.reader(run.run_id, after)

    async def cancel(self, run: Run) -> None:
        local = self._local.get(run.run_id)
        if local is not None:
            local.cancel()
        # Also recorded, for a run that has not yet taken its turn when the message passes.
        await self._redis.hset(self.keys.run(run.run_id), "cancel", "1")
        if local is None and await self._cancel_queued(
            keys=[self.keys.run(run.run_id), self.keys.events(run.run_id),
                  self.keys.thread_lock(run.thread_id)],
            args=[now(), dumps({"values": None, "error": None}),
                  int(self.retention * 1000), run.run_id],
        ):
            return  # still in the queue: no worker has to stop it
        if local is None:
            await self._redis.publish(self.keys.cancel, run.run_id)

    async def wait(self, run: Run) -> Run:
        local = self._local.get(run.run_id)
        if local is not None:
            await local.wait_ended()
            return local
        latest: Run | None = run
        while latest is not None and latest.active:
            local = self._local.get(run.run_id)
            if local is not None:  # claimed here meanwhile: its process died
                await local.wait_ended()
                return local
            await anyio.sleep(0.05)
            latest = await self.get(run.run_id)
        return latest or run

    async def forget_thread(self, thread_id: str) -> None:
        runs = await self.on_thread(thread_id)
        for run in runs:
            if run.active:
                await self.cancel(run)
        keys = [self.keys.thread_runs(thread_id)]
        for run in runs:
            keys += [self.keys.run(run.run_id), self.keys.events(run.run_id)]
        await self._redis.delete(*keys)
        self._last_on_thread.pop(thread_id, None)

    async def delete(self, run: Run) -> None:
        self._local.pop(run.run_id, None)
        if self._last_on_thread.get(run.thread_id) is run:
            del self._last_on_thread[run.thread_id]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.run(run.run_id), self.keys.events(run.run_id))
            pipe.zrem(self.keys.thread_runs(run.thread_id), run.run_id)
            await pipe.execute()

    # -- executing here -----------------------------------------------------------------------

    async def _take_turn(self, run: Run, previous: Run | None) -> None:
        if previous is not None:
            await previous.wait_ended()
        lock = self.keys.thread_lock(run.thread_id)
        try:
            while run.run_id not in self._holding:
                # The lock first, one GET: while another run has it, this one's turn has not
                # come, and the earlier runs need not be read.
                holder = await self._redis.get(lock)
                if (holder is None or _text(holder) == run.run_id) and not (
                        await self._earlier_active(run)) and await self._lock(run.thread_id,
                                                                               run.run_id):
                    break
                if run.run_id in self._queued and run.run_id not in self._waiting_turn:
                    # Not its turn: it leaves its slot to runs of other threads meanwhile.
                    self._waiting_turn.add(run.run_id)
                    self._free_a_slot()
                await anyio.sleep(0.05)
        finally:
            self._waiting_turn.discard(run.run_id)
        if await self._redis.hget(self.keys.run(run.run_id), "cancel"):
            run.cancel()

    async def _earlier_active(self, run: Run) -> bool:
        """Whether a run made before this one on its thread, in any process, is active (runs
        queued on a thread start in the order they were made)."""
        key = self.keys.thread_runs(run.thread_id)
        rank = await self._redis.zrank(key, run.run_id)
        if not rank:
            return False
        ids = [_text(run_id) for run_id in await self._redis.zrange(key, 0, rank - 1)]
        return any(other.active for other in await self._runs(key, ids))

    async def _save(self, run: Run) -> None:
        fields: dict[str, Any] = {"status": run.status, "updated_at": run.updated_at,
                                  "lease": _ms() + self._lease_ms}
        ended = not run.active
        if ended and isinstance(run.log, RedisEventLog):
            # Every event is in the stream before the status says the run has ended: a tail
            # that finds the run ended reads what the stream has, and stops.
            await run.log.flush()
        if ended:
            fields["outcome"] = dumps({"values": run.values, "error": run.error})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.run(run.run_id), mapping=fields)
            pipe.pexpire(self.keys.run(run.run_id), int(self.retention * 1000)
                         if ended else self._alive_ttl_ms)
            await pipe.execute()

    def stop(self) -> None:
        """This process is stopping: the background runs it executes are handed over (left
        in the queue, unacknowledged, for another worker to claim after the lease), not
        ended. Call it before cancelling the runs' task group."""
        self._stopping = True

    async def _finish(self, run: Run) -> None:
        taken = run.run_id in self._queued or run.run_id in self._held
        if self._stopping and taken and not run.cancel_requested:
            logger.info("run %s is left for another worker", run.run_id)
            self._local.pop(run.run_id, None)
            if run.run_id in self._queued:
                stream, entry = self.keys.queue, self._queued.pop(run.run_id)
                self._free_a_slot()
            else:
                stream, entry = self.keys.held, self._held.pop(run.run_id)
            self._holding.discard(run.run_id)
            run.end()
            try:
                # Marked idle for a whole lease already, and its lease over: the next worker
                # to look claims it at once rather than a lease from now.
                await self._redis.xclaim(stream, _GROUP, self.consumer, 0, [entry],
                                         idle=self._lease_ms, justid=True)
                await self._redis.hset(self.keys.run(run.run_id), "lease", 0)
            except RedisError:  # then it is claimed after the lease, as if this one had died
                logger.exception("run %s could not be handed over at once", run.run_id)
            return
        await super()._finish(run)

    async def _ended(self, run: Run) -> None:
        self._local.pop(run.run_id, None)
        entries = []
        entry = self._queued.pop(run.run_id, None)
        if entry is not None:
            self._free_a_slot()
            entries.append((self.keys.queue, entry))
        entry = self._held.pop(run.run_id, None)
        if entry is not None:
            entries.append((self.keys.held, entry))
        if entries:
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream, entry in entries:
                    pipe.xack(stream, _GROUP, entry)
                    pipe.xdel(stream, entry)
                await pipe.execute()
        if self._last_on_thread.get(run.thread_id) is run:
            del self._last_on_thread[run.thread_id]
        if run.run_id in self._holding:
            self._holding.discard(run.run_id)
            await self._release(keys=[self.keys.thread_lock(run.thread_id)], args=[run.run_id])

    # -- the process's background work --------------------------------------------------------

    async def serve(self) -> None:
        """Renew this process's runs' leases, and cancel its runs when another process asks;
        until cancelled (the app's lifespan runs it)."""
        if self.graphs:
            for stream in (self.keys.queue, self.keys.held):
                try:
                    await self._redis.xgroup_create(stream, _GROUP, id="0", mkstream=True)
                except RedisError as error:
                    if "BUSYGROUP" not in str(error):
                        raise
        async with anyio.create_task_group() as group:
            group.start_soon(self._renew_leases)
            group.start_soon(self._listen_for_cancels)
            if self.graphs:
                group.start_soon(self._take_queued)
                group.start_soon(self._claim_orphans)

    async def _renew_leases(self) -> None:
        while True:
            try:
                await self._renew_once()
            except RedisError:
                logger.exception("the runs' leases could not be renewed")
            await anyio.sleep(self.lease / 3)

    async def _renew_once(self) -> None:
        runs = list(self._local.values())
        async with self._redis.pipeline(transaction=False) as pipe:
            if self.graphs:
                pipe.set(self.keys.worker(self.consumer), _ms(), px=self._lease_ms)
            for run in runs:
                pipe.hset(self.keys.run(run.run_id), "lease", _ms() + self._lease_ms)
                pipe.pexpire(self.keys.run(run.run_id), self._alive_ttl_ms)
                pipe.pexpire(self.keys.events(run.run_id), self._alive_ttl_ms)
            # Readers held up by a slow client still read: the run's writer waits for them.
            readers = [(tail.run_id, tail.reader_id, tail.log.last_id) for tail in self.tails]
            readers += [(reader.run_id, reader.reader_id, reader.cursor)
                        for reader in list(self.tails.paging.values())]
            for run_id, reader_id, position in readers:
                pipe.hset(self.keys.readers(run_id), reader_id, f"{position}:{_ms()}")
                pipe.pexpire(self.keys.readers(run_id), 3 * self._lease_ms)
            await pipe.execute()
        for run in runs:
            if run.run_id in self._holding:
                await self._renew(keys=[self.keys.thread_lock(run.thread_id)],
                                  args=[run.run_id, self._lease_ms])
        for stream, taken in ((self.keys.queue, self._queued), (self.keys.held, self._held)):
            if taken:
                # Claiming its entries again resets their idle time: no other worker claims
                # them while this one lives.
                await self._redis.xclaim(stream, _GROUP, self.consumer, 0, list(taken.values()),
                                         justid=True)

    # -- background runs: the queue -----------------------------------------------------------

    def _free_a_slot(self) -> None:
        self._freed.set()
        self._freed = anyio.Event()

    @property
    def _free_slots(self) -> int:
        """How many more runs this process takes from the queue now: each may need a slot (a
        run waiting for its turn does not count), and may have to wait for its turn."""
        taking = self.jobs_per_worker - (len(self._queued) - len(self._waiting_turn))
        return min(taking, self._max_waiting - len(self._waiting_turn))

    def _slots(self) -> anyio.Semaphore:
        if self._job_slots is None:
            # FIFO: anyio's semaphore wakes its waiters in the order they came.
            self._job_slots = anyio.Semaphore(self.jobs_per_worker)
        return self._job_slots

    def _turns(self) -> anyio.Lock:
        # The two readers of the queue (new entries, orphans) take one at a time, each as many
        # as this process has room for: together they never take more.
        if self._taking is None:
            self._taking = anyio.Lock()
        return self._taking

    async def _take_queued(self) -> None:
        """Take background runs from the queue, as one consumer of the group, and run them."""
        while True:
            while self._free_slots <= 0:  # the runs beyond wait in the queue, for any worker
                await self._freed.wait()
            try:
                async with self._turns():
                    reply = await self._redis.xreadgroup(_GROUP, self.consumer,
                                                         {self.keys.queue: ">"}, count=1,
                                                         block=_BLOCK_MS)
                    for entry_id, fields in reply[0][1] if reply else []:
                        await self._start_queued(_text(fields[b"run"]), _text(entry_id),
                                                 held=False)
            except RedisError:
                logger.exception("taking runs from the queue failed; trying again")
                await anyio.sleep(1)

    async def _claim_orphans(self) -> None:
        """Claim the queued and held runs whose worker stopped renewing them (it died): they go
        on from their thread's last checkpoint, as their next attempt. Held runs (streamed or
        awaited ones) are claimed whatever this process runs already: they never wait."""
        while True:
            await anyio.sleep(self.lease / 3)
            try:
                reply = await self._redis.xautoclaim(
                    self.keys.held, _GROUP, self.consumer, self._lease_ms, "0-0", count=16)
                for entry_id, fields in reply[1]:
                    if fields:  # deleted entries come back empty
                        await self._start_queued(_text(fields[b"run"]), _text(entry_id),
                                                 held=True)
                async with self._turns():
                    if self._free_slots <= 0:
                        continue  # left for a worker with room, or for later
                    reply = await self._redis.xautoclaim(
                        self.keys.queue, _GROUP, self.consumer, self._lease_ms, "0-0",
                        count=min(16, self._free_slots))
                    for entry_id, fields in reply[1]:
                        if fields:
                            await self._start_queued(_text(fields[b"run"]), _text(entry_id),
                                                     held=False)
            except RedisError:
                logger.exception("claiming orphaned runs failed; trying again")

    async def _start_queued(self, run_id: str, entry_id: str, *, held: bool) -> None:
        mine = self._held if held else self._queued
        stream = self.keys.held if held else self.keys.queue
        if run_id in self._local:  # claimed back from ourselves (renewing it came late)
            mine[run_id] = entry_id
            return
        fields = await self._redis.hgetall(self.keys.run(run_id))
        record = json.loads(fields[b"record"]) if fields else None
        if record is not None and record["graph_id"] not in self.graphs:
            logger.error("run %s is of graph %r, which this worker does not serve", run_id,
                         record["graph_id"])
            return  # left pending: a worker that serves it claims it after the lease
        # Taken only if still to run, atomically with a cancel of a queued run (_CANCEL_QUEUED).
        taken = record is not None and await self._take_queued_run(
            keys=[self.keys.run(run_id)], args=[self.consumer])
        if not taken:
            # Forgotten, cancelled while queued, or ended before its worker acknowledged it.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xack(stream, _GROUP, entry_id)
                pipe.xdel(stream, entry_id)
                await pipe.execute()
            return
        assert record is not None
        agent = self.graphs[record["graph_id"]]
        attempt = int(taken) - 1
        run = _run_from(fields)
        run.request = _request_from(record, json.loads(fields[b"queued"]), agent,
                                    resume=attempt > 1 and await self._started(agent, run))
        run.status = "pending"
        log = RedisEventLog(self._redis, self.keys, self.tails, run_id, self._spawn,
                            max_events=self.max_events, retention=self.retention,
                            lease=self.lease)
        run.log = log
        self._local[run_id] = run
        mine[run_id] = entry_id
        await self._save(run)
        # The stream has the creator's metadata frame, and a killed attempt's events.
        top = await self._redis.xrevrange(self.keys.events(run_id), count=1)
        log.resume_after(_entry_id(top[0][0])[0] if top else 0)
        if attempt > 1:
            await log.append("metadata", frame("metadata", {"run_id": run_id,
                                                             "attempt": attempt}))
        slots = None if held else self._slots()  # held runs never wait for one
        self._spawn(lambda: self._execute(run, None, slots))

    @staticmethod
    async def _started(agent: Agent, run: Run) -> bool:
        """Whether the run has saved a checkpoint on its thread: it goes on from there; if not
        (its process died before its turn came, or before its first step), it starts again
        from its input."""
        state = await agent.aget_state({"configurable": {"thread_id": run.thread_id}})
        return bool(state.metadata and state.metadata.get("run_id") == run.run_id)

    async def _listen_for_cancels(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.cancel)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        run = self._local.get(_text(message["data"]))
                        if run is not None:
                            run.cancel()
            except RedisError:
                logger.exception("listening for cancels failed; listening again")
                await anyio.sleep(1)


# -- threads ----------------------------------------------------------------------------------


def _thread_from(thread_id: str, fields: Mapping[bytes, bytes]) -> ThreadRecord:
    return ThreadRecord(
        thread_id, _text(fields[b"created_at"]), _text(fields[b"updated_at"]),
        json.loads(fields.get(b"metadata", b"{}")),
        cast(ThreadStatus, _text(fields.get(b"status", b"idle"))),
    )


class RedisThreadStore(ThreadStore):
    """Thread records in Redis.

    Args:
        redis: the client (asyncio).
        prefix: put before every key.
    """

    def __init__(self, redis: aredis.Redis, *, prefix: str = "rxagent:server:") -> None:
        self._redis: Any = redis  # see _ANY
        self.keys = Keys(prefix)

    async def get(self, thread_id: str) -> ThreadRecord | None:
        fields = await self._redis.hgetall(self.keys.thread(thread_id))
        return _thread_from(thread_id, fields) if fields else None

    async def create(self, thread_id: str, metadata: Mapping[str, Any]) -> ThreadRecord:
        stamp = now()
        record = ThreadRecord(thread_id, stamp, stamp, dict(metadata))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.thread(thread_id), mapping={
                "created_at": stamp, "updated_at": stamp, "status": record.status,
                "metadata": json.dumps(record.metadata),
            })
            pipe.zadd(self.keys.threads, {thread_id: time.time()})
            await pipe.execute()
        return record

    async def search(
        self, metadata: Mapping[str, Any], status: str | None, limit: int, offset: int
    ) -> list[ThreadRecord]:
        ids = [_text(thread_id) for thread_id in
               await self._redis.zrevrange(self.keys.threads, 0, -1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for thread_id in ids:
                pipe.hgetall(self.keys.thread(thread_id))
            found = await pipe.execute() if ids else []
        records = [_thread_from(thread_id, fields)
                   for thread_id, fields in zip(ids, found, strict=True) if fields]
        matching = [
            record for record in records
            if all(record.metadata.get(key) == value for key, value in metadata.items())
            and (status is None or record.status == status)
        ]
        return matching[offset : offset + limit]

    async def touch(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        key = self.keys.thread(thread_id)
        fields: dict[str, Any] = {"updated_at": now()}
        if status is not None:
            fields["status"] = status
        if metadata:
            known = await self._redis.hget(key, "metadata")
            fields["metadata"] = json.dumps({**json.loads(known or b"{}"), **metadata})
        # Only a thread that exists (a deleted one is not brought back by its last run).
        if await self._redis.exists(key):
            await self._redis.hset(key, mapping=fields)

    async def delete(self, thread_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.thread(thread_id))
            pipe.zrem(self.keys.threads, thread_id)
            await pipe.execute()
