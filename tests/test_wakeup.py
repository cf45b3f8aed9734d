"""``_loops.Wakeup``: the one-shot wake-up a paused run waits on, under asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from rxagent._loops import Wakeup


@pytest.mark.anyio
async def test_a_set_before_the_wait_lets_it_through() -> None:
    wakeup = Wakeup()
    wakeup.set()
    with anyio.fail_after(5):
        await wakeup.wait()
    assert wakeup.is_set()


@pytest.mark.anyio
async def test_a_set_wakes_the_waiting_task() -> None:
    wakeup = Wakeup()
    woken: list[bool] = []

    async def wait() -> None:
        await wakeup.wait()
        woken.append(True)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            assert woken == []  # it waits until set
            wakeup.set()
            wakeup.set()  # a second set changes nothing
    assert woken == [True]


@pytest.mark.anyio
async def test_a_cancelled_wait_ends_and_a_later_set_is_harmless() -> None:
    wakeup = Wakeup()
    with anyio.fail_after(5):
        with anyio.move_on_after(0.01) as scope:
            await wakeup.wait()
    assert scope.cancelled_caught
    assert not wakeup.is_set()
    wakeup.set()  # the cancelled wait's future is done already: no InvalidStateError
    with anyio.fail_after(5):
        await wakeup.wait()
