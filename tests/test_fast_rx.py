"""Async producers as cold Observables: one run per subscription, errors last, dispose cancels."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import pytest
import reactivex.operators as ops

from rxagent._fast_rx import observable_from_async  # the private unit itself, on purpose
from rxagent.chat_models import Demand


def _counting_producer(
    count: int, log: list[str]
) -> Callable[[Callable[[int], None], Demand], object]:
    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        log.append("start")
        for i in range(count):
            if not demand.ready:
                await demand.wait()
            on_next(i)
        log.append("end")

    return produce


def test_each_subscription_is_a_new_run_on_the_background_loop() -> None:
    log: list[str] = []
    source = observable_from_async(_counting_producer(5, log))
    assert log == [], "cold: nothing runs before a subscription"
    first = source.pipe(ops.to_list()).run()
    second = source.pipe(ops.to_list()).run()
    assert first == second == [0, 1, 2, 3, 4]
    assert log == ["start", "end", "start", "end"]


def test_error_arrives_after_every_item_before_it() -> None:
    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        on_next(1)
        on_next(2)
        raise ValueError("boom")

    seen: list[object] = []
    done = threading.Event()
    observable_from_async(produce).subscribe(
        seen.append, lambda e: (seen.append(e), done.set()), done.set
    )
    assert done.wait(10)
    assert seen[:2] == [1, 2]
    assert isinstance(seen[2], ValueError) and str(seen[2]) == "boom"


@pytest.mark.anyio
async def test_dispose_cancels_the_producer() -> None:
    started = anyio.Event()
    cancelled = anyio.Event()

    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        on_next(0)
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    seen: list[object] = []
    subscription = observable_from_async(produce).subscribe(seen.append, seen.append)
    with anyio.fail_after(10):
        await started.wait()
        subscription.dispose()
        await cancelled.wait()
    assert seen == [0], "a cancelled run neither completes nor errors"
