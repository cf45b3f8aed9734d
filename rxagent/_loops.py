"""Where async work runs: the event loop of this thread (asyncio or trio), or a shared background
loop, and handles to cancel spawned work from any thread or wait for its end.

Subscribing to one of rxagent's cold Observables spawns its producer here: on the event loop
running in the subscribing thread, or, with none running there, on one background loop thread
that all such subscriptions share.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from reactivex import abc

from ._exceptions import UsageError

__all__ = [
    "LoopHandle",
    "Spawned",
    "Wakeup",
    "background_loop",
    "claim_for_asyncio",
    "collect_spawned",
    "current_loop",
    "inside_spawned_work",
    "land_cancellation",
    "parked_on_thread",
    "spawn",
    "waker",
]


class LoopHandle(Protocol):
    """The few things we need from an event loop, asyncio's or trio's."""

    thread_id: int

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None: ...

    def pause(self) -> Awaitable[None]:
        """Let the loop run its other work once, as ``anyio.lowlevel.checkpoint()`` does
        (cancellation included), for code running on this loop that pauses often: anyio
        looks up the running library on every call, which costs as much as the pause."""
        ...


class _AsyncioLoop:
    __slots__ = ("loop", "thread_id")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        self.loop = loop
        self.thread_id = thread_id

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def pause(self) -> Awaitable[None]:
        return asyncio.sleep(0)  # what anyio's checkpoint is on asyncio


class _TrioLoop:
    __slots__ = ("thread_id", "token")

    def __init__(self, token: Any, thread_id: int) -> None:
        self.token = token
        self.thread_id = thread_id

    def pause(self) -> Awaitable[None]:
        checkpoint: Callable[[], Awaitable[None]] = sys.modules["trio"].lowlevel.checkpoint
        return checkpoint()

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        self.token.run_sync_soon(fn)


def current_loop() -> LoopHandle | None:
    """The event loop running in this thread, or ``None`` outside any."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # trio as a guest of this loop (trio.lowlevel.start_guest_run) runs its tasks inside
        # the loop's callbacks: code in a trio task is trio's, and so is the work it spawns.
        trio = sys.modules.get("trio")
        if trio is not None and hasattr(trio, "lowlevel") and trio.lowlevel.in_trio_task():
            return _TrioLoop(trio.lowlevel.current_trio_token(), threading.get_ident())
        # One handle per loop, kept on the loop: this is asked on every subscription.
        handle: _AsyncioLoop | None = getattr(loop, "_rxagent_handle", None)
        if handle is None:
            handle = _AsyncioLoop(loop, threading.get_ident())
            with contextlib.suppress(AttributeError):  # a loop that takes no attributes
                loop._rxagent_handle = handle  # type: ignore[attr-defined]
        return handle
    trio = sys.modules.get("trio")
    # A trio that another thread is still importing has no ``lowlevel`` yet, and no trio loop
    # can be running anywhere until it has.
    if trio is not None and hasattr(trio, "lowlevel"):
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            return None
        return _TrioLoop(token, threading.get_ident())
    return None


def waker(loop: LoopHandle, fn: Callable[[], None]) -> Callable[[], None]:
    """A callable that runs ``fn`` on ``loop``: directly on its thread, else thread-safely."""

    def wake() -> None:
        if threading.get_ident() == loop.thread_id:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    return wake


class Wakeup:
    """A one-shot wake-up for one waiting task: ``anyio.Event`` for a single waiter, in a
    fraction of its memory.

    On asyncio an ``anyio.Event`` is an ``asyncio.Event`` with a deque of waiters, about
    0.75 KiB, and a paused run waits in several places at once (its model for demand, its
    reader for items, its model call for its end): across a thousand held streams that was
    megabytes. This is a future of the running loop, made only when the task waits (on trio,
    a ``trio.Event``). ``set`` must be called on the loop's own thread (:func:`waker` gets
    there from others) and may come before ``wait``. Cancelling the waiting task ends the wait,
    as for any await.
    """

    __slots__ = ("_is_set", "_waiter")

    def __init__(self) -> None:
        self._is_set = False
        self._waiter: Any = None  # the asyncio future or trio event, once a task waits

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        if self._is_set:
            return
        self._is_set = True
        waiter = self._waiter
        if waiter is not None:
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():  # a cancelled wait's future is done already
                    waiter.set_result(None)
            else:
                waiter.set()

    async def wait(self) -> None:
        if self._is_set:
            return
        if _in_trio():
            import trio

            self._waiter = event = trio.Event()
            await event.wait()
        else:
            self._waiter = future = asyncio.get_running_loop().create_future()
            await future

    async def wait_at_most(self, timeout: float) -> None:
        """:meth:`wait`, giving up after ``timeout`` seconds (then :meth:`is_set` is False).

        On asyncio, a timer on the waiting future rather than an anyio cancel scope (the
        scope and its sets are most of a kilobyte, for a wait a held stream is always in)."""
        if self._is_set:
            return
        if _in_trio():
            import trio

            self._waiter = event = trio.Event()
            with trio.move_on_after(timeout):
                await event.wait()
            return
        loop = asyncio.get_running_loop()
        self._waiter = future = loop.create_future()
        timer = loop.call_later(timeout, _give_up, future)
        try:
            await future
        finally:
            timer.cancel()


def _give_up(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _in_trio() -> bool:
    """Whether a trio task is running here. Asked of trio itself rather than of
    ``asyncio.get_running_loop()``: in trio's guest mode an asyncio loop runs as the host, and
    trio's tasks run inside it."""
    trio = sys.modules.get("trio")
    if trio is None or not hasattr(trio, "lowlevel"):
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


# Where producers spawned on a given loop (its thread id) are collected, if anywhere.
_spawned_into: ContextVar[tuple[int, list[Spawned]] | None] = ContextVar(
    "rxagent_spawned_into", default=None
)


_waiters_lock = threading.Lock()

# The spawned work that the running task belongs to (set in each spawned task's own context,
# so nested tasks and the work they spawn see it).
_current: ContextVar[Spawned | None] = ContextVar("rxagent_current_spawned", default=None)


class Spawned(abc.DisposableBase):
    """One spawned producer: cancel it from any thread, or wait for it to be over.

    It is also the subscription's disposable (disposing cancels). Nothing to wait with is
    made until somebody waits: thousands of concurrent runs each spawn a few of these, and
    an event (or a reactivex Disposable, with its lock) per handle cost more than the rest.
    """

    __slots__ = ("_cancelled", "_done", "_loop", "_parent", "_parked", "_scope", "_waiters")

    def __init__(self, loop: LoopHandle, parent: Spawned | None = None) -> None:
        self._loop = loop
        # The work this was spawned from, on the same loop: its cancellation is this one's.
        self._parent = parent
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False
        self._done = False
        self._parked = 0  # parts of it waiting, cancelled, for a thread (see parked_on_thread)
        self._waiters: list[Callable[[], None]] | None = None  # each wakes one waiter

    @property
    def done(self) -> bool:
        """True once the producer has returned, failed or finished being cancelled."""
        return self._done

    @property
    def settled(self) -> bool:
        """True once the producer is over, or is cancelled and waits only for a worker thread
        that no cancellation can stop (a sync tool; see :func:`parked_on_thread`)."""
        return self._done or self._parked > 0

    def _finish(self) -> None:
        with _waiters_lock:
            self._done = True
            waiters, self._waiters = self._waiters, None
        for wake in waiters or ():
            wake()

    def _park(self) -> None:
        # Waiters for the end are woken too: each checks what it waits for, and waits again.
        with _waiters_lock:
            self._parked += 1
            waiters, self._waiters = self._waiters, None
        for wake in waiters or ():
            wake()

    def _unpark(self) -> None:
        with _waiters_lock:
            self._parked -= 1

    def _add_waiter(self, wake: Callable[[], None], or_parked: bool) -> bool:
        """Register ``wake`` for the end or a park; False (and nothing registered) if what is
        waited for (the end, or with ``or_parked`` settled) has come."""
        with _waiters_lock:
            if self._done or (or_parked and self._parked):
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

    def _land_pending(self) -> bool:
        """On this handle's loop: whether this work or the work it was spawned from was
        cancelled; a cancellation that another thread asked for and that has not reached the
        loop yet (it waits behind whatever the loop had queued) lands now."""
        found = False
        handle: Spawned | None = self
        while handle is not None:
            if handle._cancelled:
                found = True
                handle._cancel_on_loop()
            handle = handle._parent
        return found

    def _cancel_on_loop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def wait_done(self, *, or_parked: bool = False) -> None:
        """Wait, on any event loop, until the producer is over (with ``or_parked``, until it
        is :attr:`settled`)."""
        loop = current_loop()
        if loop is None:  # pragma: no cover - awaited inside a loop by definition
            raise RuntimeError("Spawned.wait_done() must be awaited inside an event loop")
        while True:
            event = anyio.Event()
            if not self._add_waiter(waker(loop, event.set), or_parked):
                return
            await event.wait()

    def wait_done_blocking(self, timeout: float, *, or_parked: bool = False) -> bool:
        """Block this thread until the producer is over (with ``or_parked``, until it is
        :attr:`settled`); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            event = threading.Event()
            if not self._add_waiter(event.set, or_parked):
                return True
            if not event.wait(deadline - time.monotonic()):
                return False


def spawn(
    work: Callable[[], Awaitable[None]],
    *,
    on_error: Callable[[Exception], None],
    on_completed: Callable[[], None],
    elsewhere: bool = False,
) -> Spawned:
    """Run ``work()`` on this thread's event loop, or on the background loop if none runs here
    (or if ``elsewhere``: this thread is about to block until the work is over).

    ``on_completed`` / ``on_error`` are called on the loop when the work ends by itself; a
    cancelled work calls neither. The caller's context variables travel with the work.

    Raises:
        UsageError: ``elsewhere`` on the background loop's own thread, which nothing could
            then serve.
    """
    loop = current_loop()
    if elsewhere and loop is not None:
        loop = background_loop()
        if loop.thread_id == threading.get_ident():
            raise UsageError(
                "a blocking .run() on rxagent's background loop would wait for itself: "
                "await the pipeline (or iterate it with 'async for') instead"
            )
    elif loop is None:
        loop = background_loop()
    parent = _current.get()
    handle = Spawned(
        loop, parent if parent is not None and parent._loop.thread_id == loop.thread_id else None
    )
    collector = _spawned_into.get()
    if collector is not None and collector[0] == loop.thread_id:
        # Only work on the collector's own loop. A model called by a sync tool runs on the
        # worker thread's loop for that tool, which waits for it: cancelling it from outside
        # would leave the tool waiting forever.
        collector[1].append(handle)

    async def guarded() -> None:
        _current.set(handle)  # in this task's own context (a copy made for it below)
        try:
            with anyio.CancelScope() as scope:
                handle._scope = scope
                # Cancelled before it started, or the work that spawned it was (from another
                # thread, with the cancellation still queued behind this start): never start
                # it, since work() runs up to its first checkpoint before a cancel could land.
                if handle._land_pending():
                    handle._cancelled = True
                    return
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
            # Subscribed from trio code on another thread (a sync stream handing its
            # subscription to the background loop), the context may still say "trio".
            sniffio = sys.modules.get("sniffio")
            if sniffio is not None and context.get(sniffio.current_async_library_cvar) not in (
                    None, "asyncio"):
                claim_for_asyncio(context)
            loop.loop.create_task(guarded(), context=context).add_done_callback(_seen)
        else:
            claim_for_asyncio(context)
            loop.call_soon_threadsafe(
                lambda: loop.loop.create_task(guarded(), context=context).add_done_callback(_seen)
            )
    else:
        import trio

        trio.lowlevel.spawn_system_task(guarded, context=context)
    return handle


def _seen(task: asyncio.Task[None]) -> None:
    # Only Ctrl-C (KeyboardInterrupt) or SystemExit gets out of guarded(): raised to whoever
    # drove the loop, it must not be logged again as "never retrieved" when the task is freed.
    if not task.cancelled():
        task.exception()


def inside_spawned_work() -> bool:
    """Whether the code running now is part of work spawned on this thread's running loop
    (a run, a model call, an async tool of a run), rather than code the loop runs for
    somebody else (a notebook cell)."""
    handle = _current.get()
    return handle is not None and handle._loop.thread_id == threading.get_ident()


@contextlib.contextmanager
def parked_on_thread() -> Iterator[None]:
    """Mark the spawned work this task runs in as waiting, cancelled, for a worker thread
    that no cancellation can stop (a sync tool): it is then :attr:`Spawned.settled`, which
    is all that a sync iterator left by Ctrl-C or dropped waits for; the rest of the run's
    cancellation finishes when the thread returns."""
    handle = _current.get()
    if handle is None or handle._loop.thread_id != threading.get_ident():
        yield
        return
    handle._park()
    try:
        yield
    finally:
        handle._unpark()


async def land_cancellation() -> None:
    """Raise the cancellation of the spawned work this task runs in if it was cancelled, even
    when the cancellation (asked for from another thread) has not reached the loop yet.

    Called before starting something that the other side sees, such as a model request or a
    tool call: ``dispose()`` from another thread sets the flag at once, while the scope is
    cancelled only when the loop gets to it, after whatever it had queued. A no-op outside
    spawned work, or on another loop than the work's (a sync tool's own loop, which the tool
    waits for).
    """
    handle = _current.get()
    if (
        handle is not None
        and handle._loop.thread_id == threading.get_ident()
        and handle._land_pending()
    ):
        await anyio.lowlevel.checkpoint_if_cancelled()


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


_background: _AsyncioLoop | None = None
_background_lock = threading.Lock()


def background_loop() -> _AsyncioLoop:
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




def claim_for_asyncio(context: contextvars.Context | None) -> None:
    """Mark ``context`` (the current one if None), copied from code that may run another
    async library, as asyncio's: ``anyio.run(..., backend="trio")`` records "trio" in sniffio's
    context variable, and anyio would take that over the asyncio loop the work now runs on."""
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        if context is None:
            sniffio.current_async_library_cvar.set("asyncio")
        else:
            context.run(sniffio.current_async_library_cvar.set, "asyncio")
