"""One run, many subscribers: ``share()`` and ``replay(n)``, with demand from all of them.

Rx's own ``share()`` works on a run too, but it knows nothing of the demand signal: the run's
producers would see only the first subscriber's. Here the run obeys a demand of its own, which
every subscriber's demand holds while that subscriber is behind, so the slowest subscriber
paces the run and no buffer grows without bound.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable

from .._demand import Demand, subscription_demand
from .._exceptions import UsageError
from .._fast_rx import producers_elsewhere

__all__ = ["replay", "share"]

_T = TypeVar("_T")


def share() -> Callable[[reactivex.Observable[_T]], reactivex.Observable[_T]]:
    """Share one run among every subscriber present while it runs.

    The first subscription starts the run, later ones join it live (from the next item on),
    and the run is cancelled when the last subscriber leaves before it ends. A subscription
    after the end starts a new run. ::

        source:   --a--b--c--|
        first:    --a--b--c--|
        second:        ^-b--c--|   (joined after a)
    """
    return lambda source: reactivex.create(_Shared(source, None).subscribe)


def replay(buffer_size: int) -> Callable[[reactivex.Observable[_T]], reactivex.Observable[_T]]:
    """Share one run, and give a late subscriber the last ``buffer_size`` items it missed.

    Like :func:`share`, but a subscriber that joins late first gets up to ``buffer_size`` of
    the items it missed (the newest ones), then the rest live. After the run has ended, a new
    subscriber gets the replay and the end (completion or the error) instead of a new run. ::

        source:   --a--b--c--|
        late:          ^(ab)-c--|   replay(2), joined after b

    Raises:
        UsageError: a negative ``buffer_size``.
    """
    if not isinstance(buffer_size, int) or isinstance(buffer_size, bool) or buffer_size < 0:
        raise UsageError(f"buffer_size must be a non-negative int, got {buffer_size!r}")
    return lambda source: reactivex.create(_Shared(source, buffer_size).subscribe)


class _Shared(Generic[_T]):
    """The connection to the run, the subscribers on it, and the replay buffer."""

    def __init__(self, source: reactivex.Observable[_T], replay_size: int | None) -> None:
        self._source = source
        self._replay_size = replay_size
        # RLock: an observer may dispose (or subscribe) from inside on_next.
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._observers: list[abc.ObserverBase[_T]] = []
        self._demand = Demand()
        self._connection: abc.DisposableBase | None = None
        self._connecting = False
        self._replay: deque[_T] = deque(maxlen=self._replay_size or 0)
        self._error: Exception | None = None
        self._completed = False

    def subscribe(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        downstream = subscription_demand.get()
        with self._lock:
            ended = self._error is not None or self._completed
            if ended and self._replay_size is None:
                self._reset()  # share(): a subscriber after the end starts a new run
                ended = False
            demand = self._demand
            if ended:
                for item in list(self._replay):
                    observer.on_next(item)
                if self._error is not None:
                    observer.on_error(self._error)
                else:
                    observer.on_completed()
                return Disposable()
            for item in list(self._replay):
                observer.on_next(item)
            self._observers.append(observer)
            connect = self._connection is None and not self._connecting
            if connect:
                self._connecting = True
        if downstream is not None:
            downstream.link_upstream(demand)
        if connect:
            token = subscription_demand.set(demand)
            try:
                # The shared producer outlives this subscriber: it runs in a task of its own.
                with producers_elsewhere():
                    connection = self._source.subscribe(
                        self._on_next, self._on_error, self._on_completed, scheduler=scheduler
                    )
            finally:
                subscription_demand.reset(token)
            with self._lock:
                if self._demand is demand:
                    self._connection = connection
                    self._connecting = False
                    orphaned = not self._observers and not self._ended
                else:
                    orphaned = True  # everyone left (or it ended) while we were connecting
            if orphaned:
                connection.dispose()

        left = threading.Event()

        def leave() -> None:
            if left.is_set():
                return
            left.set()
            connection = None
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)
                    if not self._observers and not self._ended and self._demand is demand:
                        connection = self._connection
                        self._reset()
            if downstream is not None:
                downstream.unlink_upstream(demand)
            if connection is not None:
                connection.dispose()  # the last subscriber left early: cancel the run

        return Disposable(leave)

    @property
    def _ended(self) -> bool:
        return self._error is not None or self._completed

    def _on_next(self, value: _T) -> None:
        with self._lock:
            if self._ended:
                return
            if self._replay_size:
                self._replay.append(value)
            for observer in list(self._observers):
                observer.on_next(value)

    def _on_error(self, error: Exception) -> None:
        with self._lock:
            if self._ended:
                return
            self._error = error
            observers, self._observers = self._observers, []
            for observer in observers:
                observer.on_error(error)

    def _on_completed(self) -> None:
        with self._lock:
            if self._ended:
                return
            self._completed = True
            observers, self._observers = self._observers, []
            for observer in observers:
                observer.on_completed()
