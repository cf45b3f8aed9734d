"""Bridges between Observables and Python iteration: ``for``, ``async for``, and back.

Both iterators sit on a bounded buffer with high and low water marks. When the buffer reaches
``max_buffer`` the iterator holds the subscription's :class:`~rxagent._demand.Demand`, so every
producer behind it (a socket read, a scripted model, a tool's writer) waits before producing
more; at half the size it lets go. Memory stays bounded without ``on_next`` ever waiting.

The sync iterator runs the event loop itself, in the consumer's thread, only while the consumer
is waiting for an item: no worker thread, no hand-off per token, no fight over the GIL. Only when
the consumer's thread already runs an event loop (a notebook) does the work go to the shared
background loop, with a thread-safe hand-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from threading import get_ident  # a global, not an attribute lookup, per item
from typing import Generic, TypeVar

import anyio
import reactivex
from reactivex import abc

from ._demand import Demand, subscription_demand
from ._exceptions import UsageError
from ._fast_rx import FastObservable, Trusted, observable_from_async
from ._loops import (
    LoopHandle,
    Spawned,
    Wakeup,
    background_loop,
    collect_spawned,
    current_loop,
    inside_spawned_work,
)
from ._per_loop import signals_wake, thread_loop
from ._scheduler import note_reaches_run
from ._threads import sync_code_in_place

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "IterableObservable",
    "from_async_iterable",
    "iterable",
    "to_async_iterator",
    "to_iterator",
]

_T = TypeVar("_T")

# How often a sync wait that no loop wakes looks for a signal (Ctrl-C) to raise, in seconds.
_SIGNAL_CHECK = 0.25

DEFAULT_MAX_BUFFER = 256
"""Items an iterator buffers before it holds its producers back."""


class _BufferSink(Trusted[_T]):
    """The observer at the end of a bridge: a deque, water marks, and a one-shot wake-up.

    The high-water mark starts at one item and doubles each time the consumer catches up, up
    to ``max_buffer`` (TCP's slow start). A producer that never suspends (a fast local model)
    therefore hands over its first token at once instead of after a whole buffer, and still
    runs a full buffer ahead, with one wake-up per half buffer, once the stream is going.
    """

    __slots__ = (
        "buffer", "demand", "done", "error", "held", "high", "loop", "low", "max_high",
        "notify", "thread",
    )

    def __init__(self, max_buffer: int) -> None:
        # Items are taken on the consumer's loop thread; ``attach`` names it before subscribing.
        self.loop: LoopHandle | None = None
        self.thread = 0
        self.buffer: deque[_T] = deque()
        self.max_high = max_buffer
        self.high = 1
        self.low = 0
        self.demand = Demand()
        self.held = False
        self.done = False
        self.error: Exception | None = None
        # Set by a consumer about to wait; called (once) by whoever makes progress.
        self.notify: Callable[[], None] | None = None

    def attach(self, loop: LoopHandle) -> _BufferSink[_T]:
        self.loop = loop
        self.thread = loop.thread_id
        return self

    def on_next(self, value: _T) -> None:
        if get_ident() != self.thread:  # from a timer or a worker thread: hop over
            assert self.loop is not None
            self.loop.call_soon_threadsafe(lambda: self.on_next(value))
            return
        buffer = self.buffer
        buffer.append(value)
        if not self.held and len(buffer) >= self.high:
            self.held = True
            self.demand.hold()
        notify = self.notify
        if notify is not None:
            self.notify = None
            notify()

    def on_error(self, error: Exception) -> None:
        if get_ident() != self.thread:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(lambda: self.on_error(error))
            return
        self.error = error
        self._finish()

    def on_completed(self) -> None:
        if get_ident() != self.thread:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(self.on_completed)
            return
        self._finish()

    def _finish(self) -> None:
        self.done = True
        notify = self.notify
        if notify is not None:
            self.notify = None
            notify()

    def take(self) -> _T:
        """Pop the oldest item (the buffer must not be empty); let go of demand at low water."""
        item = self.buffer.popleft()
        if self.held and len(self.buffer) <= self.low:
            self.caught_up()
        return item

    def caught_up(self) -> None:
        """The consumer is down to the low-water mark: let the producers go, with a bigger
        window next time."""
        self.held = False
        if self.high < self.max_high:
            self.high = min(2 * self.high, self.max_high)
            self.low = self.high // 2
        self.demand.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.demand.release()

    def abandon(self) -> None:
        """The consumer is gone: drop what is buffered and whatever still arrives, and let go
        of what waits for room in other threads. (A sync tool's writer may, or a model it
        calls; the run's cancellation waits for that tool to return.) Producers on the loop
        stay held until cancelled."""
        self.buffer = deque(maxlen=0)  # appends vanish: no check on the per-item path
        if not self.held:
            self.held = True
            self.demand.hold()
        self.demand.stop_blocking(self.thread)


def _check_max_buffer(max_buffer: int) -> None:
    if not isinstance(max_buffer, int) or max_buffer < 1:
        raise UsageError(f"max_buffer must be a positive int, got {max_buffer!r}")


def _subscribe(
    source: reactivex.Observable[_T], observer: abc.ObserverBase[_T], demand: Demand
) -> tuple[abc.DisposableBase, list[Spawned]]:
    token = subscription_demand.set(demand)
    try:
        with collect_spawned() as spawned:
            subscription = source.subscribe(observer)
    finally:
        subscription_demand.reset(token)
    return subscription, spawned


class SyncIterator(Iterator[_T]):
    """Iterate an Observable from sync code; see :func:`to_iterator`."""

    # Class-level, so that __del__ is safe on an instance whose __init__ raised.
    _started = False
    _closed = True
    _unwake: Callable[[], None] | None = None  # undoes signals_wake(), while we own the loop

    def __init__(self, source: reactivex.Observable[_T], max_buffer: int) -> None:
        _check_max_buffer(max_buffer)
        self._source = source
        self._sink: _BufferSink[_T] = _BufferSink(max_buffer)
        self._subscription: abc.DisposableBase | None = None
        self._spawned: list[Spawned] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # driven here, when we own it
        self._loop_thread = 0
        self._started = False
        self._closed = False

    def __iter__(self) -> SyncIterator[_T]:
        return self

    def __enter__(self) -> SyncIterator[_T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        # Ctrl-C (or SystemExit) must not wait for a sync tool that nothing can stop.
        self._close(or_parked=exc_type is not None and not issubclass(exc_type, Exception))

    def __next__(self) -> _T:
        sink = self._sink
        buffer = sink.buffer
        if buffer:  # the per-item path: take() inlined
            item = buffer.popleft()
            if sink.held and len(buffer) <= sink.low:
                sink.caught_up()
            return item
        return self._next_slow()

    def _start(self) -> None:
        self._started = True
        note_reaches_run()  # a tool that waits on a stream stays in a worker thread
        if current_loop() is None:
            self._loop = thread_loop()
            self._loop_thread = get_ident()
            self._unwake = signals_wake(self._loop)
            self._loop.run_until_complete(self._subscribe_here())
        else:
            if inside_spawned_work() and not sync_code_in_place.get():
                # A run's async code (an async tool) on the run's own loop: waiting here would
                # stop that loop, and a sub-agent joined to the run would wait for it in turn.
                raise UsageError(
                    "a sync stream (stream(), invoke()) inside a run's async code (an async "
                    "tool) would block the event loop the run needs: use 'await "
                    "agent.ainvoke(...)' or 'async for ... in agent.astream(...)' there"
                )
            # This thread already runs a loop we cannot drive: work on the background loop.
            background = background_loop()
            if background.thread_id == get_ident():
                raise UsageError(
                    "a sync stream cannot be iterated on rxagent's background loop, which it "
                    "would need: iterate with 'async for' (astream), or make the blocking "
                    "code a sync tool with thread=True"
                )
            asyncio.run_coroutine_threadsafe(self._subscribe_here(), background.loop).result()

    async def _subscribe_here(self) -> None:
        loop = current_loop()
        assert loop is not None
        sink = self._sink.attach(loop)
        self._subscription, self._spawned = _subscribe(self._source, sink, sink.demand)

    def _next_slow(self) -> _T:
        if self._closed:
            raise StopIteration
        if not self._started:
            self._start()
        sink = self._sink
        while not sink.buffer:
            if sink.done:
                self.close()
                if sink.error is not None:
                    error, sink.error = sink.error, None
                    try:
                        raise error
                    finally:
                        # The traceback holds this frame: a local naming the error would make
                        # a cycle (error, frame, self) that only the collector frees.
                        del error
                raise StopIteration
            sink.release()
            if self._loop is not None:
                loop = self._loop
                arrived = loop.create_future()

                def wake(future: asyncio.Future[None] = arrived) -> None:
                    if not future.done():
                        future.set_result(None)

                sink.notify = wake
                if not sink.buffer and not sink.done:
                    loop.run_until_complete(arrived)
                sink.notify = None
            else:
                event = threading.Event()
                sink.notify = event.set
                if not sink.buffer and not sink.done:
                    # Timed: a Ctrl-C that the kernel gave another thread would not wake an
                    # untimed wait, and Python raises it here only once this thread runs.
                    while not event.wait(_SIGNAL_CHECK):
                        pass
                sink.notify = None
        return sink.take()

    def close(self) -> None:
        """Stop the run behind the iterator (if still going) and release its event loop; a
        sync tool that the run was waiting for returns before this does."""
        self._close(or_parked=False)

    def _close(self, *, or_parked: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if self._subscription is not None:
            self._subscription.dispose()
        for handle in self._spawned:
            handle.cancel()
        self._sink.abandon()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if get_ident() != self._loop_thread:  # pragma: no cover - GC elsewhere
                return
            try:
                if not loop.is_running():  # (closed from inside a callback: the loop goes on)
                    loop.run_until_complete(_all_done(self._spawned, or_parked))
            finally:
                if self._unwake is not None:
                    self._unwake()
        else:
            for handle in self._spawned:
                handle.wait_done_blocking(5.0, or_parked=or_parked)

    def __del__(self) -> None:
        if not self._closed and self._started:
            # The consumer left (break, or Ctrl-C in the loop's body): sockets close now, but
            # a garbage collection never waits for a sync tool's thread.
            with contextlib.suppress(Exception):  # best effort at garbage collection
                self._close(or_parked=True)


async def _all_done(handles: list[Spawned], or_parked: bool) -> None:
    # The list grows while we wait: work spawned inside the run (model calls) joins it.
    while pending := [
        handle for handle in handles if not (handle.settled if or_parked else handle.done)
    ]:
        for handle in pending:
            await handle.wait_done(or_parked=or_parked)


class AsyncIteratorBridge(AsyncIterator[_T], Generic[_T]):
    """Iterate an Observable with ``async for``; see :func:`to_async_iterator`."""

    _closed = True  # class-level, so that __del__ is safe on an instance whose __init__ raised

    def __init__(self, source: reactivex.Observable[_T], max_buffer: int) -> None:
        _check_max_buffer(max_buffer)
        self._source = source
        self._sink: _BufferSink[_T] = _BufferSink(max_buffer)
        self._subscription: abc.DisposableBase | None = None
        self._spawned: list[Spawned] = []
        self._started = False
        self._closed = False

    def __aiter__(self) -> AsyncIteratorBridge[_T]:
        return self

    async def __aenter__(self) -> AsyncIteratorBridge[_T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> _T:
        sink = self._sink
        buffer = sink.buffer
        if buffer:  # the per-item path: take() inlined, as in SyncIterator.__next__
            item = buffer.popleft()
            if sink.held and len(buffer) <= sink.low:
                sink.caught_up()
            return item
        return await self._anext_slow()

    async def _anext_slow(self) -> _T:
        if self._closed:
            raise StopAsyncIteration
        loop = current_loop()
        if loop is None:
            raise UsageError(
                "an async iterator of a stream (astream(), to_async_iterator(), async for) "
                "runs only inside an asyncio or trio event loop; iterate it under "
                "asyncio.run(...) or trio.run(...), or use the sync stream() / for loop instead"
            )
        if not self._started:
            self._started = True
            sink = self._sink.attach(loop)
            self._subscription, self._spawned = _subscribe(self._source, sink, sink.demand)
        sink = self._sink
        while not sink.buffer:
            if sink.done:
                await self.aclose()
                if sink.error is not None:
                    error, sink.error = sink.error, None
                    try:
                        raise error
                    finally:
                        del error  # as in SyncIterator._next_slow
                raise StopAsyncIteration
            sink.release()
            event = Wakeup()
            sink.notify = event.set
            if not sink.buffer and not sink.done:
                await event.wait()
            sink.notify = None
        return sink.take()

    def hold(self) -> None:
        """Hold the producers back as a full buffer does, until :meth:`release`: for a consumer
        about to wait on something downstream (a slow client), so that the run stops at the
        item it is on instead of filling the buffer it will not read for a while."""
        self._sink.demand.hold()

    def release(self) -> None:
        """Undo :meth:`hold`."""
        self._sink.demand.release()

    def pending(self) -> int:
        """How many items are buffered, made and not yet taken."""
        return len(self._sink.buffer)

    async def aclose(self) -> None:
        """Stop the run behind the iterator and wait until it has let go of everything."""
        if self._closed:
            return
        self._closed = True
        if self._subscription is not None:
            self._subscription.dispose()
        for handle in self._spawned:
            handle.cancel()
        self._sink.abandon()
        with anyio.CancelScope(shield=True):
            await _all_done(self._spawned, or_parked=False)

    def __del__(self) -> None:
        # Leaving ``async for`` early drops the iterator: cancel the run right away.
        if not self._closed:
            self._closed = True
            if self._subscription is not None:
                self._subscription.dispose()
            for handle in self._spawned:
                handle.cancel()
            self._sink.abandon()


class IterableObservable(FastObservable[_T]):
    """A cold Observable that ``for`` and ``async for`` can also iterate, each loop one
    subscription, as LangChain's ``model.stream(...)`` is iterated.

    Without ``__iter__``, Python would take reactivex's ``__getitem__`` (slicing) for the old
    sequence protocol and loop forever over Observables.
    """

    def __iter__(self) -> SyncIterator[_T]:
        return to_iterator(self)

    def __aiter__(self) -> AsyncIteratorBridge[_T]:
        return to_async_iterator(self)


def iterable(source: reactivex.Observable[_T]) -> IterableObservable[_T]:
    """``source`` as an :class:`IterableObservable` (subscribing to it subscribes to
    ``source``, nothing added per item)."""
    if isinstance(source, IterableObservable):
        return source
    if isinstance(source, FastObservable):  # its own core: no second reactivex wrapper
        return IterableObservable(source._subscribe_core)

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return source.subscribe(observer, scheduler=scheduler)

    return IterableObservable(subscribe)


def to_iterator(
    observable: reactivex.Observable[_T], *, max_buffer: int = DEFAULT_MAX_BUFFER
) -> SyncIterator[_T]:
    """Iterate an Observable from sync code, with bounded memory.

    Subscribes on the first ``next()``. Items are buffered up to ``max_buffer``; past that the
    producers wait (lossless backpressure). An error is raised after every item that came
    before it. Leaving the loop early cancels the work behind it once the iterator is dropped
    (at once in CPython, when nothing else refers to it); ``close()``, or iterating inside
    ``with to_iterator(...) as items:``, cancels it deterministically.

    Args:
        observable: the Observable to iterate.
        max_buffer: the high-water mark of the buffer; the low-water mark is half of it.
    """
    return SyncIterator(observable, max_buffer)


def to_async_iterator(
    observable: reactivex.Observable[_T], *, max_buffer: int = DEFAULT_MAX_BUFFER
) -> AsyncIteratorBridge[_T]:
    """Iterate an Observable with ``async for`` (asyncio or trio), with bounded memory.

    The work behind the Observable runs on the iterating task's event loop. Leaving
    ``async for`` early cancels it once the iterator is dropped (at once in CPython, when
    nothing else refers to it); ``await aclose()``, or iterating inside
    ``async with to_async_iterator(...) as items:``, cancels it and waits until it has let go.

    Args:
        observable: the Observable to iterate.
        max_buffer: the high-water mark of the buffer; the low-water mark is half of it.
    """
    return AsyncIteratorBridge(observable, max_buffer)


def from_async_iterable(iterable: AsyncIterable[_T]) -> reactivex.Observable[_T]:
    """An Observable of what an async iterable yields, pulled only while there is demand.

    The iterable is pulled one item at a time and not at all while a consumer downstream holds
    the demand, so a slow consumer holds back the iterable itself. Each subscription iterates
    ``iterable`` anew: pass a fresh one, or share the Observable.
    """

    async def produce(on_next: Callable[[_T], None], demand: Demand) -> None:
        async for item in iterable:
            on_next(item)
            if not demand.ready:
                await demand.wait()

    return observable_from_async(produce)
