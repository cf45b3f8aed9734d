"""backpressure().statistics(): what the buffers hold and have done, as anyio's memory streams
tell through theirs (issue 14, item 8)."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex.testing import TestScheduler

from rxagent import operators as rxo
from rxagent.operators import BackpressureStatistics


def burst(count: int) -> reactivex.Observable[int]:
    """A source that pushes everything at once, and knows nothing of demand."""

    def subscribe(observer: abc.ObserverBase[int], scheduler: Any = None) -> abc.DisposableBase:
        for i in range(count):
            observer.on_next(i)
        observer.on_completed()
        return reactivex.disposable.Disposable()

    return reactivex.create(subscribe)


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
