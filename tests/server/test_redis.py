"""Two ``rxagent serve --redis-url`` processes on one real redis-server, driven by the SDK: any
process serves any run, whichever process created it.

The servers are real subprocesses on loopback ports; the redis-server is the session's
(``tests/conftest.py``), which fails rather than skips when ``redis-server`` is missing. A run
that must be caught mid-way is held by a gate: a file the test creates (``redis_agents.paced``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis
import redis.asyncio as aredis
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from rxagent import Agent, create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.checkpoint.redis import RedisSaver
from rxagent.server._events import LogReader
from rxagent.server._redis import RedisEventLog, RedisRunRegistry, RedisThreadStore
from rxagent.server._runs import Run, RunRequest, ThreadBusy
from rxagent.testing import FunctionChatModel

from .processes import rxagent_serve

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["tests.server.redis_agents:echo", "tests.server.redis_agents:paced"]


def say(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


@contextmanager
def serving(redis_url: str, log: Path, *args: str, **env: str) -> Iterator[str]:
    """``rxagent serve --redis-url ARGS`` in a subprocess; its URL once it answers ``/ok``."""
    with rxagent_serve([*TARGETS, "--redis-url", redis_url, *args], cwd=ROOT, log=log,
                       env={"PYTHONPATH": str(ROOT), **env}) as url:
        yield url


@pytest.fixture(scope="module")
def servers(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    # A database of their own, apart from the Redis saver's tests (which empty theirs).
    url = redis_url.rsplit("/", 1)[0] + "/1"
    redis.Redis.from_url(url).flushdb()
    logs = tmp_path_factory.mktemp("servers")
    with ExitStack() as stack:
        yield [stack.enter_context(serving(url, logs / f"server{i}.log")) for i in range(2)]


@pytest.fixture
def clients(servers: list[str]) -> Iterator[list[SyncLangGraphClient]]:
    """An SDK client on each process: ``a, b = clients``. The timeout only keeps a broken
    server from hanging the tests (a cancel that never lands, say)."""
    with ExitStack() as stack:
        yield [stack.enter_context(get_sync_client(url=url, timeout=30)) for url in servers]


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A gate for a ``paced`` run: it holds the run after its first token until it exists."""
    return tmp_path / "open"


def events(parts: Any) -> list[tuple[str | None, str, Any]]:
    return [(part.id, part.event, part.data) for part in parts]


def ids(parts: list[tuple[str | None, str, Any]]) -> list[int]:
    return [int(event_id or 0) for event_id, _, _ in parts]


def tokens(parts: list[tuple[str | None, str, Any]]) -> list[str]:
    return [data[0]["content"] for _, event, data in parts
            if event == "messages" and data[0]["content"]]


def test_a_run_made_on_one_process_is_joined_on_the_other_live_and_after_its_end(
    clients: list[SyncLangGraphClient], gate: Path,
) -> None:
    a, b = clients
    thread = a.threads.create()["thread_id"]
    run = a.runs.create(thread, "paced", input=say(f"300 {gate}"),
                        stream_mode="messages-tuple", stream_resumable=True)
    live = []
    for part in b.runs.join_stream(thread, run["run_id"]):
        live.append((part.id, part.event, part.data))
        if tokens(live) == ["p0 "]:
            # Held by the gate: the run is surely going on while process B streams it.
            assert a.runs.get(thread, run["run_id"])["status"] == "running"
            gate.touch()
    assert live[0][1:] == ("metadata", {"run_id": run["run_id"], "attempt": 1})
    assert ids(live) == list(range(1, len(live) + 1))
    assert tokens(live) == [f"p{i} " for i in range(300)]  # each once, in order
    assert b.runs.get(thread, run["run_id"])["status"] == "success"
    # After the end, from either process: the same events, the same ids.
    for client in (a, b):
        assert events(client.runs.join_stream(thread, run["run_id"])) == live
        assert events(client.runs.join_stream(thread, run["run_id"], last_event_id="-1")) == live


def test_a_join_on_the_other_process_replays_exactly_the_suffix_after_last_event_id(
    clients: list[SyncLangGraphClient],
) -> None:
    a, b = clients
    thread = a.threads.create()["thread_id"]
    # More events than one page of the stream, so that a join reads it in several.
    whole = events(a.runs.stream(thread, "paced", input=say("700"),
                                 stream_mode="messages-tuple", stream_resumable=True))
    run_id = whole[0][2]["run_id"]
    assert ids(whole) == list(range(1, len(whole) + 1))
    for last in (1, 2, 255, 256, 257, len(whole) // 2, len(whole) - 1, len(whole)):
        joined = events(b.runs.join_stream(thread, run_id, last_event_id=str(last)))
        assert joined == whole[last:], last


@pytest.mark.parametrize("through", ["the process running it", "the other process"])
def test_cancelling_through_either_process_stops_the_run(
    clients: list[SyncLangGraphClient], gate: Path, through: str,
) -> None:
    a, b = clients
    thread = a.threads.create()["thread_id"]
    run = a.runs.create(thread, "paced", input=say(f"50 {gate}"), stream_mode="messages-tuple",
                        stream_resumable=True)
    joined = b.runs.join_stream(thread, run["run_id"])
    seen = []
    for part in joined:  # the first token: the run waits at the gate
        seen.append((part.id, part.event, part.data))
        if tokens(seen):
            break
    (a if through == "the process running it" else b).runs.cancel(
        thread, run["run_id"], wait=True)
    seen += events(joined)  # the join ends with the run, without an error frame
    gate.touch()  # too late: the run is over
    assert tokens(seen) == ["p0 "]
    assert [event for _, event, _ in seen if event == "error"] == []
    for client in (a, b):
        assert client.runs.get(thread, run["run_id"])["status"] == "interrupted"
    assert tokens(events(b.runs.join_stream(thread, run["run_id"]))) == ["p0 "]


def test_a_threads_second_run_on_the_other_process_remembers_the_first(
    clients: list[SyncLangGraphClient],
) -> None:
    a, b = clients
    thread = a.threads.create(metadata={"user": "ann"})["thread_id"]
    assert a.runs.wait(thread, "echo", input=say("hello"))["messages"][-1]["content"] == (
        "You said: hello")
    second = b.runs.wait(thread, "echo", input=say("again"))
    assert second["messages"][-1]["content"] == "You said: hello | again"
    assert b.threads.get(thread)["metadata"]["user"] == "ann"
    assert b.threads.get(thread)["status"] == "idle"
    assert [found["thread_id"] for found in b.threads.search(metadata={"user": "ann"})] == [
        thread]
    assert len(a.runs.list(thread)) == 2


def test_a_busy_thread_is_refused_by_the_other_process_and_a_queued_run_waits(
    clients: list[SyncLangGraphClient], gate: Path,
) -> None:
    a, b = clients
    thread = a.threads.create()["thread_id"]
    first = a.runs.create(thread, "paced", input=say(f"5 {gate}"))
    with pytest.raises(httpx.HTTPStatusError) as refused:
        b.runs.create(thread, "paced", input=say("3"))
    assert refused.value.response.status_code == 409
    queued = b.runs.create(thread, "paced", input=say("3"), multitask_strategy="enqueue")
    assert a.runs.get(thread, queued["run_id"])["status"] == "pending"
    gate.touch()
    assert b.runs.join(thread, queued["run_id"])["messages"][-1]["content"] == "p0 p1 p2 "
    assert a.runs.get(thread, first["run_id"])["status"] == "success"
    assert a.runs.get(thread, queued["run_id"])["status"] == "success"


def run_ids_in_history(client: SyncLangGraphClient, thread: str) -> set[str]:
    return {state["metadata"]["run_id"]
            for state in client.threads.get_history(thread, limit=100)}


@pytest.mark.parametrize("how", ["strategy", "cancel"])
def test_a_rollback_through_the_other_process_leaves_the_thread_as_before_the_run(
    clients: list[SyncLangGraphClient], gate: Path, how: str,
) -> None:
    a, b = clients
    thread = a.threads.create()["thread_id"]
    a.runs.wait(thread, "echo", input=say("first"))
    before = [m["content"] for m in b.threads.get_state(thread)["values"]["messages"]]
    held = a.runs.create(thread, "paced", input=say(f"5 {gate}"), stream_mode="messages-tuple",
                         stream_resumable=True)
    seen = []
    for part in b.runs.join_stream(thread, held["run_id"]):  # until it waits at the gate
        seen.append((part.id, part.event, part.data))
        if tokens(seen):
            break
    deadline = time.monotonic() + 30  # only keeps a broken server from hanging the test
    while held["run_id"] not in run_ids_in_history(b, thread):  # its input checkpoint, saved
        assert time.monotonic() < deadline, "the run never saved a checkpoint"
        time.sleep(0.02)
    try:
        if how == "strategy":
            result = b.runs.wait(thread, "echo", input=say("now"),
                                 multitask_strategy="rollback")
            assert result["messages"][-1]["content"] == "You said: first | now"  # type: ignore[index]
        else:
            b.runs.cancel(thread, held["run_id"], action="rollback")
            after = [m["content"] for m in a.threads.get_state(thread)["values"]["messages"]]
            assert after == before
            assert a.threads.get(thread)["status"] == "idle"
    finally:
        gate.touch()
    for client in (a, b):
        with pytest.raises(httpx.HTTPStatusError) as gone:
            client.runs.get(thread, held["run_id"])
        assert gone.value.response.status_code == 404
        assert held["run_id"] not in run_ids_in_history(client, thread)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_background_run_whose_process_is_killed_or_stopped_is_finished_by_another(
    redis_url: str, tmp_path: Path, gate: Path, how: signal.Signals,
) -> None:
    # SIGKILL: the run's lease runs out and another process claims it. SIGTERM: the process
    # stops cleanly and leaves the run in the queue, where another claims it the same way.
    url = redis_url.rsplit("/", 1)[0] + "/3"
    store = redis.Redis.from_url(url)
    store.flushdb()
    with ExitStack() as stack:
        # Two processes with a 1 s lease: either may take the run from the queue. (Heartbeats
        # slower than the clients' timeout, so that a run never finished fails the test.)
        urls = [stack.enter_context(serving(url, tmp_path / f"s{i}.log", "--lease", "1",
                                            RXAGENT_HEARTBEAT_S="60"))
                for i in range(2)]
        sdks = [stack.enter_context(get_sync_client(url=u, timeout=30)) for u in urls]
        thread = sdks[0].threads.create()["thread_id"]
        run = sdks[0].runs.create(thread, "paced", input=say(f"5 {gate}"),
                                  stream_mode="messages-tuple", stream_resumable=True)
        key = f"rxagent:server:run:{run['run_id']}"
        events_key = f"rxagent:server:events:{run['run_id']}"
        saver = stack.enter_context(RedisSaver(url))
        deadline = time.monotonic() + 30  # only keeps a broken server from hanging the test
        # Held at the gate after its first token, with its input checkpoint saved.
        while not (store.xlen(events_key) >= 2 and saver.get(thread) is not None):
            assert time.monotonic() < deadline, "the run never reached its gate"
            time.sleep(0.02)
        worker = store.hget(key, "worker").decode()  # type: ignore[union-attr]
        pid = int(worker.rsplit(":", 1)[1])
        os.kill(pid, how)
        alive = sdks
        while len(alive) != 1:  # until the stopped one has stopped answering
            assert time.monotonic() < deadline, "the process did not stop"
            alive = [sdk for sdk, u in zip(sdks, urls, strict=True) if answers(u)]
        joined = []
        for part in alive[0].runs.join_stream(thread, run["run_id"]):
            joined.append((part.id, part.event, part.data))
            if part.event == "metadata" and part.data["attempt"] == 2:
                gate.touch()  # the new attempt is running: let it finish
        assert ids(joined) == list(range(1, len(joined) + 1))
        assert [data["attempt"] for _, event, data in joined if event == "metadata"] == [1, 2]
        second = joined.index(next(e for e in joined if e[1] == "metadata" and e[2]["attempt"]
                                   == 2))
        assert tokens(joined[:second]) == ["p0 "]  # the first attempt, stopped at its gate
        assert tokens(joined[second:]) == [f"p{i} " for i in range(5)]  # from the checkpoint
        assert alive[0].runs.get(thread, run["run_id"])["status"] == "success"
        messages = alive[0].threads.get_state(thread)["values"]["messages"]
        assert [m["type"] for m in messages] == ["human", "ai"]
        assert messages[-1]["content"] == "p0 p1 p2 p3 p4 "
    store.close()


def test_serve_workers_starts_worker_processes_that_take_from_the_queue_and_stop_with_it(
    redis_url: str, tmp_path: Path,
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/4"
    store = redis.Redis.from_url(url)
    store.flushdb()
    with serving(url, tmp_path / "s.log", "--workers", "2") as server, get_sync_client(
            url=server, timeout=30) as sdk:
        deadline = time.monotonic() + 60  # only keeps a broken command from hanging the test
        while len(consumers(store)) < 3:  # the server and its two workers
            assert time.monotonic() < deadline, consumers(store)
            time.sleep(0.05)
        thread = sdk.threads.create()["thread_id"]
        runs = [sdk.runs.create(thread, "echo", input=say(f"m{i}"),
                                multitask_strategy="enqueue") for i in range(6)]
        for run in runs:
            sdk.runs.join(thread, run["run_id"])
        assert sdk.threads.get_state(thread)["values"]["messages"][-1]["content"] == (
            "You said: " + " | ".join(f"m{i}" for i in range(6)))  # in the order made
        pids = [int(name.rsplit(":", 1)[1]) for name in consumers(store)]
    for pid in pids:  # the server and its workers are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    store.close()


def test_a_worker_takes_at_most_jobs_per_worker_runs_and_leaves_the_rest_to_others(
    redis_url: str, tmp_path: Path,
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/5"
    store = redis.Redis.from_url(url)
    store.flushdb()
    gates = [tmp_path / f"gate{i}" for i in range(2)]
    with ExitStack() as stack:
        first = stack.enter_context(serving(url, tmp_path / "a.log", "--jobs-per-worker", "1"))
        a = stack.enter_context(get_sync_client(url=first, timeout=30))
        runs = []
        for gate in gates:
            thread = a.threads.create()["thread_id"]
            runs.append(a.runs.create(thread, "paced", input=say(f"5 {gate}"),
                                      stream_mode="messages-tuple", stream_resumable=True))
        held = []
        for part in a.runs.join_stream(runs[0]["thread_id"], runs[0]["run_id"]):
            held.append((part.id, part.event, part.data))
            if tokens(held):
                break  # the first run waits at its gate, holding the process's one slot
        key = f"rxagent:server:run:{runs[1]['run_id']}"
        assert store.hget(key, "worker") is None  # no worker has taken the second
        assert a.runs.get(runs[1]["thread_id"], runs[1]["run_id"])["status"] == "pending"
        # A run cancelled while it waits in the queue ends at once, its stream closed.
        thread = a.threads.create()["thread_id"]
        queued = a.runs.create(thread, "paced", input=say("3"), stream_resumable=True)
        a.runs.cancel(thread, queued["run_id"])
        assert a.runs.get(thread, queued["run_id"])["status"] == "interrupted"
        assert [part.event for part in a.runs.join_stream(thread, queued["run_id"])] == [
            "metadata"]
        # Another worker, with a slot free, takes the second run.
        second = stack.enter_context(serving(url, tmp_path / "b.log", "--jobs-per-worker", "1"))
        b = stack.enter_context(get_sync_client(url=second, timeout=30))
        deadline = time.monotonic() + 30  # only keeps a broken server from hanging the test
        while store.hget(key, "worker") is None:
            assert time.monotonic() < deadline, "no worker took the second run"
            time.sleep(0.02)
        workers = {store.hget(f"rxagent:server:run:{run['run_id']}", "worker") for run in runs}
        assert len(workers) == 2  # one run each
        for gate in gates:
            gate.touch()
        for run in runs:
            b.runs.join(run["thread_id"], run["run_id"])
            assert b.runs.get(run["thread_id"], run["run_id"])["status"] == "success"
        assert store.hget(f"rxagent:server:run:{queued['run_id']}", "worker") is None
    store.close()


def test_runs_waiting_for_their_turn_on_a_busy_thread_leave_the_workers_slots_to_others(
    redis_url: str, tmp_path: Path,
) -> None:
    # Two slots: the run on the busy thread holds one; the two queued after it there wait for
    # their turn without one, so a run on another thread is taken and run at once.
    url = redis_url.rsplit("/", 1)[0] + "/8"
    store = redis.Redis.from_url(url)
    store.flushdb()
    gate = tmp_path / "gate"
    with serving(url, tmp_path / "a.log", "--jobs-per-worker", "2") as server, \
            get_sync_client(url=server, timeout=30) as sdk:
        busy = sdk.threads.create()["thread_id"]
        queued = [sdk.runs.create(busy, "paced", input=say(f"3 {gate}"),
                                  multitask_strategy="enqueue", stream_resumable=True,
                                  stream_mode="messages-tuple")
                  for _ in range(3)]
        for part in sdk.runs.join_stream(busy, queued[0]["run_id"], last_event_id="-1"):
            if part.event == "messages":
                break  # the first is running, held at its gate
        deadline = time.monotonic() + 30  # only keeps a broken server from hanging the test
        while not all(store.hget(f"rxagent:server:run:{run['run_id']}", "worker")
                      for run in queued):
            assert time.monotonic() < deadline, "the worker did not take the waiting runs"
            time.sleep(0.02)
        other = sdk.threads.create()["thread_id"]
        done = sdk.runs.create(other, "paced", input=say("2"))
        while sdk.runs.get(other, done["run_id"])["status"] != "success":
            assert time.monotonic() < deadline, "the other thread's run never ran"
            time.sleep(0.02)
        assert [sdk.runs.get(busy, run["run_id"])["status"] for run in queued] == [
            "running", "pending", "pending"]
        gate.touch()
        for run in queued:
            assert sdk.runs.join(busy, run["run_id"])["messages"][-1][  # type: ignore[index]
                "content"] == "p0 p1 p2 "
        assert [sdk.runs.get(busy, run["run_id"])["status"] for run in queued] == [
            "success"] * 3
    store.close()


def consumers(store: redis.Redis) -> list[str]:
    """The processes taking runs from the queue, by the names they give themselves."""
    prefix = "rxagent:server:worker:"
    return [key.decode()[len(prefix):] for key in store.keys(prefix + "*")]


def answers(url: str) -> bool:
    try:
        return bool(httpx.get(f"{url}/ok", timeout=2).status_code == 200)
    except httpx.TransportError:
        return False


# -- one process's registry, in the test's own event loop ---------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's async client runs on asyncio only


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/2")
    await client.flushdb()
    yield client
    await client.aclose()


def held_agent(gate: anyio.Event) -> Agent:
    """Streams ``h0`` to ``h9``, held after the first until ``gate`` is set."""

    async def reply(messages: Any, tools: Any) -> AsyncIterator[str]:
        for i in range(10):
            if i == 1:
                await gate.wait()
            yield f"h{i} "

    return create_agent(FunctionChatModel(reply), []).with_checkpointer(InMemorySaver())


def request(agent: Agent, thread_id: str) -> RunRequest:
    return RunRequest("held", "held", agent, say("go"),  # type: ignore[arg-type]
                      {"configurable": {"thread_id": thread_id}}, ["messages-tuple"],
                      False, True)


async def read_all(reader: LogReader) -> list[int]:
    ids = []
    while True:
        batch = await reader.read(1)
        ids += [entry.id for entry in batch.entries]
        if batch.done:
            return ids


@pytest.mark.anyio
async def test_a_processs_clients_of_a_run_share_one_tail(redis_client: aredis.Redis) -> None:
    gate = anyio.Event()
    async with anyio.create_task_group() as group:
        threads = RedisThreadStore(redis_client)
        runs = RedisRunRegistry(redis_client, group.start_soon, threads)
        await threads.create("t", {})
        run, first = await runs.create("r", "t", request(held_agent(gate), "t"), metadata={},
                                       multitask_strategy="reject", follow=True)
        assert first is not None
        late = runs.reader(run, None)
        whole = [entry.id for entry in (await first.read(0)).entries]
        assert whole == [1]  # from the stream
        live: list[int] = []
        with anyio.fail_after(10):  # the bound only keeps a broken tail from hanging the test
            while runs.tails.attached("r") < 2:  # each goes over to the tail once caught up
                whole += [entry.id for entry in (await first.read(0.01)).entries]
                live += [entry.id for entry in (await late.read(0.01)).entries]
        assert len(runs.tails) == 1
        gate.set()
        whole += await read_all(first)
        live += await read_all(late)
        assert whole == list(range(1, len(whole) + 1))
        assert live and live == whole[-len(live):]
        first.close()
        late.close()
        assert len(runs.tails) == 0  # the last client gone, the tail stops
        assert (await runs.wait(run)).status == "success"
        # Ended: kept for the retention, then gone; the thread is free.
        for key in (runs.keys.events("r"), runs.keys.run("r")):
            assert 0 < await redis_client.pttl(key) <= runs.retention * 1000
        assert await redis_client.get(runs.keys.thread_lock("t")) is None


@pytest.mark.anyio
async def test_processes_refusing_at_once_let_exactly_one_run_on_a_thread(
    redis_client: aredis.Redis,
) -> None:
    gate = anyio.Event()
    agent = held_agent(gate)
    async with anyio.create_task_group() as group:
        # Three "processes": registries of their own, on one Redis.
        threads = RedisThreadStore(redis_client)
        registries = [RedisRunRegistry(redis_client, group.start_soon, threads)
                      for _ in range(3)]
        await threads.create("t", {})
        made: list[Run] = []
        refused = []

        async def attempt(runs: RedisRunRegistry, run_id: str) -> None:
            try:
                made.append((await runs.create(run_id, "t", request(agent, "t"), metadata={},
                                               multitask_strategy="reject", follow=False))[0])
            except ThreadBusy:
                refused.append(run_id)

        async with anyio.create_task_group() as racing:
            for i, runs in enumerate(registries * 2):
                racing.start_soon(attempt, runs, f"r{i}")
        assert len(made) == 1 and len(refused) == 5
        gate.set()
        assert (await registries[0].wait(made[0])).status == "success"
        # The moment the checks cannot see: another process's run has taken the thread's lock
        # but not yet written its record. The lock refuses.
        await redis_client.set(registries[0].keys.thread_lock("t"), "theirs", px=10_000)
        with pytest.raises(ThreadBusy, match="theirs"):
            await registries[1].create("late", "t", request(agent, "t"), metadata={},
                                       multitask_strategy="reject", follow=False)


@pytest.mark.anyio
async def test_a_run_whose_events_cannot_be_written_ends_in_error(
    redis_client: aredis.Redis,
) -> None:
    gate = anyio.Event()
    gate.set()
    async with anyio.create_task_group() as group:
        threads = RedisThreadStore(redis_client)
        runs = RedisRunRegistry(redis_client, group.start_soon, threads)
        await threads.create("t", {})
        # An entry the run's ids cannot come after: its events' XADDs are refused. The run
        # ends in error, and the app's other work goes on (the task group is not torn down).
        await redis_client.xadd(runs.keys.events("r"), {"e": "x", "b": b""}, id="2-0")
        run, _ = await runs.create("r", "t", request(held_agent(gate), "t"), metadata={},
                                   multitask_strategy="reject", follow=False)
        assert (await runs.wait(run)).status == "error"


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["paging", "tail", "before its first read"])
async def test_a_slow_reader_holds_the_run_back_instead_of_losing_trimmed_events(
    redis_client: aredis.Redis, where: str,
) -> None:
    # A client stops reading while it still reads the stream in pages, once it has gone
    # over to the process's tail of the run, or before it has read at all (it had not said
    # how far it was yet: on a loaded machine the run went hundreds of events past it).
    async def reply(messages: Any, tools: Any) -> AsyncIterator[str]:
        for i in range(2000):
            yield f"f{i} "

    agent = create_agent(FunctionChatModel(reply), []).with_checkpointer(InMemorySaver())
    async with anyio.create_task_group() as group:
        threads = RedisThreadStore(redis_client)
        runs = RedisRunRegistry(redis_client, group.start_soon, threads, max_events=40)
        await threads.create("t", {})
        run, reader = await runs.create("r", "t", request(agent, "t"), metadata={},
                                        multitask_strategy="reject", follow=True)
        assert reader is not None and isinstance(run.log, RedisEventLog)
        if where == "before its first read":
            with anyio.fail_after(10):  # only keeps a run never held back from passing
                while not run.log.waiting_for_readers:
                    await anyio.sleep(0.01)
        seen = [entry.id for entry in (await reader.read(1)).entries]
        if where == "tail":
            with anyio.fail_after(10):
                while not runs.tails.attached("r"):
                    seen += [entry.id for entry in (await reader.read(0.01)).entries]
        with anyio.fail_after(10):  # the bound only keeps a run never held back from passing
            while not run.log.waiting_for_readers:  # the reader stopped reading: the run waits
                await anyio.sleep(0.01)
        assert run.status == "running"
        # It has not gone more than max_events past where the reader is.
        readers = await redis_client.hgetall(runs.keys.readers("r"))
        slowest = min(int(value.split(b":")[0]) for value in readers.values())
        assert slowest >= seen[-1]  # a tail reads ahead of its clients, a little
        newest = (await redis_client.xrevrange(runs.keys.events("r"), count=1))[0][0]
        assert int(newest.split(b"-")[0]) - slowest <= 40
        # Nothing it has not read was trimmed away: every event comes, once, in order.
        seen += await read_all(reader)
        reader.close()
        assert seen == list(range(1, len(seen) + 1))
        assert (await runs.wait(run)).status == "success"
        assert len(seen) > 2000  # metadata, 2000 tokens, values
        with anyio.fail_after(10):
            while await redis_client.hlen(runs.keys.readers("r")):  # its readers have left
                await anyio.sleep(0.01)


def flood_agent(count: int) -> Agent:
    async def reply(messages: Any, tools: Any) -> AsyncIterator[str]:
        for i in range(count):
            yield f"f{i} "

    return create_agent(FunctionChatModel(reply), []).with_checkpointer(InMemorySaver())


@pytest.mark.anyio
async def test_a_client_between_connections_keeps_its_place_and_its_join_gets_every_event(
    redis_client: aredis.Redis,
) -> None:
    # The client leaves mid-run (its connection dropped) and joins again with the last id it
    # got: the run does not go max_events past where it left, so nothing it has not read is
    # trimmed, and the join takes over the place kept for it.
    async with anyio.create_task_group() as group:
        threads = RedisThreadStore(redis_client)
        runs = RedisRunRegistry(redis_client, group.start_soon, threads, max_events=40)
        await threads.create("t", {})
        run, reader = await runs.create("r", "t", request(flood_agent(2000), "t"), metadata={},
                                        multitask_strategy="reject", follow=True)
        assert reader is not None and isinstance(run.log, RedisEventLog)
        seen: list[int] = []
        while len(seen) < 3:
            seen += [entry.id for entry in (await reader.read(1)).entries]
        with anyio.fail_after(10):
            while not runs.tails.attached("r"):  # gone over to the process's tail
                seen += [entry.id for entry in (await reader.read(0.01)).entries]
        reader.close()  # the connection drops
        key = runs.keys.readers("r")
        with anyio.fail_after(10):  # only keeps a place never kept from hanging the test
            while not (kept := [value for name, value in (await redis_client.hgetall(key)).items()
                                if name.startswith(b"left:")]):
                await anyio.sleep(0.01)
        assert [int(value.split(b":")[0]) for value in kept] == [seen[-1]]
        with anyio.fail_after(10):
            while not (run.log.waiting_for_readers and len(await redis_client.hkeys(key)) == 1):
                await anyio.sleep(0.01)  # held back by the place kept alone
        newest = (await redis_client.xrevrange(runs.keys.events("r"), count=1))[0][0]
        assert int(newest.split(b"-")[0]) - seen[-1] <= 40
        # Back, having got one event less than was sent (lost in transit).
        rejoined = runs.reader(run, seen[-2])
        seen = seen[:-1] + await read_all(rejoined)
        rejoined.close()
        assert seen == list(range(1, len(seen) + 1))
        assert len(seen) > 2000  # metadata, 2000 tokens, values
        assert not [name for name in await redis_client.hkeys(runs.keys.readers("r"))
                    if name.startswith(b"left:")]  # taken over by the join
        assert (await runs.wait(run)).status == "success"


@pytest.mark.anyio
async def test_a_client_that_never_comes_back_holds_the_run_back_for_a_lease_at_most(
    redis_client: aredis.Redis,
) -> None:
    async with anyio.create_task_group() as group:
        threads = RedisThreadStore(redis_client)
        runs = RedisRunRegistry(redis_client, group.start_soon, threads, max_events=40,
                                lease=1)
        await threads.create("t", {})
        run, reader = await runs.create("r", "t", request(flood_agent(500), "t"), metadata={},
                                        multitask_strategy="reject", follow=True)
        assert reader is not None and isinstance(run.log, RedisEventLog)
        await reader.read(1)
        reader.close()
        with anyio.fail_after(10):  # only keeps a run never held back from passing
            while not run.log.waiting_for_readers:
                await anyio.sleep(0.01)
        with anyio.fail_after(10):  # the place kept goes stale after the lease: the run ends
            assert (await runs.wait(run)).status == "success"
        # A client that had read the run's end keeps no place.
        run, reader = await runs.create("r2", "t", request(flood_agent(3), "t"), metadata={},
                                        multitask_strategy="reject", follow=True)
        assert reader is not None
        await read_all(reader)
        reader.close()
        await anyio.sleep(0.1)
        assert not await redis_client.hkeys(runs.keys.readers("r2"))


@pytest.mark.anyio
async def test_a_worker_holds_at_most_ten_runs_per_slot_waiting_for_their_turn(
    redis_client: aredis.Redis,
) -> None:
    # Two slots: the run on the thread holds one; the worker takes more while the other is
    # free, each of which must wait for its turn there and so holds none, up to twenty (they
    # each poll); the rest stay in the queue for any worker.
    gate = anyio.Event()
    agent = held_agent(gate)
    async with anyio.create_task_group() as group:
        threads = RedisThreadStore(redis_client)
        runs = RedisRunRegistry(redis_client, group.start_soon, threads, graphs={"held": agent},
                                jobs_per_worker=2)
        group.start_soon(runs.serve)
        await threads.create("t", {})
        made = [(await runs.create(f"r{i:02}", "t", request(agent, "t"), metadata={},
                                   multitask_strategy="enqueue", follow=False,
                                   background=True))[0] for i in range(23)]
        with anyio.fail_after(10):  # only keeps a worker that never takes them from hanging
            while len(runs._waiting_turn) < 20 or (await runs.get("r00")).status != "running":
                await anyio.sleep(0.01)
        await anyio.sleep(0.3)  # time to take more, were it to
        workers = [await redis_client.hget(runs.keys.run(run.run_id), "worker") for run in made]
        assert [worker is not None for worker in workers] == [True] * 21 + [False] * 2
        assert len(runs._waiting_turn) == 20
        gate.set()
        for run in made:
            with anyio.fail_after(10):
                assert (await runs.wait(run)).status == "success"
        group.cancel_scope.cancel()
