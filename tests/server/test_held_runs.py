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
    log.hold_while_waiting(producer, max_lag_bytes=10, batch_lag_bytes=10)
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


async def test_a_reader_still_writing_its_batch_holds_the_run_sooner() -> None:
    log = MemoryEventLog(keep=False)
    producer = Producer()
    log.hold_while_waiting(producer, max_lag_bytes=10, batch_lag_bytes=40)
    reader = log.reader(0)
    # The reader waits for events (a fast client): the run makes a batch's worth first.
    for _ in range(39):
        await log.append("e", b"x")
    assert producer.holds == 0
    await log.append("e", b"x")
    assert producer.holds == 1
    assert len((await reader.read(0)).entries) == 40
    assert producer.holds == 1  # the batch counts as behind until it is written
    assert (await reader.read(0)).entries == []  # written, and waiting for more: let go
    assert producer.holds == 0
    # While the reader writes a batch (a client slow to take it), the run stops at the
    # smaller bound: the 20 bytes being written count, so one event more is too many.
    for _ in range(20):
        await log.append("e", b"y")
    assert len((await reader.read(0)).entries) == 20
    assert producer.holds == 0
    await log.append("e", b"z")
    assert producer.holds == 1
    assert len((await reader.read(0)).entries) == 1  # the 20 were written: let go
    assert producer.holds == 0
    reader.close()
    log.close()


async def test_by_default_a_reader_writing_its_batch_stops_the_run_at_once() -> None:
    # A slow client's stream keeps no frames made ahead of its write: the run stops at the
    # part it is on, and goes on once the reader comes back for more.
    log = MemoryEventLog(keep=False)
    producer = Producer()
    log.hold_while_waiting(producer)
    reader = log.reader(0)
    await log.append("e", b"x")
    assert len((await reader.read(0)).entries) == 1  # being written from now on
    assert producer.holds == 0
    await log.append("e", b"y")
    assert producer.holds == 1
    assert len((await reader.read(0)).entries) == 1  # "x" was written: let go
    assert producer.holds == 0
    reader.close()
    log.close()


async def test_runs_in_flight_share_the_batch_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MemoryEventLog, "_in_flight", 0)
    monkeypatch.setattr("rxagent.server._events.BATCH_BUDGET_BYTES", 80)
    logs = [MemoryEventLog(keep=False) for _ in range(9)]
    producers = [Producer() for _ in logs]
    readers = [log.reader(0) for log in logs]

    async def batch(log: MemoryEventLog, producer: Producer) -> int:
        """The bytes the log takes before it holds its producer back."""
        made = 0
        while not producer.holds:
            await log.append("e", b"x")
            made += 1
        return made

    bounds = {"max_lag_bytes": 0, "batch_lag_bytes": 40, "min_batch_bytes": 10}
    logs[0].hold_while_waiting(producers[0], **bounds)
    assert await batch(logs[0], producers[0]) == 40  # alone: its own bound
    for log, producer in zip(logs[1:3], producers[1:3], strict=True):
        log.hold_while_waiting(producer, **bounds)
    assert await batch(logs[1], producers[1]) == 80 // 3  # three in flight: a third each
    for log, producer in zip(logs[3:], producers[3:], strict=True):
        log.hold_while_waiting(producer, **bounds)
    assert await batch(logs[3], producers[3]) == 10  # never under the smallest batch
    for log in logs[:8]:
        log.close()  # ended runs leave the budget to those still in flight
    await readers[8].read(0)
    await readers[8].read(0)  # nothing in flight for it any more
    assert await batch(logs[8], producers[8]) == 40


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


async def test_a_reader_that_starts_past_a_tail_is_not_behind_by_what_it_had() -> None:
    # A Redis tail's log starts at 1; its client read up to 24 in pages, elsewhere. Events 2
    # to 24 reach the tail's log after the client has joined it: they are not what the client
    # is behind by, or the tail would wait for it there and never say it has moved on.
    log = MemoryEventLog(keep=False, start=1, max_lag_bytes=4096)
    reader = log.reader(24)
    with anyio.fail_after(5):
        for event_id in range(2, 25):
            await log.append_at(event_id, "e", b"x" * 1000)
        for event_id in range(25, 29):  # 4,000 bytes it has not read: room still
            await log.append_at(event_id, "e", b"x" * 1000)
    assert [entry.id for entry in (await reader.read(0)).entries] == [25, 26, 27, 28]
    reader.close()
