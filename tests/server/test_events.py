"""The in-memory event log: ids, what a reader gets from where, what is kept, who waits."""

from __future__ import annotations

import anyio
import pytest

from rxagent.server._events import MemoryEventLog

pytestmark = pytest.mark.anyio


async def fill(log: MemoryEventLog, count: int) -> None:
    for i in range(count):
        await log.append("e", f"e{i}".encode())


async def test_ids_are_consecutive_and_a_reader_starts_where_asked() -> None:
    log = MemoryEventLog(keep=True)
    await fill(log, 5)
    assert log.last_id == 5
    batch = await log.reader(2).read(0)
    assert [(e.id, e.body) for e in batch.entries] == [(3, b"e2"), (4, b"e3"), (5, b"e4")]
    assert [e.id for e in (await log.reader(0).read(0)).entries] == [1, 2, 3, 4, 5]
    live = log.reader(None)
    assert (await live.read(0)).entries == []
    await log.append("e", b"e5")
    log.close()
    batch = await live.read(0)
    assert [e.id for e in batch.entries] == [6] and batch.done


async def test_a_log_not_kept_drops_what_every_reader_has_read() -> None:
    log = MemoryEventLog(keep=False)
    await fill(log, 3)  # nobody reads: nothing is kept
    late = log.reader(0)
    assert (await late.read(0)).entries == []
    late.close()
    slow, fast = log.reader(None), log.reader(None)
    await fill(log, 3)
    assert len((await fast.read(0)).entries) == 3
    assert len(log._entries) == 3  # the slow reader has not read them
    assert len((await slow.read(0)).entries) == 3
    assert log._entries == []
    kept = MemoryEventLog(keep=True)
    reader = kept.reader(0)
    await fill(kept, 3)
    await reader.read(0)
    assert len(kept._entries) == 3


async def test_the_writer_waits_for_a_reader_that_falls_behind() -> None:
    log = MemoryEventLog(keep=False, max_lag=4)
    reader = log.reader(0)
    await fill(log, 4)
    appended = anyio.Event()

    async def one_more() -> None:
        await log.append("e", b"more")
        appended.set()

    async with anyio.create_task_group() as group:
        group.start_soon(one_more)
        await anyio.wait_all_tasks_blocked()
        assert not appended.is_set()  # four behind: the writer waits
        await reader.read(0)
        await appended.wait()
    # A reader that leaves is not waited for.
    await fill(log, 3)  # four behind again
    reader.close()
    with anyio.fail_after(5):
        await fill(log, 10)


async def test_the_writer_also_waits_for_a_reader_bytes_behind() -> None:
    log = MemoryEventLog(keep=True, max_lag_bytes=1000)
    early = log.reader(0)
    await log.append("e", b"x" * 600)
    appended = anyio.Event()

    async def big() -> None:
        await log.append("e", b"y" * 600)  # 1,200 bytes behind once in
        await log.append("e", b"z" * 10)
        appended.set()

    async with anyio.create_task_group() as group:
        group.start_soon(big)
        await anyio.wait_all_tasks_blocked()
        assert not appended.is_set()  # two events behind, but over 1,000 bytes
        assert log.last_id == 2
        # A reader that joins after the first event is 600 bytes behind, not 1,200: once the
        # early one leaves, the writer goes on.
        late = log.reader(1)
        early.close()
        with anyio.fail_after(5):
            await appended.wait()
        assert [e.id for e in (await late.read(0)).entries] == [2, 3]


async def test_a_batch_counts_as_behind_until_its_reader_reads_again() -> None:
    # The response reads again only once the write of the last batch has returned: until then
    # that batch is still in this process (in the write), so it counts against max_lag_bytes.
    log = MemoryEventLog(keep=False, max_lag_bytes=8)
    reader = log.reader(0)
    await log.append("e", b"1234")
    await log.append("e", b"5678")
    assert len((await reader.read(0)).entries) == 2
    assert log._entries == []  # the batch is the write's now, not the log's
    appended = anyio.Event()

    async def one_more() -> None:
        await log.append("e", b"more")
        appended.set()

    async with anyio.create_task_group() as group:
        group.start_soon(one_more)
        await anyio.wait_all_tasks_blocked()
        assert not appended.is_set()  # the batch being written is 8 bytes behind
        # Reading again says the batch was written: the writer goes on.
        got = (await reader.read(0)).entries
        with anyio.fail_after(5):
            await appended.wait()
    got += (await reader.read(0)).entries
    assert [e.body for e in got] == [b"more"]


async def test_a_read_waits_until_its_timeout_then_returns_nothing() -> None:
    log = MemoryEventLog(keep=True)
    reader = log.reader(None)
    batch = await reader.read(0.01)
    assert batch.entries == [] and not batch.done
    log.close()
    assert (await reader.read(10)).done


async def test_a_live_reader_after_events_nobody_kept_gets_the_next_one() -> None:
    log = MemoryEventLog(keep=False)
    await fill(log, 3)
    reader = log.reader(None)
    await log.append("e", b"next")
    assert [(e.id, e.body) for e in (await reader.read(0)).entries] == [(4, b"next")]


async def test_a_log_fed_by_a_tail_starts_at_its_id_and_takes_a_jump_in_ids() -> None:
    log = MemoryEventLog(keep=False, start=40)
    reader = log.reader(40)
    assert not log.holds_after(39) and log.holds_after(40)
    await log.append_at(41, "e", b"a")
    await log.append_at(45, "e", b"b")  # 42 to 44 were trimmed from the stream
    with pytest.raises(ValueError):
        await log.append_at(45, "e", b"again")
    assert [e.id for e in (await reader.read(0)).entries] == [41, 45]
    # Read by every reader, so dropped: a client at 41 must read 45 elsewhere first.
    assert not log.holds_after(41) and log.holds_after(45)
    late = log.reader(45)
    await log.append("e", b"c")
    assert [e.id for e in (await late.read(0)).entries] == [46]
    assert [e.id for e in (await reader.read(0)).entries] == [46]
