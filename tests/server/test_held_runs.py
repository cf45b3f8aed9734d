"""A run whose clients fall behind stops where it is: the log holds the run's producer back
(``hold_while_waiting``) and writes what was already made, so a paused stream keeps its frames
in the log and next to nothing upstream."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from rxagent import create_agent
from rxagent.server._events import MemoryEventLog
from rxagent.server._runs import Run, RunRequest, execute
from rxagent.testing import FunctionChatModel

pytestmark = pytest.mark.anyio


class Producer:
    """A stand-in for the run's bridge: its holds, and the items it has made."""

    def __init__(self) -> None:
        self.holds = 0

    def hold(self) -> None:
        self.holds += 1

    def release(self) -> None:
        self.holds -= 1

    def pending(self) -> int:
        return 0


async def test_the_log_holds_its_producer_while_a_reader_is_behind() -> None:
    log = MemoryEventLog(keep=False)
    producer = Producer()
    log.hold_while_waiting(producer, max_lag_bytes=10)
    reader = log.reader(0)
    await log.append("e", b"12345")
    assert producer.holds == 0  # 5 bytes behind: room still
    with anyio.fail_after(5):
        await log.append("e", b"67890")
        assert producer.holds == 1  # behind now: the producer is stopped at once
        # What the producer had made before it stopped is written, not waited for.
        await log.append("e", b"a")
        await log.append("e", b"b")
    assert producer.holds == 1
    got = (await reader.read(0)).entries  # the batch counts as behind until read again
    assert producer.holds == 1
    await log.append("e", b"c" * 10)
    got += (await reader.read(0)).entries
    assert producer.holds == 1  # "c" is still being written
    got += (await reader.read(0)).entries
    assert producer.holds == 0  # caught up: let go
    assert [entry.body for entry in got] == [b"12345", b"67890", b"a", b"b", b"c" * 10]
    # A reader that leaves lets go too.
    await log.append("e", b"x" * 20)
    assert producer.holds == 1
    reader.close()
    assert producer.holds == 0


async def test_a_paused_run_stops_its_model_at_the_part_it_is_on() -> None:
    pulled = 0

    def reply(messages: Any, tools: Any) -> Any:
        nonlocal pulled
        for _ in range(2000):
            pulled += 1
            yield "token "

    agent = create_agent(FunctionChatModel(reply), [])
    request = RunRequest(
        graph_id="a", assistant_id="a", agent=agent,
        input={"messages": [{"role": "user", "content": "go"}]}, config={},
        modes=["messages-tuple"], subgraphs=False, resumable=False)
    log = MemoryEventLog(keep=False)
    run = Run("r", "t", request, {}, "reject", log)
    reader = log.reader(0)  # reads once, then never again: a client that stopped reading
    with anyio.fail_after(10):
        await _pause_then_leave(run, reader, log, lambda: pulled)
    assert pulled == 2000 and run.status == "success"


async def _pause_then_leave(run: Run, reader: Any, log: MemoryEventLog, pulled: Any) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(execute, run)
        await anyio.wait_all_tasks_blocked()
        await reader.read(0)
        await anyio.wait_all_tasks_blocked()
        # What the model made is in the log or in the reader's batch (as frames), but for the
        # part the run is on and the one the model was making: no bridge of parts on top.
        assert 0 < pulled() < 2000
        assert pulled() - log.last_id <= 2
        reader.close()  # the client left: the run goes on to its end
