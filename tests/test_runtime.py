"""The demand signal and the async-producer Observable."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import pytest
import reactivex.operators as ops

from rxagent._demand import Demand  # the demand unit, on purpose
from rxagent._fast_rx import observable_from_async


def test_stop_blocking_lets_blocked_threads_go_but_keeps_the_demand_held() -> None:
    demand = Demand()
    demand.hold()
    answers: list[bool] = []
    waiting = threading.Thread(target=lambda: answers.append(demand.wait_blocking()))
    waiting.start()
    while not demand._blocked:  # the thread is registered as blocked
        waiting.join(0.001)
    demand.stop_blocking(threading.get_ident())
    waiting.join(10)
    assert answers == [False]
    assert demand.wait_blocking() is False, "and later waits return at once"
    assert not demand.ready, "producers on a loop stay held"


def test_demand_is_ready_until_held_and_counts_holds() -> None:
    demand = Demand()
    assert demand.ready
    demand.hold()
    demand.hold()
    assert not demand.ready
    demand.release()
    assert not demand.ready, "one hold is still in place"
    demand.release()
    assert demand.ready
    demand.release()  # an extra release is ignored, not negative
    demand.hold()
    assert not demand.ready


def test_call_when_ready_runs_now_or_on_release() -> None:
    demand = Demand()
    calls: list[str] = []
    demand.call_when_ready(lambda: calls.append("now"))
    demand.hold()
    demand.call_when_ready(lambda: calls.append("later"))
    assert calls == ["now"]
    demand.release()
    assert calls == ["now", "later"]


def test_linked_upstream_is_held_while_any_downstream_is() -> None:
    shared = Demand()
    first, second = Demand(), Demand()
    first.link_upstream(shared)
    second.link_upstream(shared)
    first.hold()
    second.hold()
    first.release()
    assert not shared.ready, "the second consumer still holds the shared run"
    second.release()
    assert shared.ready
    first.hold()
    first.unlink_upstream(shared)
    assert shared.ready, "unlinking withdraws the hold it placed"


def test_wait_blocking_returns_when_released_from_another_thread() -> None:
    demand = Demand()
    demand.hold()
    released = threading.Timer(0.01, demand.release)
    released.start()
    assert demand.wait_blocking(timeout=10)
    assert demand.ready


@pytest.mark.anyio
async def test_wait_resumes_when_released_from_another_thread() -> None:
    demand = Demand()
    demand.hold()
    threading.Timer(0.01, demand.release).start()
    with anyio.fail_after(10):
        await demand.wait()
    assert demand.ready


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
