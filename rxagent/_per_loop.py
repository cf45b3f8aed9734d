"""What lives as long as an event loop: each thread's own loop for sync code, and values kept
per loop (a model's pooled HTTP client), closed when their loop ends.

asyncio has no event for a loop's end, but every way a loop ends well cancels its remaining
tasks first (``asyncio.run``, anyio's runners, and our own thread loops below), and trio
cancels its system tasks when the run's main task returns. So a value made on a loop is
watched by a task of its own that waits forever and closes the value when cancelled.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ._exceptions import UsageError

__all__ = ["PerLoop", "signals_wake", "thread_loop"]

_V = TypeVar("_V")

# How long the end of a thread's loop waits for its tasks. A task waiting for a sync tool's
# thread cannot be hurried, and a process must not stay until such a tool returns (Ctrl-C
# during a tool); closing sockets takes milliseconds.
_END_GRACE = 1.0


# -- this thread's own loop ---------------------------------------------------------------------


class _ThreadLoop:
    """A thread's event loop for sync code, ended when the thread ends (its thread-local
    storage is released) or, for the main thread, at exit."""

    __slots__ = ("loop", "pid", "wake")

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self.wake: tuple[socket.socket, socket.socket] | None = None  # see signals_wake()

    def end(self) -> None:
        if os.getpid() != self.pid:
            # A forked child, dropping the parent's threads: the loop's epoll instance is
            # shared with the parent, and closing the loop here would unregister the parent's
            # wake-up socket from it, so that the parent's loop never woke again.
            return
        with contextlib.suppress(Exception):  # best effort: the thread or process is ending
            _end_loop(self.loop)
        if self.wake is not None:
            # Never leave the process's wakeup fd naming a closed descriptor, whose number a
            # later file could take.
            with contextlib.suppress(ValueError):  # (not the main thread)
                current = signal.set_wakeup_fd(-1)
                if current != self.wake[1].fileno():  # someone else's: it stays
                    signal.set_wakeup_fd(current)
            for end in self.wake:
                end.close()

    def __del__(self) -> None:
        self.end()


_thread_loops = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's loop for sync code that drives one (sync iterators, ``invoke()``).

    Made once and reused (a new loop per stream cost a tenth of a millisecond before the first
    token, and values kept per loop, such as a pooled HTTP client, serve the next call). It
    ends as ``asyncio.run`` ends its loop, tasks cancelled and then finished, when the thread
    ends, or at exit for the main thread.
    """
    holder: _ThreadLoop | None = getattr(_thread_loops, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _thread_loops.holder = _ThreadLoop()
        if threading.current_thread() is threading.main_thread():
            # The main thread's storage is released too late in the interpreter's shutdown
            # for a loop to run.
            atexit.register(holder.end)
    return holder.loop


def _noop() -> None:
    pass


def signals_wake(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Make a signal wake ``loop`` (this thread's own, see :func:`thread_loop`) while it waits,
    until the returned function is called.

    Python runs a signal's handler (Ctrl-C's ``KeyboardInterrupt``) in the main thread, but
    the kernel may deliver the signal to any thread: to a sync tool's, say, while the main
    thread sleeps in the loop's selector waiting for that tool. Nothing then woke the main
    thread, and Ctrl-C did nothing. Python writes each signal to a "wakeup fd" from whatever
    thread gets it; ours is read by the loop, which wakes and lets the handler run.

    Only on the main thread (the only one Python runs handlers in), and only when no wakeup fd
    is set already: an outer stream's, or someone else's (asyncio's own signal handling), stays.
    """
    holder: _ThreadLoop | None = getattr(_thread_loops, "holder", None)
    if holder is None or holder.loop is not loop:
        return _noop
    if threading.current_thread() is not threading.main_thread():
        return _noop
    if holder.wake is None:
        holder.wake = reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)

        def drain() -> None:
            with contextlib.suppress(OSError):
                while reader.recv(4096):
                    pass

        loop.add_reader(reader.fileno(), drain)
    ours = holder.wake[1].fileno()
    previous = signal.set_wakeup_fd(ours, warn_on_full_buffer=False)
    if previous != -1:  # not ours to replace
        signal.set_wakeup_fd(previous)
        return _noop

    def restore() -> None:
        with contextlib.suppress(ValueError):  # (a garbage collection on another thread)
            current = signal.set_wakeup_fd(-1)
            if current != ours:  # replaced meanwhile: theirs stays
                signal.set_wakeup_fd(current)

    return restore


def _end_loop(loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_closed() or loop.is_running():
        return
    try:
        loop.run_until_complete(_cancel_all(_END_GRACE))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


async def _cancel_all(grace: float) -> None:
    this = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not this]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=grace)


# -- a value per loop ---------------------------------------------------------------------------


def _running_loop() -> object:
    """The running asyncio loop, or trio's token for the running trio run."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    trio: Any = sys.modules.get("trio")
    if trio is not None and hasattr(trio, "lowlevel"):
        with contextlib.suppress(RuntimeError):
            return trio.lowlevel.current_trio_token()
    raise UsageError("this needs a running event loop (asyncio or trio)")


class _Entry(Generic[_V]):
    """One loop's value, and how to close it early from any thread."""

    __slots__ = ("closed", "end_now", "loop", "value")

    def __init__(
        self,
        loop: object,
        value: _V,
        end_now: Callable[[bool], None],
        closed: Callable[[], Awaitable[None]],
    ) -> None:
        self.loop = loop
        self.value = value
        self.end_now = end_now  # close it soon (or now, see PerLoop.close), from any thread
        self.closed = closed  # wait, on its loop, until it is closed

    def is_dead(self) -> bool:
        # A loop closed without cancelling its tasks never ran our watcher's closing.
        return isinstance(self.loop, asyncio.AbstractEventLoop) and self.loop.is_closed()


class PerLoop(Generic[_V]):
    """A value per event loop: made by ``make()`` at its first use on a loop and closed by
    ``close(value)`` when that loop ends, or when this object is closed, whichever is first.

    Values such as an HTTP client belong to the loop they were made on (their sockets do), so
    each loop gets its own. Thread-safe: loops on several threads may use one ``PerLoop``.
    """

    __slots__ = ("__weakref__", "_close", "_closed", "_entries", "_lock", "_make", "_what")

    def __init__(
        self, make: Callable[[], _V], close: Callable[[_V], Awaitable[object]], *, what: str
    ) -> None:
        self._make = make
        self._close = close
        self._what = what  # for the error after close(): "this model"
        self._entries: dict[object, _Entry[_V]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> _V:
        """The running loop's value, made now if this loop has none yet.

        Raises:
            UsageError: after :meth:`close`, or outside a running event loop.
        """
        if self._closed:
            raise UsageError(f"{self._what} was closed; make a new one to use it again")
        loop = _running_loop()
        entry = self._entries.get(loop)
        if entry is None:
            entry = self._start(loop)
        return entry.value

    def _start(self, loop: object) -> _Entry[_V]:
        value = self._make()
        if isinstance(loop, asyncio.AbstractEventLoop):
            end_now, closed = self._watch_asyncio(loop, value)
        else:
            end_now, closed = self._watch_trio(loop, value)
        entry = _Entry(loop, value, end_now, closed)
        with self._lock:
            for key in [key for key, old in self._entries.items() if old.is_dead()]:
                del self._entries[key]
            self._entries[loop] = entry
        return entry

    def _forget(self, loop: object, value: _V) -> None:
        with self._lock:
            entry = self._entries.get(loop)
            if entry is not None and entry.value is value:
                del self._entries[loop]

    def _watch_asyncio(
        self, loop: asyncio.AbstractEventLoop, value: _V
    ) -> tuple[Callable[[bool], None], Callable[[], Awaitable[None]]]:
        stop = loop.create_future()

        async def watch() -> None:
            try:
                await stop
            finally:
                self._forget(loop, value)
                await self._close(value)

        # An empty context: the watcher outlives whatever run happened to make the value.
        task = loop.create_task(watch(), context=contextvars.Context())
        thread = threading.get_ident()

        def set_stop() -> None:
            if not stop.done():
                stop.set_result(None)

        def end_now(at_once: bool) -> None:
            if loop.is_closed():
                return
            if at_once and threading.get_ident() == thread and not loop.is_running():
                # The loop's own thread between two runs (a sync iterator's loop): now.
                set_stop()
                loop.run_until_complete(task)
                return
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(set_stop)

        async def closed() -> None:
            await asyncio.wait([task])

        return end_now, closed

    def _watch_trio(
        self, token: Any, value: _V
    ) -> tuple[Callable[[bool], None], Callable[[], Awaitable[None]]]:
        import trio

        stop = trio.Event()
        done = trio.Event()

        async def watch() -> None:
            try:
                await stop.wait()
            finally:
                self._forget(token, value)
                with trio.CancelScope(shield=True):
                    try:
                        await self._close(value)
                    finally:
                        done.set()

        # A system task: cancelled when the run's main task returns, which is our cue.
        trio.lowlevel.spawn_system_task(watch, context=contextvars.Context())

        def end_now(at_once: bool) -> None:
            with contextlib.suppress(RuntimeError):  # trio.RunFinishedError: ended already
                token.run_sync_soon(stop.set)

        return end_now, done.wait

    def close(self, *, at_once: bool = True) -> None:
        """Close every loop's value, each on its loop; :meth:`get` raises from now on.

        A value whose loop is idle on this thread (a sync iterator's loop) is closed before
        this returns; others at their loop's next turn. ``at_once=False`` (from a garbage
        collection, which may come at any point) never runs a loop in place.
        """
        with self._lock:
            self._closed = True
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.end_now(at_once)

    async def aclose(self) -> None:
        """:meth:`close`, and wait until the running loop's value is closed."""
        own = self._entries.get(_running_loop())
        self.close()
        if own is not None:
            await own.closed()
