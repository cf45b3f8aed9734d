"""Where one run's parts go: the subscriber, from any thread, and the per-token shortcut.

Every part of a run (its steps, its model calls' chunks, its tools' writes, nested agents' parts)
reaches the subscriber through one :class:`RunSink`. The sink is the only place that knows two
things the per-token path depends on:

- **which thread it is on.** Parts are delivered on the run's event loop thread. Code in
  worker threads (sync tools, a model called from one) queues its parts, and the loop is woken
  once per batch, not once per part: a wake-up costs far more than a part. The queue is bounded
  too: a producer waits while ``_MAX_PENDING`` parts are queued.
- **what the subscriber keeps.** A subscriber that is a :class:`~rxagent._types.PayloadSink`
  keeps one mode's payloads and nothing else (``stream(stream_mode="messages")``); the sink
  asks it once and from then on hands that mode's payloads to it directly and drops the other
  modes at their source.

The model-call reporters and the run's writer below share the sink's queue and its decision.
They are written for speed (one frame per token between a model and the subscriber; a writer
in a worker thread that appends to the queue without building a part it would drop), and that
is why they live here, next to the state they read, and nowhere else.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from threading import get_ident  # a global, not an attribute lookup, per item
from typing import Any

from reactivex import abc

from ._demand import Demand
from ._fast_rx import Trusted, discard
from ._loops import LoopHandle
from ._messages import AIMessage, AIMessageChunk
from ._scheduler import holds_the_loop
from ._types import KeptPayloads, PayloadSink, StreamPart
from ._writer import StreamWriter

__all__ = ["RunSink"]

_MAX_PENDING = 1024
_queue_lock = threading.Lock()


class RunSink:
    """One subscription's parts, delivered on the run's loop from whichever thread makes them.

    Shared by a run and every agent nested in it as a tool (``as_tool``). ``closed`` is set
    once the run is over or its consumer has gone; what arrives after that is dropped.

    An agent run started inside a tool of another run (LangChain's sub-agent pattern) has a
    sink of its own, for its own subscriber, and *joins* the other run: each of its parts also
    goes to that run's sink (``joins``: the sink and the namespace of the tool call), which
    delivers it only if its subscriber asked for nested parts (``subgraphs``), and passes it
    on up if it has joined a run itself.
    """

    __slots__ = (
        "_drained", "_flush_scheduled", "_on_close", "_pending", "_subgraphs", "_to_subscriber",
        "closed", "deliver", "demand", "joins", "kept", "loop", "wants_nested",
    )

    def __init__(
        self,
        observer: abc.ObserverBase[StreamPart],
        demand: Demand,
        loop: LoopHandle,
        *,
        subgraphs: bool = True,
        joins: tuple[RunSink, tuple[str, ...]] | None = None,
    ) -> None:
        self._to_subscriber = observer.on_next
        self.demand = demand
        self.loop = loop
        self.closed = False
        self._on_close: list[Callable[[], None]] = []
        # Whether anybody reads the parts of runs joined to this one: this subscriber, or one
        # further up. Nobody: a joined run sends nothing up.
        self.joins = joins if joins is not None and joins[0].wants_nested else None
        self.wants_nested: bool = subgraphs or self.joins is not None
        self._subgraphs = subgraphs
        self.deliver: Callable[[StreamPart], None]  # whole parts, on the loop
        if self.joins is None:
            self.deliver = self._to_subscriber
            # The one decision of the per-token shortcut, made once per run.
            self.kept: KeptPayloads | None = (
                observer.kept_payloads() if isinstance(observer, PayloadSink) else None
            )
        else:
            self.deliver = self._deliver_and_pass_up
            self.kept = None  # every part goes two ways: no shortcut
        # Parts (or, with ``kept``, payloads) from other threads, waiting for the loop. Made
        # on first use: most runs never see another thread.
        self._pending: deque[Any] | None = None
        self._flush_scheduled = False
        self._drained: threading.Event | None = None

    def direct(self, mode: str) -> Callable[[Any], None] | None:
        """Where ``mode``'s payloads go when the subscriber keeps that mode's only."""
        kept = self.kept
        return kept.deliver if kept is not None and kept.mode == mode else None

    def emit(self, part: StreamPart) -> None:
        """Deliver a part to the subscriber, from whichever thread we are on.

        From another thread the part is queued for the loop, and the caller waits while
        ``_MAX_PENDING`` parts are queued already.
        """
        if self.closed:
            return
        if get_ident() == self.loop.thread_id:
            if self._pending:  # parts from other threads came first
                self._flush()
            self.deliver(part)
        else:
            self._queue(part)

    def _queue(self, part: StreamPart) -> None:
        """Queue a part from another thread for the loop; wait while the queue is full."""
        pending, drained = self._pending, self._drained
        if pending is None or drained is None:
            pending, drained = self._cross_thread_queue()
        kept = self.kept
        if kept is None:
            pending.append(part)
        elif part["type"] == kept.mode:
            pending.append(part["data"])
        else:
            return  # a mode the subscriber would drop
        if not self._flush_scheduled:
            self._schedule_flush()
        if len(pending) >= _MAX_PENDING and holds_the_loop():
            return  # a model called by a tool running in place: the loop cannot flush yet
        while len(pending) >= _MAX_PENDING and not self.closed:
            drained.clear()
            if len(pending) < _MAX_PENDING:  # flushed between the test and the clear
                break
            if not self._flush_scheduled:
                self._schedule_flush()
            drained.wait(1.0)

    def receive_joined(self, part: StreamPart) -> None:
        """A part of a run joined to this one, its namespace already under this run's root;
        from any thread."""
        if self._subgraphs:
            self.emit(part)  # to the subscriber, and on up (``deliver``) if joined too
        elif self.joins is not None:
            self._pass_up(part)

    def _deliver_and_pass_up(self, part: StreamPart) -> None:
        self._to_subscriber(part)
        self._pass_up(part)

    def _pass_up(self, part: StreamPart) -> None:
        assert self.joins is not None
        sink, prefix = self.joins
        up: StreamPart = {**part, "ns": prefix + part["ns"]}
        sink.receive_joined(up)

    def close(self) -> None:
        """The run is over (or cancelled): drop what still arrives, and stop what joined it."""
        with _queue_lock:  # a run joined from a worker thread registers from there
            self.closed = True
            callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()

    def when_closed(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the run closes (at once if it has); returns the function
        that withdraws the request."""
        with _queue_lock:
            if not self.closed:
                self._on_close.append(callback)
                return lambda: self._withdraw(callback)
        callback()
        return _nothing

    def _withdraw(self, callback: Callable[[], None]) -> None:
        with _queue_lock:
            if callback in self._on_close:
                self._on_close.remove(callback)

    def writer(self, ns: tuple[str, ...]) -> StreamWriter:
        """A writer whose data goes to the ``custom`` mode under ``ns``."""
        return _RunWriter(self, ns)

    def reporter(
        self,
        ns: tuple[str, ...],
        metadata: dict[str, Any],
        observer: abc.ObserverBase[AIMessageChunk],
        *,
        whole: bool,
    ) -> abc.ObserverBase[AIMessageChunk]:
        """An observer that passes a model call's chunks on to ``observer``, reporting each to
        the subscriber as a ``messages`` part under ``ns`` (``whole``: the call's one chunk
        as the whole AIMessage, for ``disable_streaming=True``)."""
        return (_ReportingWhole if whole else _Reporting)(self, ns, metadata, observer)

    def _cross_thread_queue(self) -> tuple[deque[Any], threading.Event]:
        with _queue_lock:
            if self._pending is None or self._drained is None:
                self._pending, self._drained = deque(), threading.Event()
            return self._pending, self._drained

    def _schedule_flush(self) -> None:
        self._flush_scheduled = True
        self.loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        # On the loop: everything queued so far, in order. The flag drops first, so a part
        # queued while we drain schedules another flush rather than being left behind.
        self._flush_scheduled = False
        pending, drained = self._pending, self._drained
        assert pending is not None and drained is not None
        if self.closed:
            pending.clear()
        else:
            deliver = self.deliver if self.kept is None else self.kept.deliver
            take = pending.popleft
            while pending:
                deliver(take())
        drained.set()


def _nothing() -> None:
    pass


class _RunWriter(StreamWriter):
    """A run's writer: ``custom`` parts under a namespace, with backpressure."""

    __slots__ = ("_demand", "_loop_thread", "_ns", "_sink")

    def __init__(self, sink: RunSink, ns: tuple[str, ...]) -> None:
        super().__init__()  # __call__ and asend are overridden; nothing to hand the base
        self._sink = sink
        self._ns = ns
        self._demand = sink.demand
        self._loop_thread = sink.loop.thread_id

    def __call__(self, data: Any) -> None:
        sink = self._sink
        if get_ident() == self._loop_thread:
            sink.emit({"type": "custom", "ns": self._ns, "data": data})  # the loop's thread
            return  # may not wait
        if not self._demand.ready and not self._demand.wait_blocking():
            return  # the consumer is gone: what the tool still writes is dropped
        # RunSink.emit's queueing, inlined for a writer in a worker thread (a sync tool
        # reporting progress), as long as nothing calls for more than an append.
        pending, kept = sink._pending, sink.kept
        if pending is None or sink.closed or len(pending) >= _MAX_PENDING - 1:
            sink.emit({"type": "custom", "ns": self._ns, "data": data})
            return
        if kept is None:
            pending.append({"type": "custom", "ns": self._ns, "data": data})
        elif kept.mode == "custom":
            pending.append(data)
        else:
            return  # a subscriber that keeps another mode's payloads
        if not sink._flush_scheduled:
            sink._schedule_flush()

    async def asend(self, data: Any) -> None:
        if not self._demand.ready:
            await self._demand.wait()
        self._sink.emit({"type": "custom", "ns": self._ns, "data": data})

    @property
    def discards(self) -> bool:
        return False


class _Reporting(Trusted[AIMessageChunk]):
    """Passes a model call's chunks on, reporting each to the sink as a ``messages`` part."""

    __slots__ = ("_direct", "_forward", "_metadata", "_ns", "_observer", "_on_loop", "_sink")

    def __init__(
        self,
        sink: RunSink,
        ns: tuple[str, ...],
        metadata: dict[str, Any],
        observer: abc.ObserverBase[AIMessageChunk],
    ) -> None:
        self._sink = sink
        self._ns = ns
        self._metadata = metadata  # built once per call, shared by all its chunks
        self._observer = observer
        forward = observer.on_next
        self._forward = None if forward is discard else forward
        # A call subscribed on the run's loop thread produces there too (it is spawned on the
        # subscriber's loop), so its chunks skip emit()'s thread check: the per-token path.
        self._on_loop = get_ident() == sink.loop.thread_id
        self._direct = sink.direct("messages") if self._on_loop else None

    def on_next(self, chunk: AIMessageChunk) -> None:
        # _report() inlined: one frame less on every token.
        sink = self._sink
        direct = self._direct
        if direct is not None:
            if not sink.closed:
                direct((chunk, self._metadata))
        else:
            part: StreamPart = {
                "type": "messages", "ns": self._ns, "data": (chunk, self._metadata)
            }
            if not self._on_loop:
                sink.emit(part)
            elif not sink.closed:
                sink.deliver(part)
        forward = self._forward
        if forward is not None:
            forward(chunk)

    def _report(self, payload: AIMessage) -> None:
        sink = self._sink
        if self._direct is not None:
            if not sink.closed:
                self._direct((payload, self._metadata))
            return
        part: StreamPart = {"type": "messages", "ns": self._ns, "data": (payload, self._metadata)}
        if not self._on_loop:
            sink.emit(part)
        elif not sink.closed:
            sink.deliver(part)

    def on_error(self, error: Exception) -> None:
        self._observer.on_error(error)

    def on_completed(self) -> None:
        self._observer.on_completed()


class _ReportingWhole(_Reporting):
    """For ``disable_streaming=True``: the call's one chunk shows as the whole AIMessage."""

    __slots__ = ()

    def on_next(self, chunk: AIMessageChunk) -> None:
        self._report(chunk.to_message())
        if self._forward is not None:
            self._forward(chunk)
