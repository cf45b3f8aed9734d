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


@pytest.mark.anyio
async def test_a_wait_at_most_gives_up_unset_and_a_later_set_is_harmless() -> None:
    wakeup = Wakeup()
    with anyio.fail_after(5):
        await wakeup.wait_at_most(0.01)
    assert not wakeup.is_set()
    wakeup.set()
    with anyio.fail_after(5):
        await wakeup.wait_at_most(60)  # set already: through at once
    assert wakeup.is_set()


@pytest.mark.anyio
async def test_a_set_ends_a_wait_at_most_before_its_time() -> None:
    wakeup = Wakeup()

    async def set_soon() -> None:
        await anyio.wait_all_tasks_blocked()
        wakeup.set()

    with anyio.fail_after(5):  # the wait is for a minute: only the set ends it in time
        async with anyio.create_task_group() as group:
            group.start_soon(set_soon)
            await wakeup.wait_at_most(60)
    assert wakeup.is_set()
