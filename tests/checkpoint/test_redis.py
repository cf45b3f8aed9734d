"""RedisSaver on a real redis-server: the conformance suite, and what only Redis can show."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rxagent import CheckpointError, UsageError
from rxagent.checkpoint.conformance import SaverConformance, make_checkpoint
from rxagent.checkpoint.redis import RedisSaver

from ..redis_server import free_port, running_redis_server


class TestRedisSaver(SaverConformance):
    @pytest.fixture
    def saver(self, redis_url: str, redis_client: redis.Redis) -> Iterator[RedisSaver]:
        with RedisSaver.from_conn_string(redis_url) as saver:
            yield saver


class TestRedisSaverOnAClientOfOnesOwn(SaverConformance):
    """A client given (that decodes replies to str) and a prefix of one's own."""

    @pytest.fixture
    def saver(self, redis_url: str, redis_client: redis.Redis) -> Iterator[RedisSaver]:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        yield RedisSaver(client, prefix="app:checkpoints:")
        client.close()


def test_every_key_is_under_the_prefix_and_delete_thread_leaves_none(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with RedisSaver(redis_url, prefix="mine:") as saver:
        for thread_id, ns in [("t", ""), ("t", "child"), ("u", "")]:
            checkpoint = make_checkpoint(thread_id, ns)
            saver.put(checkpoint)
            saver.put_writes(thread_id, ns, checkpoint.checkpoint_id, "task", [("c", 1)])
        # Writes for a checkpoint that was never put are deleted with the thread too.
        saver.put_writes("t", "other", "no-such-checkpoint", "task", [("c", 1)])
        keys = sorted(key.decode() for key in redis_client.keys("*"))
        assert keys and all(key.startswith("mine:{") for key in keys), keys
        saver.delete_thread("t")
        saver.delete_thread("u")
    assert redis_client.keys("*") == []


def test_values_are_json_text(redis_url: str, redis_client: redis.Redis) -> None:
    with RedisSaver(redis_url) as saver:
        checkpoint = make_checkpoint(state={"messages": ["é"]})
        saver.put(checkpoint)
        (key,) = redis_client.keys("rxagent:*checkpoint:*")
        assert json.loads(redis_client.hget(key, "state")) == {"messages": ["é"]}


def test_two_prefixes_on_one_server_are_kept_apart(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with RedisSaver(redis_url, prefix="a:") as one, RedisSaver(redis_url, prefix="b:") as two:
        checkpoint = make_checkpoint()
        one.put(checkpoint)
        assert two.get("thread-1") is None
        two.put(make_checkpoint())
        two.delete_thread("thread-1")
        got = one.get("thread-1")
        assert got is not None and got.checkpoint == checkpoint


def test_a_server_out_of_reach_is_a_checkpoint_error_naming_it() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(CheckpointError, match=rf"could not reach .*127\.0\.0\.1:{port}") as caught:
        RedisSaver(f"redis://:secret-password@127.0.0.1:{port}/0")
    assert "secret-password" not in str(caught.value)
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


def test_a_server_lost_mid_use_is_a_checkpoint_error(tmp_path: Path) -> None:
    with running_redis_server(tmp_path) as (url, process), RedisSaver(url) as saver:
        saver.put(make_checkpoint())
        process.terminate()
        process.wait()
        with pytest.raises(CheckpointError, match="could not store a checkpoint"):
            saver.put(make_checkpoint())
        with pytest.raises(CheckpointError, match="could not read a checkpoint"):
            saver.get("thread-1")
        with pytest.raises(CheckpointError, match="could not list"):
            list(saver.list("thread-1"))


def test_importing_it_without_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # what `import redis` finds uninstalled
    monkeypatch.delitem(sys.modules, "rxagent.checkpoint.redis")
    with pytest.raises(UsageError, match=r"pip install 'rxagent\[redis\]'"):
        importlib.import_module("rxagent.checkpoint.redis")


_WRITER = """
import sys
from rxagent.checkpoint.conformance import make_checkpoint
from rxagent.checkpoint.redis import RedisSaver

url, name, shared_id = sys.argv[1:]
with RedisSaver(url) as saver:
    for n in range(40):
        saver.put(make_checkpoint("shared", metadata={"writer": name, "n": n}))
        saver.put(make_checkpoint(name, metadata={"n": n}))
        saver.put_writes("shared", "", shared_id, f"{name}-{n}", [("c", n)])
"""


def test_several_processes_write_one_redis(redis_url: str, redis_client: Any) -> None:
    shared = make_checkpoint("shared")
    with RedisSaver(redis_url) as saver:
        saver.put(shared)
        writers = [
            subprocess.Popen([sys.executable, "-c", _WRITER, redis_url, name, shared.checkpoint_id])
            for name in ("one", "two", "three")
        ]
        assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
        assert len(list(saver.list("shared"))) == 1 + 3 * 40
        for name in ("one", "two", "three"):
            assert len(list(saver.list("shared", filter={"writer": name}))) == 40
            assert len(list(saver.list(name))) == 40
        got = saver.get("shared", "", shared.checkpoint_id)
        assert got is not None and len(got.pending_writes) == 3 * 40
        for name in ("one", "two", "three"):  # each writer's tasks in the order it wrote them
            mine = [w.value for w in got.pending_writes if w.task_id.startswith(f"{name}-")]
            assert mine == list(range(40))


def test_a_closed_saver_says_so(redis_url: str) -> None:
    with RedisSaver.from_conn_string(redis_url) as saver:
        pass
    saver.close()  # closing again is fine
    with pytest.raises(UsageError, match="closed"):
        saver.get("thread-1")


def _unindex(client: redis.Redis, run_id: str) -> None:
    """Take the run out of the per-run index, as checkpoints put before it existed are."""
    for key in client.keys(f"rxagent:*run*{run_id}*"):
        client.delete(key)
    for key in client.keys("rxagent:*:runs"):
        client.srem(key, run_id)


def _put(saver: RedisSaver, run_id: str, thread_id: str, ns: str = "") -> str:
    checkpoint = make_checkpoint(thread_id, ns, metadata={"run_id": run_id})
    saver.put(checkpoint)
    saver.put_writes(thread_id, ns, checkpoint.checkpoint_id, "t", [("c", run_id)])
    return checkpoint.checkpoint_id


def _runs(saver: RedisSaver, thread_id: str, ns: str = "") -> list[str]:
    return [item.checkpoint.metadata["run_id"] for item in saver.list(thread_id, ns)]


def test_delete_for_runs_finds_checkpoints_put_before_the_run_index_in_the_threads_given(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with RedisSaver(redis_url) as older:  # an older rxagent's, in effect
        for run_id in ("before", "before", "rolled", "rolled"):
            _put(older, run_id, "thread-1")
        _put(older, "rolled", "thread-1", "child")  # the run's first attempt
    _unindex(redis_client, "before")
    _unindex(redis_client, "rolled")
    with RedisSaver(redis_url) as saver:
        _put(saver, "rolled", "thread-1")  # its second attempt, by this one: indexed
        saver.delete_for_runs(["rolled"])  # the index alone misses the older ones
        assert _runs(saver, "thread-1") == ["rolled", "rolled", "before", "before"]
        saver.delete_for_runs(["rolled"], threads=["thread-1"])
        assert _runs(saver, "thread-1") == ["before", "before"]
        assert _runs(saver, "thread-1", "child") == []
        got = saver.get("thread-1")
        assert got is not None and [w.value for w in got.pending_writes] == ["before"]
    # Nothing of the rolled-back checkpoints is left: no ids, no hashes, no writes.
    assert not [key for key in redis_client.keys("rxagent:*")
                if b"checkpoint:" in key and redis_client.hget(key, "metadata")
                and b"rolled" in redis_client.hget(key, "metadata")]
    assert len(redis_client.smembers("rxagent:{thread-1}::written")) == 2


def test_the_look_in_the_threads_given_stops_at_the_first_checkpoint_of_another_run(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with RedisSaver(redis_url) as saver:
        _put(saver, "rolled", "thread-1")
        for _ in range(50):
            _put(saver, "later", "thread-1")
        _unindex(redis_client, "rolled")
        redis_client.config_resetstat()
        saver.delete_for_runs(["rolled"], threads=["thread-1", "thread-1", "no-such-thread"])
        stats = redis_client.info("commandstats")
        # A page of four checkpoints read, not the thread's 51: the newest is another run's.
        assert stats["cmdstat_hget"]["calls"] <= 4
        assert _runs(saver, "thread-1") == ["later"] * 50 + ["rolled"]  # under a newer one
