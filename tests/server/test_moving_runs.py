"""Runs streamed or awaited by the request that made them survive their process on Redis: two
``rxagent serve --redis-url`` processes behind a load balancer (a failover proxy), the process
running the run killed with SIGKILL mid-run, and the other continues it from its last
checkpoint; the SDK's client, through the proxy, ends with every event exactly once.

The servers are real subprocesses, the redis-server is the session's (``tests/conftest.py``),
and a run is held mid-way by a gate (a file the test creates: ``redis_agents.paced``).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from rxagent.checkpoint.redis import RedisSaver

from .proxy import FailoverProxy
from .test_redis import ids, say, serving, tokens

KEYS = "rxagent:server:"


class Cluster:
    """Two processes on one Redis database, with a 3 s lease, behind a failover proxy.

    (Renewed every second. With a 1 s lease a process stalled for a second on a loaded
    machine could have its live run claimed by the other; a full run on this loaded machine
    failed once that way, probably.)"""

    def __init__(self, store: redis.Redis, saver: RedisSaver, sdk: SyncLangGraphClient,
                 direct: list[SyncLangGraphClient]) -> None:
        self.store = store
        self.saver = saver
        self.sdk = sdk  # through the proxy: to the first process while it lives
        self.direct = direct  # one client on each process

    def record(self, run_id: str) -> dict[str, Any]:
        found = self.store.hget(f"{KEYS}run:{run_id}", "record")
        assert found is not None
        return json.loads(found)  # type: ignore[no-any-return]

    def kill_runner(self, run_id: str) -> int:
        """SIGKILL the process running the run; its pid."""
        worker = self.store.hget(f"{KEYS}run:{run_id}", "worker")
        assert worker is not None, "the run is not recorded as taken by its process"
        pid = int(worker.decode().rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        return pid


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    url = redis_url.rsplit("/", 1)[0] + "/6"
    store = redis.Redis.from_url(url)
    store.flushdb()
    with ExitStack() as stack:
        # Heartbeats slower than the clients' timeout, so that a run never finished fails the
        # test rather than keeping its stream open.
        urls = [stack.enter_context(serving(url, tmp_path / f"s{i}.log", "--lease", "3",
                                            RXAGENT_HEARTBEAT_S="60"))
                for i in range(2)]
        proxy = stack.enter_context(FailoverProxy([int(u.rsplit(":", 1)[1]) for u in urls]))
        sdk = stack.enter_context(get_sync_client(url=f"http://127.0.0.1:{proxy.port}",
                                                  timeout=10))
        direct = [stack.enter_context(get_sync_client(url=u, timeout=30)) for u in urls]
        saver = stack.enter_context(RedisSaver(url))
        yield Cluster(store, saver, sdk, direct)
    store.close()


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A gate for a ``paced`` run: it holds the run after its first token until it exists."""
    return tmp_path / "open"


@pytest.mark.parametrize("stateless", [False, True], ids=["on-a-thread", "stateless"])
def test_a_streamed_run_whose_process_is_killed_is_finished_by_the_other_and_the_sdk_gets_every_event_once(  # noqa: E501
    cluster: Cluster, gate: Path, stateless: bool,
) -> None:
    thread = None if stateless else cluster.sdk.threads.create()["thread_id"]
    parts: list[tuple[str | None, str, Any]] = []
    killed = None
    for part in cluster.sdk.runs.stream(thread, "paced", input=say(f"5 {gate}"),
                                        stream_mode="messages-tuple", stream_resumable=True):
        parts.append((part.id, part.event, part.data))
        if killed is None and tokens(parts) == ["p0 "]:
            # Held by the gate after its first token; killed once its input checkpoint is
            # saved.
            record = cluster.record(parts[0][2]["run_id"])
            deadline = time.monotonic() + 30  # only keeps a broken server from hanging it
            while cluster.saver.get(record["thread_id"]) is None:
                assert time.monotonic() < deadline, "the run's checkpoint was never saved"
                time.sleep(0.02)
            killed = cluster.kill_runner(parts[0][2]["run_id"])
        if part.event == "metadata" and part.data["attempt"] == 2:
            gate.touch()  # the new attempt is running, in the other process: let it end
    run_id = parts[0][2]["run_id"]
    assert killed is not None
    assert ids(parts) == list(range(1, len(parts) + 1))  # each event once, none missing
    assert [data["attempt"] for _, event, data in parts if event == "metadata"] == [1, 2]
    second = [event == "metadata" for _, event, _ in parts].index(True, 1)
    assert tokens(parts[:second]) == ["p0 "]  # the first attempt, killed at its gate
    assert tokens(parts[second:]) == [f"p{i} " for i in range(5)]  # from the checkpoint
    run_key = f"{KEYS}run:{run_id}"
    assert cluster.store.hget(run_key, "status") == b"success"
    worker = cluster.store.hget(run_key, "worker")
    assert worker is not None and int(worker.decode().rsplit(":", 1)[1]) != killed
    thread_id = cluster.record(run_id)["thread_id"]
    if stateless:  # its thread is gone with it, as when it ends in its own process
        assert not cluster.store.exists(f"{KEYS}thread:{thread_id}")
        assert cluster.saver.get(thread_id) is None
        return
    survivor = cluster.direct[1]
    assert survivor.runs.get(thread_id, run_id)["status"] == "success"
    messages = survivor.threads.get_state(thread_id)["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]
    assert messages[-1]["content"] == "p0 p1 p2 p3 p4 "


@pytest.mark.parametrize("stateless", [False, True], ids=["on-a-thread", "stateless"])
def test_a_waited_run_whose_process_is_killed_is_answered_by_the_sdks_own_rejoin(
    cluster: Cluster, gate: Path, stateless: bool,
) -> None:
    # The wait's headers went out at once: the SDK's runs.wait, cut off by the kill, follows
    # their Location (through the proxy, now to the other process) and gets the final state.
    # A stateless wait's Location is the join of its thread of its own, as the reference's.
    thread = None if stateless else cluster.sdk.threads.create()["thread_id"]
    answers: list[Any] = []
    failed: list[BaseException] = []
    warned: list[str] = []

    def wait() -> None:
        try:
            with warnings.catch_warnings(record=True) as seen:  # the SDK warns as it rejoins
                warnings.simplefilter("always")
                answers.append(cluster.sdk.runs.wait(thread, "paced", input=say(f"5 {gate}")))
            warned.extend(str(warning.message) for warning in seen)
        except BaseException as error:
            failed.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    deadline = time.monotonic() + 30  # only keeps a broken server from hanging the test
    while True:
        run = only_run(cluster)
        if run is not None:
            run_thread = cluster.record(run)["thread_id"]
            if (cluster.saver.get(run_thread) is not None
                    and cluster.store.xlen(f"{KEYS}events:{run}") >= 2):
                break
        assert time.monotonic() < deadline, "the run never reached its gate"
        time.sleep(0.02)
    assert stateless or run_thread == thread
    cluster.kill_runner(run)
    gate.touch()
    waiter.join(60)
    assert not failed, failed
    assert any("attempting reconnect to Location" in text for text in warned), warned
    (final,) = answers
    assert [m["type"] for m in final["messages"]] == ["human", "ai"]
    assert final["messages"][-1]["content"] == "p0 p1 p2 p3 p4 "
    assert cluster.direct[1].runs.get(run_thread, run)["status"] == "success"
    if stateless:  # its thread is gone with it, as when it ends in its own process
        assert not cluster.store.exists(f"{KEYS}thread:{run_thread}")
        assert cluster.saver.get(run_thread) is None


def only_run(cluster: Cluster) -> str | None:
    """The one run in the cluster's database, once it is made."""
    found = [key.decode() for key in cluster.store.scan_iter(match=f"{KEYS}run:*")]
    assert len(found) <= 1, found
    return found[0].rsplit(":", 1)[1] if found else None


def test_a_run_whose_process_dies_before_its_turn_starts_again_from_its_input(
    cluster: Cluster, gate: Path,
) -> None:
    # The second run on the thread waits for the first, in the same process, when that dies:
    # it has saved no checkpoint yet, so the worker that claims it runs it with its own input
    # (going on from the thread's last checkpoint would answer the first run's message again).
    thread = cluster.sdk.threads.create()["thread_id"]
    first: list[tuple[str | None, str, Any]] = []
    for part in cluster.sdk.runs.stream(thread, "paced", input=say(f"5 {gate}"),
                                        stream_mode="messages-tuple", stream_resumable=True):
        first.append((part.id, part.event, part.data))
        if tokens(first) == ["p0 "]:
            break  # held at its gate; it goes on without this client
    failed: list[BaseException] = []

    def wait() -> None:
        try:
            cluster.sdk.runs.wait(thread, "paced", input=say("3"), multitask_strategy="enqueue")
        except BaseException as error:  # its process dies under it
            failed.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    runs_key = f"{KEYS}thread-runs:{thread}"
    deadline = time.monotonic() + 30  # only keeps a broken server from hanging the test
    while not (cluster.store.zcard(runs_key) == 2 and cluster.saver.get(thread) is not None):
        assert time.monotonic() < deadline, "the second run was never made"
        time.sleep(0.02)
    second = cluster.store.zrange(runs_key, 1, 1)[0].decode()
    assert cluster.direct[0].runs.get(thread, second)["status"] == "pending"  # waiting its turn
    cluster.kill_runner(second)
    waiter.join(30)
    assert failed, "the wait was answered by a killed process"
    gate.touch()
    final = cluster.sdk.runs.join(thread, second)
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "human", "ai"]
    assert [m["content"] for m in final["messages"][1::2]] == ["p0 p1 p2 p3 p4 ", "p0 p1 p2 "]
    assert cluster.direct[1].runs.get(thread, second)["status"] == "success"


def test_a_streamed_run_left_by_its_client_is_handed_over_by_a_process_that_stops(
    cluster: Cluster, gate: Path,
) -> None:
    thread = cluster.sdk.threads.create()["thread_id"]
    first: list[tuple[str | None, str, Any]] = []
    for part in cluster.sdk.runs.stream(thread, "paced", input=say(f"5 {gate}"),
                                        stream_mode="messages-tuple", stream_resumable=True):
        first.append((part.id, part.event, part.data))
        if tokens(first) == ["p0 "]:
            break  # held at its gate; it goes on without this client
    run = first[0][2]["run_id"]
    deadline = time.monotonic() + 30  # only keeps a broken server from hanging the test
    while cluster.saver.get(thread) is None:
        assert time.monotonic() < deadline, "the run's checkpoint was never saved"
        time.sleep(0.02)
    worker = cluster.store.hget(f"{KEYS}run:{run}", "worker")
    assert worker is not None
    os.kill(int(worker.decode().rsplit(":", 1)[1]), signal.SIGTERM)  # a clean stop
    joined = []
    for part in cluster.direct[1].runs.join_stream(thread, run, last_event_id="-1"):
        joined.append((part.id, part.event, part.data))
        if part.event == "metadata" and part.data["attempt"] == 2:
            gate.touch()
    assert joined[:len(first)] == first
    assert ids(joined) == list(range(1, len(joined) + 1))
    assert [data["attempt"] for _, event, data in joined if event == "metadata"] == [1, 2]
    assert cluster.direct[1].runs.get(thread, run)["status"] == "success"
    messages = cluster.direct[1].threads.get_state(thread)["values"]["messages"]
    assert messages[-1]["content"] == "p0 p1 p2 p3 p4 "


def test_no_move_streamed_keeps_a_streamed_run_with_its_process(
    redis_url: str, tmp_path: Path,
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/7"
    store = redis.Redis.from_url(url)
    store.flushdb()
    with serving(url, tmp_path / "s.log", "--no-move-streamed") as server, get_sync_client(
            url=server, timeout=30) as sdk:
        thread = sdk.threads.create()["thread_id"]
        parts = list(sdk.runs.stream(thread, "paced", input=say("2"),
                                     stream_mode="messages-tuple"))
        fields = store.hgetall(f"{KEYS}run:{parts[0].data['run_id']}")
        assert fields[b"status"] == b"success"
        # Not recorded for another worker to take: its request is not kept, nor is it held.
        assert b"queued" not in fields and b"worker" not in fields
        assert store.xlen(f"{KEYS}held") == 0
    store.close()
