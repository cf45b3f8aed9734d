"""``jobs_per_worker``: a process runs at most that many background runs at once; the others
wait, ``pending``, in the order they were made. Streamed and awaited runs do not wait. (On
Redis, with workers in other processes: ``test_redis.py``.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from rxagent import UsageError
from rxagent.server import create_app

from .agents import echo_agent, gated_agent, new_gate
from .conftest import ServerThread
from .test_runs import eventually, say


@pytest.fixture
def client() -> Iterator[SyncLangGraphClient]:
    app = create_app({"echo": echo_agent(), "gated": gated_agent(3)}, jobs_per_worker=2)
    with ServerThread(app) as server, get_sync_client(url=server.url, timeout=30) as sdk:
        yield sdk


def test_background_runs_beyond_the_limit_wait_for_a_free_slot_in_order(
    client: SyncLangGraphClient,
) -> None:
    gates = [new_gate() for _ in range(4)]
    runs = []
    for gate in gates:
        thread = client.threads.create()["thread_id"]
        runs.append(client.runs.create(thread, "gated", input=say(gate.key)))
    assert gates[0].started.wait(10) and gates[1].started.wait(10)
    # A streamed and an awaited run are not queued behind them.
    thread = client.threads.create()["thread_id"]
    assert [part.event for part in client.runs.stream(thread, "echo", input=say("hi"))] == [
        "metadata", "values", "values"]
    assert client.runs.wait(thread, "echo", input=say("again"))["messages"][-1][  # type: ignore[index]
        "content"] == "You said: hi | again"
    status = [client.runs.get(run["thread_id"], run["run_id"])["status"] for run in runs]
    assert status == ["running", "running", "pending", "pending"]
    assert not gates[2].started.is_set() and not gates[3].started.is_set()
    # A slot freed goes to the run made first.
    gates[1].open()
    assert gates[2].started.wait(10)
    assert client.runs.join(runs[1]["thread_id"], runs[1]["run_id"])["messages"][-1][  # type: ignore[index]
        "content"] == "g0 g1 g2 "
    assert client.runs.get(runs[3]["thread_id"], runs[3]["run_id"])["status"] == "pending"
    # A waiting run can be cancelled; it never takes a slot.
    client.runs.cancel(runs[3]["thread_id"], runs[3]["run_id"], wait=True)
    assert client.runs.get(runs[3]["thread_id"], runs[3]["run_id"])["status"] == "interrupted"
    assert gates[3].produced == 0
    for gate in gates:
        gate.open()
    for run in runs[:3]:
        eventually(lambda run=run: client.runs.get(run["thread_id"], run["run_id"])["status"]
                   == "success", "the run finishes")


def test_runs_waiting_for_their_turn_on_a_busy_thread_leave_the_slots_to_other_threads(
    client: SyncLangGraphClient,
) -> None:
    # Two slots: one run on the busy thread holds one; the two queued after it on that thread
    # wait for their turn without one, so a run on another thread gets the other at once.
    gates = [new_gate() for _ in range(3)]
    busy = client.threads.create()["thread_id"]
    queued = [client.runs.create(busy, "gated", input=say(gate.key),
                                 multitask_strategy="enqueue") for gate in gates]
    assert gates[0].started.wait(10)
    other = client.threads.create()["thread_id"]
    done = client.runs.create(other, "echo", input=say("hi"))
    eventually(lambda: client.runs.get(other, done["run_id"])["status"] == "success",
               "the run on the other thread ends while the busy thread's runs wait")
    assert [client.runs.get(busy, run["run_id"])["status"] for run in queued] == [
        "running", "pending", "pending"]
    for gate in gates:
        gate.open()
    assert [client.runs.join(busy, run["run_id"])["messages"][-1][  # type: ignore[index]
        "content"] for run in queued] == ["g0 g1 g2 "] * 3
    assert [gate.produced for gate in gates] == [3, 3, 3]


def test_jobs_per_worker_is_at_least_one() -> None:
    with pytest.raises(UsageError, match="jobs_per_worker"):
        create_app({"echo": echo_agent()}, jobs_per_worker=0)
