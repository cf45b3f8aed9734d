"""Rx fast paths for the per-item hops inside rxagent, and async producers as cold Observables.

reactivex wraps every subscriber in an ``AutoDetachObserver`` and checks its trampoline on each
subscription; on the per-token path each wrapper costs a call and a check per item per hop.
Internal observers that keep the Rx grammar themselves are :class:`Trusted`, and a
:class:`FastObservable` hands them items directly. Observers from outside rxagent always get
reactivex's full treatment. This module is the one place that bypasses reactivex.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from threading import get_ident
from typing import Any, TypeVar

import anyio
import reactivex
from reactivex import abc

from ._demand import Demand, subscription_demand
from ._loops import LoopHandle, Wakeup, current_loop, land_cancellation, spawn

__all__ = [
    "FastObservable",
    "Trusted",
    "Upstream",
    "consume",
    "observable_from_async",
    "observable_from_task",
    "producers_elsewhere",
]

_T = TypeVar("_T")


class Trusted(abc.ObserverBase[_T]):
    """An internal observer that keeps the Rx grammar itself (nothing after a terminal event)
    and needs no detaching, so a :class:`FastObservable` may hand it items directly."""

    __slots__ = ()


_lock_making = threading.Lock()


class FastObservable(reactivex.Observable[_T]):
    """An Observable whose subscription by a :class:`Trusted` observer skips reactivex's
    per-subscription wrapper (an ``AutoDetachObserver`` and a trampoline check).

    Every hop of a run's per-token path (producer, mode filter, iterator sink) is one of
    these; the wrapper costs a call and a check per item per hop. Any other observer gets the
    full reactivex treatment.
    """

    def __init__(self, subscribe: abc.Subscription[_T] | None = None) -> None:
        # Not reactivex's __init__: it gives every Observable a lock, which only a few of its
        # operators take (``delay``, ``amb``...), and a served run's chain keeps five of them
        # for as long as it is open. The lock is made when first asked for (``lock``).
        self._subscribe = subscribe

    @property
    def lock(self) -> threading.RLock:  # type: ignore[override]
        lock: threading.RLock | None = self.__dict__.get("_lock")
        if lock is None:
            with _lock_making:
                lock = self.__dict__.setdefault("_lock", threading.RLock())
        return lock

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
        claims = _run_here.get()
        if claims is not None and not claims and scheduler is None:
            # The subscriber (consume) waits for this producer anyway: it runs it itself.
            claim = _InPlace(produce, observer, demand)
            claims.append(claim)
            return claim
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


# While consume() subscribes: the first producer of observable_from_task that the subscription
# reaches (the source itself, or the source behind operators that subscribe to it at once) is
# run by consume() in its own task instead of a task of its own, since consume() would only
# wait for it. A model call inside an agent's step, or a served run, is then one task less:
# its task, context copy and wake-ups were most of what a paused stream keeps in memory
# besides its data. Operators that share a producer among subscribers (``share``) close the
# window: their producer must outlive any one subscriber.
_run_here: ContextVar[list[_InPlace] | None] = ContextVar("rxagent_run_here", default=None)


@contextlib.contextmanager
def producers_elsewhere() -> Iterator[None]:
    """Subscriptions made inside the block run their producers in tasks of their own, even
    under :func:`consume`: for an operator whose producer outlives any one subscriber."""
    token = _run_here.set(None)
    try:
        yield
    finally:
        _run_here.reset(token)


class _InPlace(abc.DisposableBase):
    """A producer that :func:`consume` runs in its own task; disposing it cancels the
    producer, as disposing a spawned producer cancels its task."""

    __slots__ = ("demand", "disposed", "loop", "observer", "produce", "scope")

    def __init__(
        self,
        produce: Callable[[abc.ObserverBase[Any], Demand], Awaitable[None]],
        observer: abc.ObserverBase[Any],
        demand: Demand,
    ) -> None:
        self.produce = produce
        self.observer = observer
        self.demand = demand
        self.disposed = False
        self.scope: anyio.CancelScope | None = None
        self.loop = current_loop()  # the consumer's: consume() runs it there

    async def run(self) -> None:
        """Run the producer here; its end or failure goes to the observer, as spawn() sends
        it (a disposed producer sends neither)."""
        if self.disposed:
            return
        # As spawn() does before starting work: a cancellation another thread asked for, not
        # yet on the loop, lands now rather than after the producer has begun (a request).
        await land_cancellation()
        observer = self.observer
        # Producers subscribed from inside this one (nested model calls) inherit its demand.
        token = subscription_demand.set(self.demand)
        try:
            with anyio.CancelScope() as self.scope:
                try:
                    await self.produce(observer, self.demand)
                except Exception as error:
                    if not self.disposed:
                        observer.on_error(error)
                    return
            if not self.disposed:
                observer.on_completed()
        finally:
            self.scope = None
            subscription_demand.reset(token)

    def dispose(self) -> None:
        if self.disposed:
            return
        self.disposed = True
        scope = self.scope
        if scope is not None:
            loop = self.loop
            if loop is None or get_ident() == loop.thread_id:
                scope.cancel()
            else:  # disposed from another thread than the consumer's
                loop.call_soon_threadsafe(scope.cancel)


async def consume(source: reactivex.Observable[Any], on_next: Callable[[Any], None]) -> None:
    """Subscribe to ``source`` from inside a task and wait for it to end; errors are raised,
    and leaving (cancellation) disposes the subscription.

    The producer behind ``source``, if :func:`observable_from_task` made it and the
    subscription reaches it at once, runs in this task rather than one of its own."""
    loop = current_loop()
    assert loop is not None
    sink = _Consumer(on_next, loop)  # type: ignore[abstract]  # on_next is a slot
    claims: list[_InPlace] = []
    token = _run_here.set(claims)
    try:
        subscription = source.subscribe(sink)
    finally:
        _run_here.reset(token)
    try:
        if claims:
            await claims[0].run()
        if not sink.finished.is_set():  # other producers of the source still run
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
