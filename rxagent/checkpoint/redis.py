"""``RedisSaver``: checkpoints in Redis, shared by every process that reaches the server.

Needs the optional ``redis`` package (``pip install 'rxagent[redis]'``). It uses redis-py's
sync client: the async methods run it in a worker thread, as every blocking saver does, so it
serves asyncio and trio alike.

Layout, every key under a prefix (``rxagent:`` by default) and with the thread id in braces,
so that a thread's keys share one Redis Cluster slot; thread ids, namespaces and checkpoint ids
are percent-encoded in key names, so that no choice of them can make two keys one::

    {prefix}{thread}:namespaces               set: the thread's namespaces (for delete_thread)
    {prefix}{thread}:{ns}:ids                 sorted set, all scores 0: checkpoint ids, which
                                              sort by time, listed with ZREVRANGEBYLEX
    {prefix}{thread}:{ns}:checkpoint:{id}     hash: parent_id, created_at, state, metadata
    {prefix}{thread}:{ns}:writes:{id}         string: the checkpoint's writes, task by task
    {prefix}{thread}:{ns}:written             set: the ids that have writes (for delete_thread)
    {prefix}{thread}:runs                     set: the run ids of the thread's checkpoints
    {prefix}{thread}:run:{run}                set: the run's checkpoints, as JSON [ns, id]
    {prefix}run-threads:{run}                 set: the threads the run wrote to; with the two
                                              above, what delete_for_runs reads

Values are JSON text, never pickle. A put and a put_writes change their keys in one MULTI
transaction; put_writes, delete_thread and delete_for_runs read first under WATCH and start
again if another client changed what they read. Metadata filters are checked here, not in
Redis: a filtered listing reads the metadata of each checkpoint it passes (and the rest only of
those it keeps). A put whose metadata names a ``run_id`` also indexes the checkpoint by run
(one more round trip the first time this saver sees the run on the thread). Checkpoints put
before rxagent kept that index are not in it: ``delete_for_runs`` finds those only in the
``threads`` it is given, and there only while they are the newest of their namespace (below).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import quote

from .._exceptions import CheckpointError, UsageError
from ._base import BaseCheckpointSaver, Checkpoint, CheckpointTuple, PendingWrite

try:
    import redis
except ImportError as error:
    raise UsageError(
        "rxagent.checkpoint.redis needs the redis package, an optional dependency of rxagent: "
        "pip install 'rxagent[redis]'"
    ) from error

__all__ = ["RedisSaver"]

_Tasks = list[Any]  # [[task_id, [[channel, value], ...]], ...]
_Tuples = list[CheckpointTuple]  # (inside the class, ``list`` names the method)

_PAGE = 100  # checkpoint ids read per round trip while a listing is iterated


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _text(value: bytes | str) -> str:
    """A reply as text, whether or not the client was made with ``decode_responses``."""
    return value.decode() if isinstance(value, bytes) else value


class RedisSaver(BaseCheckpointSaver):
    """Keeps checkpoints in Redis, for many processes at once.

    Args:
        client: a ``redis://`` URL (the saver makes a client and closes it in :meth:`close`)
            or a ``redis.Redis`` client of one's own (left open: its owner closes it).
        prefix: put before every key, so that several apps (or tests) share one database.

    Raises:
        CheckpointError: the server cannot be reached (checked with a PING here, so a wrong
            URL fails at once rather than in the middle of a run).
    """

    def __init__(self, client: str | redis.Redis, *, prefix: str = "rxagent:") -> None:
        self.prefix = prefix
        self._closed = False
        # (run, thread) pairs whose run-threads entry this saver has written: one round trip
        # per run and thread, not per checkpoint. Bounded: forgetting one costs a round trip.
        self._indexed: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._owns_client = isinstance(client, str)
        # redis-py types each reply as "awaitable or not" (one annotation for both clients);
        # this one is the sync client, whose replies are plain values.
        self._redis: Any = (
            redis.Redis.from_url(client, socket_connect_timeout=10)
            if isinstance(client, str)
            else client
        )
        try:
            with self._errors("reach the server"):
                self._redis.ping()
        except CheckpointError:
            self.close()
            raise

    @classmethod
    @contextmanager
    def from_conn_string(cls, url: str, *, prefix: str = "rxagent:") -> Iterator[Self]:
        """A saver on the Redis at ``url``, closed when the ``with`` block ends."""
        with cls(url, prefix=prefix) as saver:
            yield saver

    def close(self) -> None:
        """Close the client if the saver made it (from a URL); the saver cannot be used
        afterwards. Closing twice is fine."""
        self._closed = True
        if self._owns_client:
            self._redis.close()

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        if self._closed:
            raise UsageError("this RedisSaver is closed")
        try:
            yield
        except redis.RedisError as error:
            raise CheckpointError(
                f"RedisSaver could not {what} (Redis at {self._where()}): {error}"
            ) from error

    def _where(self) -> str:
        # Host, port and database only: a URL may carry a password.
        kwargs = self._redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
        return f"{host}:{port}/{kwargs.get('db', 0)}"

    # -- key names -----------------------------------------------------------------------------

    def _thread_key(self, thread_id: str) -> str:
        return f"{self.prefix}{{{quote(thread_id, safe='')}}}"

    def _ns_key(self, thread_id: str, checkpoint_ns: str) -> str:
        return f"{self._thread_key(thread_id)}:{quote(checkpoint_ns, safe='')}"

    def _run_key(self, thread_id: str, run_id: str) -> str:
        return f"{self._thread_key(thread_id)}:run:{quote(run_id, safe='')}"

    def _run_threads_key(self, run_id: str) -> str:
        return f"{self.prefix}run-threads:{quote(run_id, safe='')}"

    # -- the five methods ----------------------------------------------------------------------

    def put(self, checkpoint: Checkpoint) -> None:
        base = self._ns_key(checkpoint.thread_id, checkpoint.checkpoint_ns)
        fields = {
            "parent_id": _dumps(checkpoint.parent_id),
            "created_at": checkpoint.created_at,
            "state": _dumps(checkpoint.state),
            "metadata": _dumps(checkpoint.metadata),
        }
        thread_key = self._thread_key(checkpoint.thread_id)
        run_id = checkpoint.metadata.get("run_id")
        if isinstance(run_id, str):
            self._index_run(run_id, checkpoint.thread_id)
        with self._errors("store a checkpoint"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{base}:checkpoint:{quote(checkpoint.checkpoint_id, safe='')}",
                      mapping=fields)
            pipe.zadd(f"{base}:ids", {checkpoint.checkpoint_id: 0})
            pipe.sadd(f"{thread_key}:namespaces", checkpoint.checkpoint_ns)
            if isinstance(run_id, str):
                pipe.sadd(f"{thread_key}:runs", run_id)
                pipe.sadd(self._run_key(checkpoint.thread_id, run_id),
                          _dumps([checkpoint.checkpoint_ns, checkpoint.checkpoint_id]))
            pipe.execute()

    def _index_run(self, run_id: str, thread_id: str) -> None:
        """Record that the run writes to the thread (before its first checkpoint there), in a
        key of its own: it is not in the thread's Redis Cluster slot, so not in its MULTI."""
        pair = (run_id, thread_id)
        if pair in self._indexed:
            self._indexed.move_to_end(pair)
            return
        with self._errors("store a checkpoint"):
            self._redis.sadd(self._run_threads_key(run_id), thread_id)
        self._indexed[pair] = None
        if len(self._indexed) > 1024:
            self._indexed.popitem(last=False)

    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[str, Any]],
    ) -> None:
        base = self._ns_key(thread_id, checkpoint_ns)
        writes_key = f"{base}:writes:{quote(checkpoint_id, safe='')}"
        new = [[channel, value] for channel, value in writes]

        def update(pipe: Any) -> None:
            raw = pipe.get(writes_key)
            tasks: _Tasks = json.loads(raw) if raw is not None else []
            # A task written again keeps its place; a new one goes after the others.
            for task in tasks:
                if task[0] == task_id:
                    task[1] = new
                    break
            else:
                tasks.append([task_id, new])
            pipe.multi()
            pipe.set(writes_key, _dumps(tasks))
            pipe.sadd(f"{base}:written", checkpoint_id)
            pipe.sadd(f"{self._thread_key(thread_id)}:namespaces", checkpoint_ns)

        with self._errors("store writes"):
            self._redis.transaction(update, writes_key)

    def get(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> CheckpointTuple | None:
        with self._errors("read a checkpoint"):
            if checkpoint_id is None:
                ids = self._redis.zrevrangebylex(
                    f"{self._ns_key(thread_id, checkpoint_ns)}:ids", "+", "-", start=0, num=1
                )
                if not ids:
                    return None
                checkpoint_id = _text(ids[0])
            found = self._read(thread_id, checkpoint_ns, [checkpoint_id])
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
        base = self._ns_key(thread_id, checkpoint_ns)
        found = 0
        upper = "+" if before is None else f"({before}"
        while limit is None or found < limit:
            with self._errors("list checkpoints"):
                ids = [
                    _text(raw)
                    for raw in self._redis.zrevrangebylex(
                        f"{base}:ids", upper, "-", start=0, num=_PAGE
                    )
                ]
                wanted = ids
                if filter:
                    with self._redis.pipeline(transaction=False) as pipe:
                        for checkpoint_id in ids:
                            pipe.hget(f"{base}:checkpoint:{quote(checkpoint_id, safe='')}",
                                      "metadata")
                        metadatas = pipe.execute()
                    wanted = [
                        checkpoint_id
                        for checkpoint_id, metadata in zip(ids, metadatas, strict=True)
                        if metadata is not None and _matches(json.loads(metadata), filter)
                    ]
                if limit is not None:
                    wanted = wanted[: limit - found]
                page = self._read(thread_id, checkpoint_ns, wanted)
            for item in page:
                found += 1
                yield item
            if len(ids) < _PAGE:
                return
            upper = f"({ids[-1]}"

    def delete_thread(self, thread_id: str) -> None:
        namespaces_key = f"{self._thread_key(thread_id)}:namespaces"
        runs_key = f"{self._thread_key(thread_id)}:runs"
        with self._errors("delete a thread"), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    # Read what there is under WATCH: a put in between makes EXEC fail, and
                    # the loop reads again, so nothing written meanwhile is left half-deleted.
                    pipe.watch(namespaces_key, runs_key)
                    runs = [_text(run_id) for run_id in pipe.smembers(runs_key)]
                    bases = [
                        self._ns_key(thread_id, _text(ns))
                        for ns in pipe.smembers(namespaces_key)
                    ]
                    if bases:
                        pipe.watch(*[f"{b}:{part}" for b in bases for part in ("ids", "written")])
                    keys = [namespaces_key, runs_key]
                    keys += [self._run_key(thread_id, run_id) for run_id in runs]
                    for b in bases:
                        keys += [f"{b}:ids", f"{b}:written"]
                        keys += [
                            f"{b}:checkpoint:{quote(_text(i), safe='')}"
                            for i in pipe.zrange(f"{b}:ids", 0, -1)
                        ]
                        keys += [
                            f"{b}:writes:{quote(_text(i), safe='')}"
                            for i in pipe.smembers(f"{b}:written")
                        ]
                    pipe.multi()
                    for start in range(0, len(keys), 1000):
                        pipe.unlink(*keys[start : start + 1000])
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
            for run_id in runs:  # the runs' own keys, in other slots: after the thread's
                self._redis.srem(self._run_threads_key(run_id), thread_id)

    def delete_for_runs(self, run_ids: Sequence[str], *, threads: Sequence[str] = ()) -> None:
        """Forget the runs' checkpoints, found through the per-run index; and in ``threads``,
        also those put before this saver kept that index (by an older rxagent, say a run that
        was going on across an upgrade).

        That second look is bounded rather than a scan of the database: in each namespace of
        each thread given it reads checkpoints newest first, and stops at the first that is not
        of these runs. A run being rolled back wrote the thread's newest checkpoints, so it
        finds them, for the cost of one page per namespace when there is nothing to find. An
        unindexed checkpoint under a newer one of another run stays.
        """
        for run_id in run_ids:
            with self._errors("delete runs' checkpoints"):
                indexed = [_text(t) for t in self._redis.smembers(self._run_threads_key(run_id))]
            for thread_id in indexed:
                self._delete_run_in_thread(run_id, thread_id)
            with self._errors("delete runs' checkpoints"):
                self._redis.unlink(self._run_threads_key(run_id))
        if run_ids:
            for thread_id in dict.fromkeys(threads):
                self._delete_newest_of_runs(set(run_ids), thread_id)
        self._indexed.clear()

    def _delete_newest_of_runs(self, run_ids: set[str], thread_id: str) -> None:
        """In each namespace of the thread, the newest checkpoints while they are the runs'."""
        with self._errors("delete runs' checkpoints"):
            namespaces = [_text(ns) for ns in
                          self._redis.smembers(f"{self._thread_key(thread_id)}:namespaces")]
            for ns in namespaces:
                base = self._ns_key(thread_id, ns)
                doomed: list[str] = []
                upper, page = "+", 4  # a few first: mostly the newest is another run's
                while True:
                    ids = [_text(raw) for raw in self._redis.zrevrangebylex(
                        f"{base}:ids", upper, "-", start=0, num=page)]
                    with self._redis.pipeline(transaction=False) as pipe:
                        for checkpoint_id in ids:
                            pipe.hget(f"{base}:checkpoint:{quote(checkpoint_id, safe='')}",
                                      "metadata")
                        metadatas = pipe.execute() if ids else []
                    mine = 0
                    for checkpoint_id, metadata in zip(ids, metadatas, strict=True):
                        if metadata is None or json.loads(metadata).get("run_id") not in run_ids:
                            break
                        doomed.append(checkpoint_id)
                        mine += 1
                    if mine < len(ids) or len(ids) < page:
                        break
                    upper, page = f"({ids[-1]}", min(page * 4, _PAGE)
                if doomed:
                    with self._redis.pipeline(transaction=True) as pipe:
                        for checkpoint_id in doomed:
                            quoted = quote(checkpoint_id, safe="")
                            pipe.unlink(f"{base}:checkpoint:{quoted}", f"{base}:writes:{quoted}")
                        pipe.zrem(f"{base}:ids", *doomed)
                        pipe.srem(f"{base}:written", *doomed)
                        pipe.execute()

    def _delete_run_in_thread(self, run_id: str, thread_id: str) -> None:
        run_key = self._run_key(thread_id, run_id)
        with self._errors("delete runs' checkpoints"), \
                self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(run_key)  # a put of the run in between: read again
                    found = [json.loads(member) for member in pipe.smembers(run_key)]
                    pipe.multi()
                    for ns, checkpoint_id in found:
                        base = self._ns_key(thread_id, ns)
                        quoted = quote(checkpoint_id, safe="")
                        pipe.unlink(f"{base}:checkpoint:{quoted}", f"{base}:writes:{quoted}")
                        pipe.zrem(f"{base}:ids", checkpoint_id)
                        pipe.srem(f"{base}:written", checkpoint_id)
                    pipe.unlink(run_key)
                    pipe.srem(f"{self._thread_key(thread_id)}:runs", run_id)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _read(self, thread_id: str, ns: str, ids: Sequence[str]) -> _Tuples:
        """The checkpoints ``ids`` (those that exist), with their writes, read at one moment."""
        if not ids:
            return []
        base = self._ns_key(thread_id, ns)
        with self._redis.pipeline(transaction=True) as pipe:
            for checkpoint_id in ids:
                pipe.hgetall(f"{base}:checkpoint:{quote(checkpoint_id, safe='')}")
                pipe.get(f"{base}:writes:{quote(checkpoint_id, safe='')}")
            replies = pipe.execute()
        found = []
        for checkpoint_id, fields, writes in zip(ids, replies[::2], replies[1::2], strict=True):
            if not fields:
                continue  # deleted since its id was read
            row = {_text(name): _text(value) for name, value in fields.items()}
            found.append(
                CheckpointTuple(
                    Checkpoint(
                        thread_id, ns, checkpoint_id, json.loads(row["parent_id"]),
                        row["created_at"], json.loads(row["state"]), json.loads(row["metadata"]),
                    ),
                    tuple(
                        PendingWrite(task_id, channel, value)
                        for task_id, task_writes in (json.loads(writes) if writes else ())
                        for channel, value in task_writes
                    ),
                )
            )
        return found


def _matches(metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    return all(name in metadata and metadata[name] == value for name, value in filter.items())
