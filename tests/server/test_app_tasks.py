"""The app's tasks (``_tasks.AppTasks``): started from anywhere in the app, cancelled together,
waited for on the way out; a failing one is logged and leaves the others running."""

from __future__ import annotations

import logging

import anyio
import pytest

from rxagent.server._tasks import AppTasks

pytestmark = pytest.mark.anyio


async def test_cancel_stops_every_task_and_leaving_waits_for_their_ends() -> None:
    ended: list[str] = []
    reached: list[str] = []

    async def late() -> None:
        await anyio.sleep(0)
        reached.append("late")

    async def runs_until_cancelled(name: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)  # its own clean-up, which the exit waits for
            ended.append(name)

    with anyio.fail_after(5):
        async with AppTasks() as tasks:
            tasks.start_soon(lambda: runs_until_cancelled("a"))
            tasks.start_soon(lambda: runs_until_cancelled("b"))
            await anyio.wait_all_tasks_blocked()
            assert ended == []
            tasks.cancel()
            tasks.start_soon(late)  # cancelled at once: it never gets past a checkpoint
    assert sorted(ended) == ["a", "b"]
    assert reached == []


async def test_leaving_without_cancel_waits_for_the_tasks_to_finish() -> None:
    done: list[int] = []

    async def work(i: int) -> None:
        await anyio.sleep(0.01 * i)
        done.append(i)

    with anyio.fail_after(5):
        async with AppTasks() as tasks:
            for i in range(3):
                tasks.start_soon(lambda i=i: work(i))  # type: ignore[misc]
    assert sorted(done) == [0, 1, 2]


async def test_a_failing_task_is_logged_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    async def fails() -> None:
        raise RuntimeError("a bug in a run")

    async def goes_on() -> None:
        await anyio.sleep(0.05)
        done.append("other")

    with anyio.fail_after(5), caplog.at_level(logging.ERROR, "rxagent.server"):
        async with AppTasks() as tasks:
            tasks.start_soon(goes_on)
            tasks.start_soon(fails)
    assert done == ["other"]
    assert any(record.exc_info and "a bug in a run" in str(record.exc_info[1])
               for record in caplog.records)
