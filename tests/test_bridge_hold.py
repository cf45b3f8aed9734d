"""An async iterator's consumer can hold the producers back itself (``hold``/``release``), as
the server's run does while its slowest client is behind: the run stops at the item it is on
instead of filling the buffer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from rxagent import from_async_iterable, to_async_iterator

pytestmark = pytest.mark.anyio


async def test_a_held_iterator_pulls_nothing_more_until_released() -> None:
    pulled = 0

    async def numbers() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(200):
            pulled += 1
            yield i

    async with to_async_iterator(from_async_iterable(numbers()), max_buffer=16) as items:
        taken = [await items.__anext__() for _ in range(40)]  # the window is 16 by now
        await anyio.wait_all_tasks_blocked()
        items.hold()
        at_hold = pulled
        assert at_hold == len(taken) + items.pending()
        # Taking what is buffered would let the producer go at half the window; held, it
        # stays where it is.
        while items.pending():
            taken.append(await items.__anext__())
        await anyio.wait_all_tasks_blocked()
        assert pulled <= at_hold + 1  # at most the one it was making
        assert items.pending() == pulled - len(taken)
        items.release()
        taken += [item async for item in items]  # to the end: the generator is closed here
    assert taken == list(range(200))
