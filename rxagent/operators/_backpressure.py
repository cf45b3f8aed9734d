"""A bounded buffer between a run and a consumer that takes its items on another scheduler.

Rx's ``on_next`` cannot wait, so "pause" does not block anyone: it holds the
:class:`~rxagent._demand.Demand` that every producer behind the subscription consults before
producing (a provider before reading its socket, a test model before its next chunk, a tool's
writer before it sends), and releases it when the consumer has drained half the buffer. The
other strategies never hold the producers; they decide what to give up when the buffer is full.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeAlias, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable
from reactivex.scheduler import ThreadPoolScheduler

from .._demand import Demand, subscription_demand
from .._exceptions import BufferOverflowError, UsageError
from .._loops import current_loop

__all__ = ["Backpressure", "BackpressureStatistics", "BackpressureStrategy", "backpressure"]

_T = TypeVar("_T")

BackpressureStrategy: TypeAlias = Literal["pause", "drop_oldest", "drop_newest", "latest", "error"]
_STRATEGIES: tuple[str, ...] = ("pause", "drop_oldest", "drop_newest", "latest", "error")

_drain_pool: ThreadPoolScheduler | None = None
_drain_pool_lock = threading.Lock()


def _submitter(scheduler: abc.SchedulerBase | None) -> Callable[[Callable[[], None]], None]:
    """How to run the drain loop: on the given scheduler; else on the subscriber's event loop
    (so that ``await``, iterators and tasks see the items on their own thread); else on a
    shared thread pool."""
    if scheduler is None:
        loop = current_loop()
        if loop is not None:
            return loop.call_soon_threadsafe
        global _drain_pool
        with _drain_pool_lock:
            if _drain_pool is None:
                _drain_pool = ThreadPoolScheduler(max_workers=8)
            scheduler = _drain_pool
    chosen = scheduler

    def submit(drain: Callable[[], None]) -> None:
        chosen.schedule(lambda _scheduler, _state: drain())

    return submit


def backpressure(
    max_buffer: int = 256,
    strategy: BackpressureStrategy = "pause",
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Backpressure[_T]:
    """Deliver items on ``scheduler`` through a buffer of ``max_buffer`` items.

    The consumer (everything downstream) runs on ``scheduler``, one item at a time, in order,
    while the producers go on. By default that is the event loop of the subscribing thread
    (asyncio or trio: the consumer gets its turns between the producers'), or a shared thread
    pool when the subscriber runs no loop. When the consumer falls ``max_buffer`` items behind:

    - ``"pause"`` (lossless): the run's producers wait before producing more, until the buffer
      is down to half. Producers that do not consult the run's demand (a plain Rx source) are
      not held, so the buffer can grow past the mark for them; every source of an agent run
      consults it. A producer already past its check may add one more item, so the buffer
      holds at most ``max_buffer`` plus the number of concurrent producers.
    - ``"drop_oldest"``: the oldest buffered item makes room for the new one.
    - ``"drop_newest"``: the new item is dropped.
    - ``"latest"``: the new item replaces the newest buffered one, so that the consumer
      catches up on the most recent state (progress, not tokens).
    - ``"error"``: the run is cancelled; the consumer gets the buffered items, then
      :class:`~rxagent.BufferOverflowError`.

    ::

        --1-2-3-4-5-6-|        backpressure(2, "drop_oldest"), consumer busy until 6
        ------------1--5-6-|   (1 was already taken; 2, 3, 4 were pushed out)

    Errors and completion are delivered after every buffered item. Disposing stops delivery
    and cancels the run.

    The operator's :meth:`~Backpressure.statistics` tells how full its buffers are, whether
    it holds the producers, and how much it has dropped, as anyio's memory streams do::

        buffered = rxo.backpressure(64, "drop_oldest")
        agent.observe(inputs).pipe(buffered).subscribe(slow_consumer)
        buffered.statistics()  # BackpressureStatistics(buffered=64, ..., dropped=1200)

    Args:
        max_buffer: the high-water mark; "pause" releases the producers at half of it.
        strategy: what to do when the buffer is full.
        scheduler: where the consumer runs (default: see above).

    Raises:
        UsageError: a ``max_buffer`` below 1 or an unknown strategy.
    """
    if not isinstance(max_buffer, int) or isinstance(max_buffer, bool) or max_buffer < 1:
        raise UsageError(f"max_buffer must be a positive int, got {max_buffer!r}")
    if strategy not in _STRATEGIES:
        raise UsageError(f"unknown backpressure strategy {strategy!r}; choose from {_STRATEGIES}")

    return Backpressure(max_buffer, strategy, scheduler)


@dataclass(frozen=True)
class BackpressureStatistics:
    """What a :func:`backpressure` operator's buffers hold and have done, over every
    subscription it has served (the counts add up; ``buffered`` and ``holding`` are now).

    Attributes:
        max_buffer: the high-water mark, as given.
        strategy: the strategy, as given.
        subscriptions: subscriptions still delivering.
        buffered: items waiting for the consumer now.
        peak_buffered: the most items one buffer has held at once.
        holding: whether a buffer holds the run's producers now (``"pause"`` at high water).
        delivered: items handed to the consumer.
        dropped: items given up to make room (``drop_oldest``, ``drop_newest``, ``latest``).
    """

    max_buffer: int
    strategy: str
    subscriptions: int
    buffered: int
    peak_buffered: int
    holding: bool
    delivered: int
    dropped: int


class Backpressure(Generic[_T]):
    """The operator that :func:`backpressure` returns: apply it with ``pipe``, ask it for
    :meth:`statistics`."""

    def __init__(
        self, max_buffer: int, strategy: str, scheduler: abc.SchedulerBase | None
    ) -> None:
        self.max_buffer = max_buffer
        self.strategy = strategy
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._live: set[_Buffer[_T]] = set()
        # What buffers that have ended delivered and dropped, and the most they held.
        self._delivered = 0
        self._dropped = 0
        self._peak = 0

    def statistics(self) -> BackpressureStatistics:
        """A snapshot of the buffers (see :class:`BackpressureStatistics`); from any thread."""
        with self._lock:
            live = list(self._live)
            delivered, dropped, peak = self._delivered, self._dropped, self._peak
        buffered = 0
        holding = False
        for buffer in live:
            with buffer._lock:
                buffered += len(buffer._items)
                holding = holding or buffer._held
                delivered += buffer.delivered
                dropped += buffer.dropped
                peak = max(peak, buffer.peak)
        return BackpressureStatistics(
            max_buffer=self.max_buffer,
            strategy=self.strategy,
            subscriptions=len(live),
            buffered=buffered,
            peak_buffered=peak,
            holding=holding,
            delivered=delivered,
            dropped=dropped,
        )

    def _retire(self, buffer: _Buffer[_T]) -> None:
        # Called once per buffer, when it stops: its counts join the totals.
        with self._lock:
            if buffer in self._live:
                self._live.discard(buffer)
                self._delivered += buffer.delivered
                self._dropped += buffer.dropped
                self._peak = max(self._peak, buffer.peak)

    def __call__(self, source: reactivex.Observable[_T]) -> reactivex.Observable[_T]:
        max_buffer, strategy, scheduler = self.max_buffer, self.strategy, self._scheduler

        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            buffer = _Buffer(observer, max_buffer, strategy, _submitter(scheduler), self._retire)
            with self._lock:
                self._live.add(buffer)
            # The producers upstream obey our demand; whoever holds ours from downstream (an
            # iterator at its own high-water mark) holds the producers too.
            downstream = subscription_demand.get()
            if downstream is not None:
                downstream.link_upstream(buffer.demand)
            upstream = SingleAssignmentDisposable()
            buffer.upstream = upstream
            token = subscription_demand.set(buffer.demand)
            try:
                upstream.disposable = source.subscribe(
                    buffer.on_next, buffer.on_error, buffer.on_completed,
                    scheduler=subscribe_scheduler,
                )
            finally:
                subscription_demand.reset(token)

            def unlink() -> None:
                buffer.stop()
                if downstream is not None:
                    downstream.unlink_upstream(buffer.demand)

            return CompositeDisposable(upstream, Disposable(unlink))

        return reactivex.create(subscribe)


class _Buffer(abc.ObserverBase[_T]):
    """The queue, the drain loop on the consumer's scheduler, and the demand it holds."""

    def __init__(
        self,
        observer: abc.ObserverBase[_T],
        high: int,
        strategy: str,
        submit: Callable[[Callable[[], None]], None],
        retire: Callable[[_Buffer[_T]], None],
    ) -> None:
        self.observer = observer
        self.retire = retire
        # Counted under the lock, for statistics().
        self.delivered = 0
        self.dropped = 0
        self.peak = 0
        self.high = high
        self.low = high // 2
        self.strategy = strategy
        self.submit = submit
        self.demand = Demand()
        self.upstream: abc.DisposableBase | None = None
        self._items: deque[_T] = deque()
        self._lock = threading.Lock()
        self._held = False
        self._draining = False
        self._stopped = False
        self._error: Exception | None = None
        self._completed = False

    # -- from the producers ---------------------------------------------------------------

    def on_next(self, value: _T) -> None:
        overflow = False
        with self._lock:
            if self._stopped or self._error is not None or self._completed:
                return
            items = self._items
            if len(items) < self.high or self.strategy == "pause":
                items.append(value)
                if len(items) > self.peak:
                    self.peak = len(items)
            elif self.strategy == "drop_oldest":
                items.popleft()
                items.append(value)
                self.dropped += 1
            elif self.strategy == "latest":
                items[-1] = value
                self.dropped += 1
            elif self.strategy == "error":
                overflow = True
                self._error = BufferOverflowError(
                    f"the consumer fell {self.high} items behind (backpressure strategy "
                    "'error'); the run was cancelled"
                )
            else:  # "drop_newest": the new item goes nowhere
                self.dropped += 1
            hold = self.strategy == "pause" and not self._held and len(items) >= self.high
            if hold:
                self._held = True
        if hold:
            self.demand.hold()
        if overflow and self.upstream is not None:
            self.upstream.dispose()
        self._schedule_drain()

    def on_error(self, error: Exception) -> None:
        with self._lock:
            if self._error is None and not self._completed:
                self._error = error
        self._schedule_drain()

    def on_completed(self) -> None:
        with self._lock:
            if self._error is None:
                self._completed = True
        self._schedule_drain()

    # -- to the consumer ----------------------------------------------------------------

    def _schedule_drain(self) -> None:
        with self._lock:
            if self._draining or self._stopped:
                return
            self._draining = True
        self.submit(self._drain)

    def _drain(self) -> None:
        observer = self.observer
        while True:
            release = False
            ending = False
            with self._lock:
                if self._stopped:
                    self._draining = False
                    return
                if self._items:
                    item = self._items.popleft()
                    self.delivered += 1
                    if self._held and len(self._items) <= self.low:
                        self._held = False
                        release = True
                elif self._error is not None or self._completed:
                    self._stopped = ending = True
                    self._draining = False
                else:
                    self._draining = False
                    return
            if ending:  # the buffer is empty and the end has come: it goes out last
                self.retire(self)
                if self._error is not None:
                    observer.on_error(self._error)
                else:
                    observer.on_completed()
                return
            if release:
                self.demand.release()
            observer.on_next(item)

    def stop(self) -> None:
        """The subscription was disposed: deliver nothing more, and let the producers go."""
        with self._lock:
            self._stopped = True
            self._items.clear()
            release = self._held
            self._held = False
        if release:
            self.demand.release()
        self.retire(self)

