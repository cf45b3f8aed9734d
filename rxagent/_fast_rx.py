"""Rx fast paths for the per-item hops inside rxagent, and async producers as cold Observables.

reactivex wraps every subscriber in an ``AutoDetachObserver`` and checks its trampoline on each
subscription; on the per-token path each wrapper costs a call and a check per item per hop.
Internal observers that keep the Rx grammar themselves are :class:`Trusted`, and a
:class:`FastObservable` hands them items directly. Observers from outside rxagent always get
reactivex's full treatment. This module is the one place that bypasses reactivex.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from threading import get_ident
from typing import Any, TypeVar

import reactivex
from reactivex import abc

from ._demand import Demand, subscription_demand
from ._loops import LoopHandle, Wakeup, current_loop, spawn

__all__ = [
    "FastObservable",
    "Trusted",
    "Upstream",
    "consume",
    "observable_from_async",
    "observable_from_task",
]

_T = TypeVar("_T")


class Trusted(abc.ObserverBase[_T]):
    """An internal observer that keeps the Rx grammar itself (nothing after a terminal event)
    and needs no detaching, so a :class:`FastObservable` may hand it items directly."""

    __slots__ = ()


class FastObservable(reactivex.Observable[_T]):
    """An Observable whose subscription by a :class:`Trusted` observer skips reactivex's
    per-subscription wrapper (an ``AutoDetachObserver`` and a trampoline check).

    Every hop of a run's per-token path (producer, mode filter, iterator sink) is one of
    these; the wrapper costs a call and a check per item per hop. Any other observer gets the
    full reactivex treatment.
    """

    def subscribe(
        self,
        on_next: Any = None,
        on_error: Any = None,
        on_completed: Any = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        if isinstance(on_next, Trusted):
            return self._subscribe_core(on_next, scheduler)
        return super().subscribe(on_next, on_error, on_completed, scheduler=scheduler)


class Upstream(abc.DisposableBase):
    """The subscription to an operator's source, assigned once (reactivex's
    ``SingleAssignmentDisposable`` without its lock, for the per-run path)."""

    __slots__ = ("_disposable", "_disposed")

    def __init__(self) -> None:
        self._disposable: abc.DisposableBase | None = None
        self._disposed = False

    @property
    def disposable(self) -> abc.DisposableBase | None:
        return self._disposable

    @disposable.setter
    def disposable(self, value: abc.DisposableBase) -> None:
        self._disposable = value
        if self._disposed:
            value.dispose()

    def dispose(self) -> None:
        if not self._disposed:
            self._disposed = True
            if self._disposable is not None:
                self._disposable.dispose()


def observable_from_async(
    produce: Callable[[Callable[[_T], None], Demand], Awaitable[None]],
) -> reactivex.Observable[_T]:
    """A cold Observable whose every subscription runs ``produce(on_next, demand)``.

    ``produce`` pushes items with ``on_next`` and, before producing each one, checks
    ``demand.ready`` and awaits ``demand.wait()`` when it is false. Returning completes the
    Observable, raising errors it, and disposing the subscription cancels ``produce``.
    """
    return observable_from_task(lambda observer, demand: produce(observer.on_next, demand))


def observable_from_task(
    produce: Callable[[abc.ObserverBase[_T], Demand], Awaitable[None]],
) -> reactivex.Observable[_T]:
    """:func:`observable_from_async` for a producer that needs its observer itself, not only
    ``on_next`` (an agent run asks its subscriber what it keeps)."""

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        demand = subscription_demand.get() or Demand()
        # Producers spawned from inside this one (nested model calls) inherit its demand.
        token = subscription_demand.set(demand)
        try:
            handle = spawn(
                lambda: produce(observer, demand),
                on_error=observer.on_error,
                on_completed=observer.on_completed,
                elsewhere=_blocking_run(scheduler),
            )
        finally:
            subscription_demand.reset(token)
        return handle

    return FastObservable(subscribe)


def _blocking_run(scheduler: abc.SchedulerBase | None) -> bool:
    """Whether reactivex's ``Observable.run()`` is subscribing: it passes its own default
    scheduler up the pipeline, then blocks this thread until the end. Work spawned on this
    thread's event loop (a notebook cell, ``asyncio.run``) would then never run, so it goes to
    the background loop instead."""
    run_module = sys.modules.get("reactivex.run")
    return scheduler is not None and scheduler is getattr(run_module, "_default_scheduler", None)


def discard(item: Any) -> None:
    """An ``on_next`` for :func:`consume` that keeps nothing: a caller that only needs the
    source to run (the chunks go elsewhere as they pass). Who passes items on may skip calling
    it (``_sink._Reporting``: one call less per token of an agent's model step)."""


async def consume(source: reactivex.Observable[Any], on_next: Callable[[Any], None]) -> None:
    """Subscribe to ``source`` from inside a task and wait for it to end; errors are raised,
    and leaving (cancellation) disposes the subscription."""
    loop = current_loop()
    assert loop is not None
    sink = _Consumer(on_next, loop)  # type: ignore[abstract]  # on_next is a slot
    subscription = source.subscribe(sink)
    try:
        await sink.finished.wait()
    finally:
        subscription.dispose()
    if sink.failure is not None:
        failure, sink.failure = sink.failure, None
        try:
            raise failure
        finally:
            del failure  # the traceback holds this frame: no cycle through a local


class _Consumer(Trusted[Any]):
    """The end of :func:`consume`: items to a callback, the end to an event on the loop."""

    # ``on_next`` is the callback itself, in a slot: a producer calls it without a frame of
    # ours in between (the slot's descriptor also stands in for ObserverBase's abstract method).
    __slots__ = ("_loop", "failure", "finished", "on_next")

    def __init__(self, on_next: Callable[[Any], None], loop: LoopHandle) -> None:
        self.on_next = on_next  # type: ignore[method-assign, assignment]
        self._loop = loop
        self.finished = Wakeup()
        self.failure: Exception | None = None

    def on_error(self, error: Exception) -> None:
        if self.failure is None:
            self.failure = error
        self._finish()

    def on_completed(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if get_ident() == self._loop.thread_id:
            self.finished.set()
        else:
            self._loop.call_soon_threadsafe(self.finished.set)
