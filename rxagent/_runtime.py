"""Async work behind cold Observables: where it runs, how it is cancelled, and the demand signal.

Every source of a run (a model call reading its socket, a scripted model, a tool's writer) is an
async producer that pushes items into an Rx observer. Rx's ``on_next`` cannot wait, so bounded
memory comes from a demand signal that producers consult *before* producing: a :class:`Demand`
that a consumer holds while its buffer is above its high-water mark. Checking it is a plain
attribute read, so the per-item cost is nothing while the consumer keeps up.

Subscribing spawns the producer on the event loop of the subscribing thread (asyncio or trio);
with no loop running there, on one shared background loop thread. The demand in force travels
from the consumer to the producer through the subscription call itself: sinks set the
``subscription_demand`` context variable around ``subscribe()``, operators pass the call up
synchronously, and the producer reads the variable when it is spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import sys
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, cast

import anyio
import reactivex
from reactivex import abc

__all__ = [
    "Demand",
    "FastObservable",
    "LoopHandle",
    "Spawned",
    "ToolCallRecord",
    "Trusted",
    "Upstream",
    "current_loop",
    "current_tool_call",
    "observable_from_async",
    "run_in_thread",
    "spawn",
    "subscription_demand",
]

_T = TypeVar("_T")


class LoopHandle(Protocol):
    """The few things we need from an event loop, asyncio's or trio's."""

    thread_id: int

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None: ...


class _AsyncioLoop:
    __slots__ = ("loop", "thread_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        self.loop = loop
        self.thread_id = thread_id

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)


class _TrioLoop:
    __slots__ = ("thread_id", "token")

    def __init__(self, token: Any, thread_id: int) -> None:
        self.token = token
        self.thread_id = thread_id

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self.token.run_sync_soon(fn)


def current_loop() -> LoopHandle | None:
    """The event loop running in this thread, or ``None`` outside any."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # One handle per loop, kept on the loop: this is asked on every subscription.
        handle: _AsyncioLoop | None = getattr(loop, "_rxagent_handle", None)
        if handle is None:
            handle = _AsyncioLoop(loop, threading.get_ident())
            with contextlib.suppress(AttributeError):  # a loop that takes no attributes
                loop._rxagent_handle = handle  # type: ignore[attr-defined]
        return handle
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            return None
        return _TrioLoop(token, threading.get_ident())
    return None


class Demand:
    """Flow control shared by the producers behind one subscription.

    Any number of consumers may hold it (``hold()``) while they are full and release it
    (``release()``) when they have room again; producers go on only while nobody holds it.
    ``ready`` is a plain attribute so that the check on the per-item path costs nothing; only
    a producer that finds it false awaits :meth:`wait` (or, in a worker thread, calls
    :meth:`wait_blocking`).

    ``hold``/``release`` may be called from any thread; waiters are woken on their own loop.
    """

    __slots__ = (
        "_blocked", "_holds", "_kept_thread", "_lock", "_loop_waiters", "_stopped", "_upstreams",
        "_waiters", "ready",
    )

    def __init__(self) -> None:
        self.ready = True
        self._holds = 0
        self._lock = threading.Lock()
        # Each waiter is a one-shot callable that wakes it, safe to call from any thread.
        self._waiters: list[Callable[[], None]] = []
        # Of those, the ones awaiting wait(), with the thread of their loop.
        self._loop_waiters: list[tuple[int, Callable[[], None]]] = []
        # The events of threads blocked in wait_blocking(); whether waiters are let go for good
        # (stop_blocking), but for producers on the loop of ``_kept_thread``.
        self._blocked: list[threading.Event] = []
        self._stopped = False
        self._kept_thread = 0
        # Demands that are held while this one is (a shared run's, behind each subscriber).
        self._upstreams: list[Demand] = []

    def hold(self) -> None:
        """Ask producers to stop until :meth:`release` is called as often."""
        with self._lock:
            self._holds += 1
            self.ready = False
            first = self._holds == 1
            upstreams = list(self._upstreams) if first else []
        for upstream in upstreams:
            upstream.hold()

    def release(self) -> None:
        """Withdraw one :meth:`hold`; producers go on when none is left."""
        with self._lock:
            if self._holds == 0:
                return
            self._holds -= 1
            if self._holds:
                return
            self.ready = True
            waiters, self._waiters = self._waiters, []
            blocked, self._blocked = self._blocked, []
            self._loop_waiters = []
            upstreams = list(self._upstreams)
        for wake in waiters:
            wake()
        for event in blocked:
            event.set()
        for upstream in upstreams:
            upstream.release()

    def stop_blocking(self, kept_thread: int) -> None:
        """The consumer, whose loop runs on ``kept_thread``, is gone: everything waiting goes
        on, now and from now on (:meth:`wait_blocking` returning False), except producers on
        that loop. Those are being cancelled, and one let go before its cancellation lands
        would run on (a local model never suspends). The rest cannot be cancelled from here: a
        sync tool's writer, a model called from a worker thread on a loop of its own."""
        with self._lock:
            self._stopped = True
            self._kept_thread = kept_thread
            blocked, self._blocked = self._blocked, []
            foreign = [wake for thread, wake in self._loop_waiters if thread != kept_thread]
        for event in blocked:
            event.set()
        for wake in foreign:
            wake()

    def call_when_ready(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once nobody holds the demand: now, or from the thread that releases it."""
        with self._lock:
            if not self.ready:
                self._waiters.append(fn)
                return
        fn()

    def link_upstream(self, upstream: Demand) -> None:
        """Hold ``upstream`` whenever this demand is held (for one source shared by many)."""
        with self._lock:
            self._upstreams.append(upstream)
            held = not self.ready
        if held:
            upstream.hold()

    def unlink_upstream(self, upstream: Demand) -> None:
        """Undo :meth:`link_upstream`, releasing the hold it placed, if any."""
        with self._lock:
            if upstream not in self._upstreams:
                return
            self._upstreams.remove(upstream)
            held = not self.ready
        if held:
            upstream.release()

    async def wait(self) -> None:
        """Wait (on the current event loop) until no consumer holds the demand."""
        if self.ready:
            return
        loop = current_loop()
        if loop is None:  # pragma: no cover - wait() is only awaited inside a loop
            raise RuntimeError("Demand.wait() must be awaited inside an event loop")
        event = anyio.Event()
        wake = _waker(loop, event.set)
        with self._lock:
            if self.ready or (self._stopped and loop.thread_id != self._kept_thread):
                return
            self._waiters.append(wake)
            self._loop_waiters.append((loop.thread_id, wake))
        try:
            await event.wait()
        finally:
            with self._lock:
                if wake in self._waiters:
                    self._waiters.remove(wake)
                if (loop.thread_id, wake) in self._loop_waiters:
                    self._loop_waiters.remove((loop.thread_id, wake))

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """Block this (worker) thread until no consumer holds the demand; False on timeout or
        once :meth:`stop_blocking` was called."""
        if self.ready:
            return True
        event = threading.Event()
        with self._lock:
            if self.ready:
                return True
            if self._stopped:
                return False
            self._blocked.append(event)
        try:
            return event.wait(timeout) and not self._stopped
        finally:
            with self._lock:
                if event in self._blocked:
                    self._blocked.remove(event)

    def __repr__(self) -> str:
        return f"Demand(ready={self.ready}, holds={self._holds})"


def _waker(loop: LoopHandle, fn: Callable[[], None]) -> Callable[[], None]:
    """A callable that runs ``fn`` on ``loop``: directly on its thread, else thread-safely."""

    def wake() -> None:
        if threading.get_ident() == loop.thread_id:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    return wake


subscription_demand: ContextVar[Demand | None] = ContextVar(
    "rxagent_subscription_demand", default=None
)
"""The demand a sink imposes on what it subscribes to; read when a producer is spawned."""

class ToolCallRecord:
    """What one call of a sync tool did that decides where the tool may run next time.

    Installed in the call's context. ``reached_run`` is set when the call asks for the writer,
    starts a model call or iterates a stream: a tool that has done any of these always runs in
    a worker thread, where it can wait for the consumer. ``in_place`` is set while the call
    runs on the event loop's own thread: nothing it starts may then wait for that loop.
    """

    __slots__ = ("in_place", "reached_run")

    def __init__(self, *, in_place: bool) -> None:
        self.in_place = in_place
        self.reached_run = False


current_tool_call: ContextVar[ToolCallRecord | None] = ContextVar(
    "rxagent_tool_call", default=None
)
"""The record of the sync tool call this code runs in, if any."""


# Where producers spawned on a given loop (its thread id) are collected, if anywhere.
_spawned_into: ContextVar[tuple[int, list[Spawned]] | None] = ContextVar(
    "rxagent_spawned_into", default=None
)


_waiters_lock = threading.Lock()


class Spawned(abc.DisposableBase):
    """One spawned producer: cancel it from any thread, or wait for it to be over.

    It is also the subscription's disposable (disposing cancels). Nothing to wait with is
    made until somebody waits: thousands of concurrent runs each spawn a few of these, and
    an event (or a reactivex Disposable, with its lock) per handle cost more than the rest.
    """

    __slots__ = ("_cancelled", "_done", "_loop", "_scope", "_waiters")

    def __init__(self, loop: LoopHandle) -> None:
        self._loop = loop
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False
        self._done = False
        self._waiters: list[Callable[[], None]] | None = None  # each wakes one waiter

    @property
    def done(self) -> bool:
        """True once the producer has returned, failed or finished being cancelled."""
        return self._done

    def _finish(self) -> None:
        with _waiters_lock:
            self._done = True
            waiters, self._waiters = self._waiters, None
        for wake in waiters or ():
            wake()

    def _add_waiter(self, wake: Callable[[], None]) -> bool:
        """Register ``wake`` for the end; False (and nothing registered) if it is over."""
        with _waiters_lock:
            if self._done:
                return False
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(wake)
            return True

    def cancel(self) -> None:
        """Cancel the producer; safe from any thread and idempotent."""
        if self._cancelled or self._done:
            return
        self._cancelled = True
        running = current_loop()
        if running is not None and running.thread_id == self._loop.thread_id:
            # Directly: a thread-safe call writes to the loop's wake-up pipe, and every model
            # call of a run is disposed of on the loop once it has ended. (On the loop's own
            # thread, but with the loop stopped, the cancellation must wait for it to run.)
            self._cancel_on_loop()
        else:
            self._loop.call_soon_threadsafe(self._cancel_on_loop)

    def dispose(self) -> None:
        """Cancel the producer (the subscription's dispose)."""
        self.cancel()

    def _cancel_on_loop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def wait_done(self) -> None:
        """Wait, on any event loop, until the producer is over."""
        if self._done:
            return
        loop = current_loop()
        if loop is None:  # pragma: no cover - awaited inside a loop by definition
            raise RuntimeError("Spawned.wait_done() must be awaited inside an event loop")
        event = anyio.Event()
        if self._add_waiter(_waker(loop, event.set)):
            await event.wait()

    def wait_done_blocking(self, timeout: float | None = None) -> bool:
        """Block this thread until the producer is over; False on timeout."""
        event = threading.Event()
        if not self._add_waiter(event.set):
            return True
        return event.wait(timeout)


def spawn(
    work: Callable[[], Awaitable[None]],
    *,
    on_error: Callable[[Exception], None],
    on_completed: Callable[[], None],
) -> Spawned:
    """Run ``work()`` on this thread's event loop, or on the background loop if none runs here.

    ``on_completed`` / ``on_error`` are called on the loop when the work ends by itself; a
    cancelled work calls neither. The caller's context variables travel with the work.
    """
    loop = current_loop()
    if loop is None:
        loop = _background_loop()
    handle = Spawned(loop)
    collector = _spawned_into.get()
    if collector is not None and collector[0] == loop.thread_id:
        # Only work on the collector's own loop. A model called by a sync tool runs on the
        # worker thread's loop for that tool, which waits for it: cancelling it from outside
        # would leave the tool waiting forever.
        collector[1].append(handle)

    async def guarded() -> None:
        try:
            with anyio.CancelScope() as scope:
                handle._scope = scope
                if handle._cancelled:
                    scope.cancel()
                try:
                    await work()
                except Exception as exc:
                    if not handle._cancelled:
                        on_error(exc)
                    return
            if not handle._cancelled:
                on_completed()
        finally:
            handle._finish()

    context = contextvars.copy_context()
    if isinstance(loop, _AsyncioLoop):
        if loop.thread_id == threading.get_ident():
            loop.loop.create_task(guarded(), context=context)
        else:
            _claim_for_asyncio(context)
            loop.call_soon_threadsafe(lambda: loop.loop.create_task(guarded(), context=context))
    else:
        import trio

        trio.lowlevel.spawn_system_task(guarded, context=context)
    return handle


class collect_spawned:
    """Collect the producers spawned by subscriptions made inside the ``with`` block."""

    def __init__(self) -> None:
        self.handles: list[Spawned] = []
        self._token: contextvars.Token[tuple[int, list[Spawned]] | None] | None = None

    def __enter__(self) -> list[Spawned]:
        self._token = _spawned_into.set((threading.get_ident(), self.handles))
        return self.handles

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _spawned_into.reset(self._token)


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

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        demand = subscription_demand.get() or Demand()
        # Producers spawned from inside this one (nested model calls) inherit its demand.
        token = subscription_demand.set(demand)
        try:
            handle = spawn(
                lambda: produce(observer.on_next, demand),
                on_error=observer.on_error,
                on_completed=observer.on_completed,
            )
        finally:
            subscription_demand.reset(token)
        return handle

    return FastObservable(subscribe)


_background: _AsyncioLoop | None = None
_background_lock = threading.Lock()


def _background_loop() -> _AsyncioLoop:
    """The shared loop, on a daemon thread, for subscriptions made outside any event loop."""
    global _background
    with _background_lock:
        if _background is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            ident: list[int] = []

            def run() -> None:
                asyncio.set_event_loop(loop)
                ident.append(threading.get_ident())
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=run, name="rxagent-loop", daemon=True).start()
            ready.wait()
            _background = _AsyncioLoop(loop, ident[0])
        return _background


def run_sync(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``work()`` to completion from sync code: on a fresh loop, or, when this thread
    already runs a loop (a notebook), on the background loop while this thread waits.

    On the background loop's own thread (sync code called from a run there, such as a tool
    running in place) that loop cannot serve us, so the work gets a fresh loop in a worker
    thread instead.
    """
    if current_loop() is None:
        return asyncio.run(_call(work))
    background = _background_loop()
    if background.thread_id != threading.get_ident():
        return asyncio.run_coroutine_threadsafe(_call(work), background.loop).result()
    context = contextvars.copy_context()
    finished = threading.Event()
    outcome: list[tuple[bool, Any]] = []

    def job() -> None:
        try:
            outcome.append((True, context.run(asyncio.run, _call(work))))
        except BaseException as error:  # raised in the waiting thread, whatever it is
            outcome.append((False, error))
        finished.set()

    _workers.submit(job)
    finished.wait()
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(_T, value)


async def _call(work: Callable[[], Awaitable[_T]]) -> _T:
    _claim_for_asyncio(None)
    return await work()


def _claim_for_asyncio(context: contextvars.Context | None) -> None:
    """Mark ``context`` (the current one if None), copied from code that may run another
    async library, as asyncio's: ``anyio.run(..., backend="trio")`` records "trio" in sniffio's
    context variable, and anyio would take that over the asyncio loop the work now runs on."""
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        if context is None:
            sniffio.current_async_library_cvar.set("asyncio")
        else:
            context.run(sniffio.current_async_library_cvar.set, "asyncio")


class _Workers:
    """Daemon threads for sync work (sync tools), kept while busy and for a minute after.

    A hand-off is a queue put and one wake-up of the loop: about half the cost of
    ``anyio.to_thread.run_sync``, which a sync tool pays on every call.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that worker is taken
        if start:
            threading.Thread(target=self._work, args=(job,), name="rxagent-worker",
                             daemon=True).start()
        else:
            self._jobs.put(job)

    def _work(self, job: Callable[[], None]) -> None:
        while True:
            job()
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=60.0)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and self._jobs.empty():
                        self._idle -= 1
                        return
                job = self._jobs.get()  # a job was promised to us as we timed out


_workers = _Workers()


async def run_in_thread(fn: Callable[[], _T]) -> _T:
    """Run ``fn()`` in a worker thread and wait for it, on asyncio or trio.

    A thread cannot be stopped: on cancellation this waits for ``fn`` to return, then lets
    the cancellation through (its result is dropped), as ``anyio.to_thread.run_sync`` does
    without ``abandon_on_cancel``.
    """
    loop = current_loop()
    if loop is None:  # pragma: no cover - awaited inside a loop by definition
        raise RuntimeError("run_in_thread() must be awaited inside an event loop")
    finished = anyio.Event()
    outcome: list[tuple[bool, Any]] = []

    def job() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as error:  # delivered to the awaiting task, whatever it is
            outcome.append((False, error))
        loop.call_soon_threadsafe(finished.set)

    _workers.submit(job)
    try:
        await finished.wait()
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await finished.wait()
        raise
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(_T, value)
