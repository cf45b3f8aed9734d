"""Deadlines on a stream: fail a run that never starts answering, or that goes quiet.

Both operators cancel the work behind the stream when they fire: they dispose the upstream
subscription (for a run, that cancels the model call in flight and the tools), then send a
:class:`~rxagent.StreamTimeoutError` to ``on_error``. Timers run on a scheduler, so tests can
drive them in virtual time; each operator keeps one timer per subscription, whatever the rate
of items.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler

from .._exceptions import FirstTokenTimeoutError, IdleTimeoutError, UsageError
from .._messages import AIMessageChunk

__all__ = ["first_token_timeout", "idle_timeout"]

_T = TypeVar("_T")

_WAITING, _PASSED, _STOPPED = 0, 1, 2


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as seconds; a :class:`UsageError` unless it is a finite positive number
    (or zero, with ``allow_zero``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "a non-negative" if allow_zero else "a positive"
        raise UsageError(f"{name} must be {kind} number of seconds, got {value!r}")
    return float(value)


def pick_scheduler(
    given: abc.SchedulerBase | None, subscribed: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """The operator's own scheduler, else the subscription's, else the timer threads."""
    return given or subscribed or TimeoutScheduler.singleton()


def is_stream_token(item: Any) -> bool:
    """Whether ``item`` is a token: a ``messages`` part carrying an :class:`AIMessageChunk`,
    or anything that is not a run's part at all (a raw chunk, a ``(chunk, metadata)`` pair).
    """
    if isinstance(item, dict) and "type" in item and "data" in item and "ns" in item:
        if item["type"] != "messages":
            return False
        data = item["data"]
        return isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], AIMessageChunk)
    return True


def first_token_timeout(
    seconds: float,
    *,
    is_token: Callable[[Any], bool] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[reactivex.Observable[_T]], reactivex.Observable[_T]]:
    """Fail with :class:`~rxagent.FirstTokenTimeoutError` when no token arrives in time.

    Items before the first token (a run's input state, custom events) pass through. When
    ``seconds`` pass after subscribing without a token, the upstream subscription is disposed
    (cancelling the run) and the error is sent. After the first token the operator costs one
    attribute check per item.

    ::

        -v---------m-|      v: a values part;  m: a model's chunk
          first_token_timeout(5)
        -v---#              #: FirstTokenTimeoutError, 5 after subscribing; the run cancelled

        -v--m----m-|
          first_token_timeout(5)
        -v--m----m-|

    Args:
        seconds: how long to wait for the first token.
        is_token: which items count as a token; by default a ``messages`` part whose chunk is
            an :class:`AIMessageChunk`, or any item that is not a run's part (so the operator
            also works after :func:`messages` or on a model's own stream). An error it raises
            goes to ``on_error``.
        scheduler: where the timer runs; by default the subscription's scheduler, else
            reactivex's ``TimeoutScheduler``.

    Raises:
        UsageError: ``seconds`` is not a positive number.
    """
    limit = check_seconds("seconds", seconds)
    token_test = is_token if is_token is not None else is_stream_token
    if not callable(token_test):
        raise UsageError(f"is_token must be callable, got {type(token_test).__name__}")

    def operator(source: reactivex.Observable[_T]) -> reactivex.Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, subscribe_scheduler)
            lock = threading.RLock()
            upstream = SingleAssignmentDisposable()
            timer = SerialDisposable()
            state = _WAITING
            forward = observer.on_next

            def stop(error: Exception) -> None:
                # With the lock held and state still _WAITING.
                nonlocal state
                state = _STOPPED
                timer.dispose()
                upstream.dispose()
                observer.on_error(error)

            def on_timeout(_: abc.SchedulerBase, __: Any = None) -> None:
                with lock:
                    if state == _WAITING:
                        stop(
                            FirstTokenTimeoutError(
                                f"no token arrived within {limit:g} s of subscribing; "
                                "the stream was cancelled"
                            )
                        )

            def on_next(item: _T) -> None:
                nonlocal state
                if state == _PASSED:
                    forward(item)
                    return
                with lock:
                    if state != _WAITING:
                        return
                    try:
                        token = token_test(item)
                    except Exception as error:
                        stop(error)
                        return
                    if token:
                        state = _PASSED
                        timer.dispose()
                    forward(item)

            def on_error(error: Exception) -> None:
                nonlocal state
                with lock:
                    if state == _STOPPED:
                        return
                    state = _STOPPED
                    timer.dispose()
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal state
                with lock:
                    if state == _STOPPED:
                        return
                    state = _STOPPED
                    timer.dispose()
                    observer.on_completed()

            timer.disposable = clock.schedule_relative(limit, on_timeout)
            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(timer, upstream)

        return reactivex.create(subscribe)

    return operator


def idle_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[reactivex.Observable[_T]], reactivex.Observable[_T]]:
    """Fail with :class:`~rxagent.IdleTimeoutError` when the stream goes quiet for too long.

    The gap is measured from subscribing to the first item, then from the moment each item
    has been handed downstream to the next one (so a slow consumer does not count against
    the source). When it reaches ``seconds``, the upstream subscription is disposed
    (cancelling the run) and the error is sent. One timer per subscription: an item only
    records the time, and the timer re-arms itself for whatever is left of the gap.

    ::

        -a--b----------c-|
          idle_timeout(5)
        -a--b----#          #: IdleTimeoutError, 5 after b; the source cancelled

    Args:
        seconds: the longest gap allowed.
        scheduler: where the timer runs and whose clock measures the gap; by default the
            subscription's scheduler, else reactivex's ``TimeoutScheduler``.

    Raises:
        UsageError: ``seconds`` is not a positive number.
    """
    limit = check_seconds("seconds", seconds)

    def operator(source: reactivex.Observable[_T]) -> reactivex.Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, subscribe_scheduler)
            lock = threading.RLock()
            upstream = SingleAssignmentDisposable()
            timer = SerialDisposable()
            stopped = False
            last = clock.now
            forward = observer.on_next

            def on_timer(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    idle = (clock.now - last).total_seconds()
                    if idle < limit:
                        timer.disposable = clock.schedule_relative(limit - idle, on_timer)
                        return
                    stopped = True
                    timer.dispose()
                    upstream.dispose()
                    observer.on_error(
                        IdleTimeoutError(
                            f"nothing arrived for {limit:g} s; the stream was cancelled"
                        )
                    )

            def on_next(item: _T) -> None:
                nonlocal last
                with lock:
                    if stopped:
                        return
                    forward(item)
                    last = clock.now

            def on_error(error: Exception) -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    stopped = True
                    timer.dispose()
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    stopped = True
                    timer.dispose()
                    observer.on_completed()

            timer.disposable = clock.schedule_relative(limit, on_timer)
            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(timer, upstream)

        return reactivex.create(subscribe)

    return operator
