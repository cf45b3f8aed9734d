"""backpressure(): what each strategy keeps, that "pause" holds the run's producers, and what
``statistics()`` tells of the buffers, as anyio's memory streams tell of theirs."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import reactivex
from reactivex import abc
from reactivex.scheduler import ThreadPoolScheduler
from reactivex.testing import TestScheduler

from rxagent import BufferOverflowError, UsageError, create_agent, to_async_iterator
from rxagent import operators as rxo
from rxagent._demand import subscription_demand  # how a sink passes its demand up, on purpose
from rxagent.chat_models import Demand
from rxagent.messages import AIMessageChunk
from rxagent.operators import BackpressureStatistics
from rxagent.testing import FunctionChatModel

HI = {"messages": ["Hi"]}
POOL = ThreadPoolScheduler(2)  # a consumer on a thread of its own, to be slow on purpose


def burst(count: int) -> reactivex.Observable[int]:
    """A source that pushes everything at once, and knows nothing of demand."""

    def subscribe(observer: abc.ObserverBase[int], scheduler: Any = None) -> abc.DisposableBase:
        for i in range(count):
            observer.on_next(i)
        observer.on_completed()
        return reactivex.disposable.Disposable()

    return reactivex.create(subscribe)


def drained(strategy: str, count: int = 10, max_buffer: int = 3) -> tuple[list[int], Any]:
    """Push ``count`` items before the consumer's scheduler gets to run, then let it drain."""
    scheduler = TestScheduler()
    got: list[int] = []
    end: list[Any] = []
    burst(count).pipe(
        rxo.backpressure(max_buffer, strategy, scheduler=scheduler)  # type: ignore[arg-type]
    ).subscribe(got.append, end.append, lambda: end.append("completed"))
    assert got == [], "nothing is delivered on the producer's thread"
    scheduler.start()
    return got, end[0]


@pytest.mark.parametrize(
    ("strategy", "kept"),
    [
        ("drop_oldest", [7, 8, 9]),
        ("drop_newest", [0, 1, 2]),
        ("latest", [0, 1, 9]),
        ("pause", list(range(10))),  # a source that ignores demand is never dropped
    ],
)
def test_what_each_strategy_keeps_when_the_consumer_is_behind(
    strategy: str, kept: list[int]
) -> None:
    got, end = drained(strategy)
    assert got == kept
    assert end == "completed"


def test_error_strategy_delivers_the_buffer_then_the_overflow() -> None:
    got, end = drained("error")
    assert got == [0, 1, 2]
    assert isinstance(end, BufferOverflowError)


def test_an_upstream_error_comes_after_the_buffered_items() -> None:
    scheduler = TestScheduler()
    got: list[Any] = []
    reactivex.concat(burst(3), reactivex.throw(ValueError("boom"))).pipe(
        rxo.backpressure(8, scheduler=scheduler)
    ).subscribe(got.append, got.append)
    scheduler.start()
    assert got[:3] == [0, 1, 2] and isinstance(got[3], ValueError)


@pytest.mark.parametrize(("max_buffer", "strategy"), [(0, "pause"), (2, "block")])
def test_bad_arguments_are_usage_errors(max_buffer: int, strategy: str) -> None:
    with pytest.raises(UsageError):
        rxo.backpressure(max_buffer, strategy)  # type: ignore[arg-type]


def test_a_downstream_demand_holds_the_producers_through_the_buffer() -> None:
    seen: list[Demand] = []

    def subscribe(observer: abc.ObserverBase[int], scheduler: Any = None) -> abc.DisposableBase:
        seen.append(subscription_demand.get())  # type: ignore[arg-type]
        return reactivex.disposable.Disposable()

    downstream = Demand()
    token = subscription_demand.set(downstream)
    try:
        reactivex.create(subscribe).pipe(rxo.backpressure(4)).subscribe()
    finally:
        subscription_demand.reset(token)
    (upstream,) = seen
    assert upstream is not downstream and upstream.ready
    downstream.hold()
    assert not upstream.ready, "a consumer at its high-water mark holds the run"
    downstream.release()
    assert upstream.ready


class Gate:
    """A consumer on another thread that takes nothing until it is opened."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.items: list[Any] = []
        self.end: list[Any] = []
        self.done = threading.Event()

    def on_next(self, item: Any) -> None:
        assert self.open.wait(10)
        self.items.append(item)

    def on_error(self, error: Exception) -> None:
        self.end.append(error)
        self.done.set()

    def on_completed(self) -> None:
        self.end.append("completed")
        self.done.set()


@pytest.mark.anyio
async def test_pause_holds_a_model_that_would_run_ahead_and_loses_nothing() -> None:
    pulled = 0

    async def tokens(messages: Any, tools: Any) -> AsyncIterator[str]:
        nonlocal pulled
        for i in range(2_000):
            pulled += 1
            yield f"t{i} "

    gate = Gate()
    agent = create_agent(FunctionChatModel(tokens))
    pipeline = agent.observe(HI).pipe(rxo.text(), rxo.backpressure(16, scheduler=POOL))
    subscription = pipeline.subscribe(gate.on_next, gate.on_error, gate.on_completed)
    with anyio.fail_after(10):
        while pulled < 16:
            await anyio.sleep(0)
    for _ in range(300):  # the producer gets 300 turns of the loop to run ahead
        await anyio.sleep(0)
    assert pulled <= 16 + 2, "the producer waits while the consumer is behind"
    gate.open.set()
    with anyio.fail_after(10):
        while not gate.done.is_set():
            await anyio.sleep(0.001)
    subscription.dispose()
    assert gate.end == ["completed"]
    assert gate.items == [f"t{i} " for i in range(2_000)]


@pytest.mark.anyio
async def test_error_strategy_cancels_the_run() -> None:
    stopped = anyio.Event()

    async def endless(messages: Any, tools: Any) -> AsyncIterator[AIMessageChunk]:
        try:
            while True:
                yield AIMessageChunk(content="x")
                await anyio.sleep(0)
        finally:
            stopped.set()

    gate = Gate()
    agent = create_agent(FunctionChatModel(endless))
    agent.observe(HI).pipe(rxo.text(), rxo.backpressure(8, "error", scheduler=POOL)).subscribe(
        gate.on_next, gate.on_error, gate.on_completed
    )
    with anyio.fail_after(10):
        await stopped.wait()
    gate.open.set()
    assert await anyio.to_thread.run_sync(gate.done.wait, 10)
    # The consumer may have taken one item before it blocked, the buffer holds 8 more.
    assert gate.items in (["x"] * 8, ["x"] * 9)
    assert isinstance(gate.end[0], BufferOverflowError)


@pytest.mark.anyio
async def test_inside_an_event_loop_the_consumer_runs_on_the_loops_thread() -> None:
    threads: set[int] = set()
    texts: list[str] = []
    done = anyio.Event()

    def take(text: str) -> None:
        threads.add(threading.get_ident())
        texts.append(text)

    def tokens(messages: Any, tools: Any) -> Iterator[str]:
        yield from (f"t{i} " for i in range(1_000))

    agent = create_agent(FunctionChatModel(tokens))
    agent.observe(HI).pipe(rxo.text(), rxo.backpressure(32)).subscribe(
        take, on_completed=done.set
    )
    with anyio.fail_after(10):
        await done.wait()
    assert threads == {threading.get_ident()}
    assert texts == [f"t{i} " for i in range(1_000)]


# -- statistics() ---------------------------------------------------------------------------


def test_before_any_subscription_everything_is_zero() -> None:
    assert rxo.backpressure(8, "latest").statistics() == BackpressureStatistics(
        max_buffer=8, strategy="latest", subscriptions=0, buffered=0, peak_buffered=0,
        holding=False, delivered=0, dropped=0,
    )


@pytest.mark.parametrize("strategy", ["drop_oldest", "drop_newest", "latest"])
def test_what_was_dropped_and_delivered(strategy: Any) -> None:
    scheduler = TestScheduler()
    operator = rxo.backpressure(3, strategy, scheduler=scheduler)
    got: list[int] = []
    burst(10).pipe(operator).subscribe(got.append)
    # The consumer has not run yet: the buffer is full and seven items went.
    before = operator.statistics()
    assert (before.subscriptions, before.buffered, before.peak_buffered) == (1, 3, 3)
    assert (before.delivered, before.dropped, before.holding) == (0, 7, False)
    scheduler.start()
    after = operator.statistics()
    assert len(got) == 3
    assert (after.subscriptions, after.buffered, after.peak_buffered) == (0, 0, 3)
    assert (after.delivered, after.dropped) == (3, 7)


def test_pause_shows_that_it_holds_the_producers_until_the_consumer_catches_up() -> None:
    scheduler = TestScheduler()
    operator = rxo.backpressure(4, scheduler=scheduler)
    got: list[int] = []
    burst(10).pipe(operator).subscribe(got.append)
    before = operator.statistics()
    # A source that ignores demand is buffered, not dropped; the demand is held all the same.
    assert (before.buffered, before.peak_buffered, before.holding) == (10, 10, True)
    assert before.dropped == 0
    scheduler.start()
    after = operator.statistics()
    assert got == list(range(10))
    assert (after.buffered, after.holding, after.delivered, after.dropped) == (0, False, 10, 0)


def test_subscriptions_add_up_and_a_disposed_one_is_counted_too() -> None:
    scheduler = TestScheduler()
    operator = rxo.backpressure(2, "drop_newest", scheduler=scheduler)
    first = burst(5).pipe(operator).subscribe(lambda _: None)
    burst(4).pipe(operator).subscribe(lambda _: None)
    both = operator.statistics()
    assert (both.subscriptions, both.buffered, both.dropped) == (2, 4, 3 + 2)
    first.dispose()
    one = operator.statistics()
    assert (one.subscriptions, one.buffered, one.dropped) == (1, 2, 5)
    scheduler.start()
    done = operator.statistics()
    assert (done.subscriptions, done.buffered, done.delivered, done.dropped) == (0, 0, 2, 5)
@pytest.mark.anyio
async def test_an_iterator_behind_the_buffer_holds_the_model_through_it() -> None:
    pulled = 0

    def tokens(messages: Any, tools: Any) -> Iterator[str]:
        nonlocal pulled
        for i in range(5_000):
            pulled += 1
            yield f"t{i} "

    source = create_agent(FunctionChatModel(tokens)).observe(HI).pipe(
        rxo.text(), rxo.backpressure(100)
    )
    taken = ahead = 0
    with anyio.fail_after(60):
        async for _ in to_async_iterator(source, max_buffer=8):
            taken += 1
            ahead = max(ahead, pulled - taken)
            await anyio.sleep(0)
    assert taken == 5_000
    # The operator's buffer and the iterator's: the iterator's demand holds the model too.
    assert ahead <= 100 + 8 + 1
