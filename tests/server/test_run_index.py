"""The in-memory run registry's indexes: a thread's runs, newest first, and expiry in the order
runs ended, kept right through deletes, deleted threads and retention."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from rxagent.server._runs import MemoryRunRegistry, Run, RunRequest
from rxagent.server._threads import MemoryThreadStore

from .agents import echo_agent

pytestmark = pytest.mark.anyio


def _registry(retention: float) -> MemoryRunRegistry:
    def spawn(work: Callable[[], Any]) -> None:
        pass  # never executed: the runs are ended by hand

    return MemoryRunRegistry(spawn, MemoryThreadStore(), retention=retention)


async def _create(runs: MemoryRunRegistry, run_id: str, thread_id: str) -> Run:
    request = RunRequest("echo", "echo", echo_agent(), {}, {}, ["values"], False, False)
    run, _ = await runs.create(run_id, thread_id, request, metadata={},
                               multitask_strategy="enqueue", follow=False)
    return run


async def _end(runs: MemoryRunRegistry, run: Run, at: float) -> None:
    run.ended_at = at
    run.end()
    await runs._ended(run)


async def test_a_threads_runs_come_newest_first_and_only_its_own() -> None:
    runs = _registry(retention=600)
    a1 = await _create(runs, "a1", "a")
    b1 = await _create(runs, "b1", "b")
    a2 = await _create(runs, "a2", "a")
    assert await runs.on_thread("a") == [a2, a1]
    assert await runs.on_thread("b") == [b1]
    assert await runs.on_thread("c") == []


async def test_runs_expire_in_the_order_they_ended() -> None:
    runs = _registry(retention=10)
    now = anyio.current_time()
    old = await _create(runs, "old", "t")
    recent = await _create(runs, "recent", "t")
    running = await _create(runs, "running", "u")
    await _end(runs, old, now - 11)
    await _end(runs, recent, now - 1)
    assert await runs.get("old") is None
    assert await runs.get("recent") is recent
    assert await runs.get("running") is running
    assert await runs.on_thread("t") == [recent]


async def test_a_deleted_run_or_thread_leaves_no_trace_for_expiry() -> None:
    runs = _registry(retention=10)
    now = anyio.current_time()
    gone = await _create(runs, "gone", "t")
    await _end(runs, gone, now - 11)
    await runs.delete(gone)
    again = await _create(runs, "again", "t")  # expiry pops the deleted run, and keeps this
    assert await runs.on_thread("t") == [again]
    await _end(runs, again, now - 11)
    await runs.forget_thread("t")
    fresh = await _create(runs, "fresh", "t")
    assert await runs.on_thread("t") == [fresh]
    assert await runs.get("again") is None
