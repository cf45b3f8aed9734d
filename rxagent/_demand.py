"""The demand signal: how a slow consumer holds back every producer behind its subscription.

Rx's ``on_next`` cannot wait, so bounded memory comes from a signal that producers consult
*before* producing: a :class:`Demand` that a consumer holds while its buffer is above its
high-water mark. Checking it is a plain attribute read, so the per-item cost is nothing while
the consumer keeps up.

The demand in force travels from the consumer to the producer through the subscription call
itself: sinks set :data:`subscription_demand` around ``subscribe()``, operators pass the call
up synchronously, and the producer reads the variable when it is spawned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar

from ._loops import Wakeup, current_loop, waker

__all__ = ["Demand", "subscription_demand"]


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
        event = Wakeup()
        wake = waker(loop, event.set)
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


subscription_demand: ContextVar[Demand | None] = ContextVar(
    "rxagent_subscription_demand", default=None
)
"""The demand a sink imposes on what it subscribes to; read when a producer is spawned."""
