"""Async producers as cold Observables: one run per subscription, errors last, dispose cancels."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import anyio
import pytest
import reactivex.operators as ops
import sniffio

from rxagent._demand import subscription_demand
from rxagent._fast_rx import consume, observable_from_async  # the private unit, on purpose
from rxagent.chat_models import Demand
from rxagent.operators import share


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


# -- consume(): the producer run in the consumer's own task ---------------------------------


def _task() -> object:
    """The running task, under asyncio or trio."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_task()
    return asyncio.current_task()


@pytest.mark.anyio
async def test_consume_runs_the_producer_in_its_own_task_with_its_demand() -> None:
    tasks: list[object] = []
    demands: list[Demand | None] = []

    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        tasks.append(_task())
        demands.append(subscription_demand.get())  # what a nested subscription inherits
        for i in range(3):
            on_next(i)

    seen: list[int] = []
    with anyio.fail_after(5):
        await consume(observable_from_async(produce).pipe(ops.map(lambda i: i * 10)),
                      seen.append)
    assert seen == [0, 10, 20]
    assert tasks == [_task()]  # a task less per model call, per served run
    assert demands[0] is not None and subscription_demand.get() is None


@pytest.mark.anyio
async def test_consume_raises_the_error_of_a_producer_it_runs_after_its_items() -> None:
    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        on_next(1)
        raise ValueError("boom")

    seen: list[int] = []
    with anyio.fail_after(5), pytest.raises(ValueError, match="boom"):
        await consume(observable_from_async(produce), seen.append)
    assert seen == [1]


@pytest.mark.anyio
async def test_an_operator_that_disposes_early_cancels_the_producer_run_in_place() -> None:
    cancelled: list[bool] = []

    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        try:
            for i in range(1_000_000):
                on_next(i)
                await anyio.sleep(0)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    seen: list[int] = []
    with anyio.fail_after(5):
        await consume(observable_from_async(produce).pipe(ops.take(3)), seen.append)
    assert seen == [0, 1, 2]
    assert cancelled == [True]
    await anyio.sleep(0)  # the consumer itself goes on: only the producer was cancelled


@pytest.mark.anyio
async def test_a_shared_producer_runs_in_a_task_of_its_own() -> None:
    tasks: list[object] = []

    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        tasks.append(_task())
        on_next(1)

    seen: list[int] = []
    with anyio.fail_after(5):
        await consume(observable_from_async(produce).pipe(share()), seen.append)
    assert seen == [1]
    assert tasks and tasks[0] is not _task()  # it must outlive any one subscriber


def test_a_fast_observable_makes_its_lock_only_for_an_operator_that_takes_it() -> None:
    async def produce(on_next: Callable[[int], None], demand: Demand) -> None:
        for i in range(3):
            on_next(i)

    source = observable_from_async(produce)
    assert "_lock" not in vars(source)  # a served run's chain keeps five: none made
    # element_at_or_default takes its source's lock.
    assert source.pipe(ops.element_at_or_default(1, -1)).run() == 1
    assert source.lock is source.lock
