"""Where sync tools run: the one owner of the placement policy, its state, and its consequences.

A sync tool starts in a worker thread, so that it cannot block the event loop and its writer
can wait for a slow consumer. Handing a call to a thread and back costs two thread wake-ups
(0.1-0.25 ms on a 2-core VM), more than a whole tool round costs otherwise, and a quick
pure-Python call holds the GIL either way. So once a tool's last two calls each returned within
a millisecond without reaching for the run, it runs *in place* on the event loop; a slower call
sends it back to the thread. Reaching for the run means asking for the writer, starting a model
call or iterating a stream (:func:`note_reaches_run`): such calls must be able to wait for the
consumer, which on the loop's own thread they cannot, so a tool that has done it once stays in
a thread for good. ``thread=True``/``False`` on the tool fixes the choice.

A call in place holds the loop that the consumer needs, so nothing it starts may wait for that
loop. The two things that would:

- a model it calls: the call is made without the run's demand (:meth:`SyncToolPlacement.call`
  clears it), and its parts queue for the loop past the usual bound (:func:`holds_the_loop`,
  asked by the run's sink);
- its writer: on the loop's own thread the writer never waits, so what it writes is buffered.

``docs/design.md`` gives the measurements behind the policy; ``tests/test_tools.py`` and
``tests/test_agent.py`` test each rule and each consequence.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ._demand import subscription_demand
from ._threads import run_in_thread, sync_code_in_place

__all__ = ["SyncToolPlacement", "holds_the_loop", "note_reaches_run", "when_cancelled"]

# A sync tool runs in place once its last _QUICK_CALLS calls each returned within _QUICK_SECONDS
# without reaching for the run; one slower call sends it back to the thread.
_QUICK_CALLS = 2
_QUICK_SECONDS = 0.001
_clock = time.perf_counter  # module-level, so tests can make "quick" deterministic


class _CallRecord:
    """What one call of a sync tool did, installed in the call's context."""

    __slots__ = ("cancelled", "in_place", "on_cancel", "reached_run")

    def __init__(self, *, in_place: bool) -> None:
        self.in_place = in_place
        self.reached_run = False
        # Called, from the loop's thread, when the run gives up waiting for this call.
        self.on_cancel: list[Callable[[], None]] | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with _cancel_lock:
            self.cancelled = True
            callbacks, self.on_cancel = self.on_cancel or [], None
        for callback in callbacks:
            callback()


_cancel_lock = threading.Lock()


_current_call: ContextVar[_CallRecord | None] = ContextVar("rxagent_tool_call", default=None)


def note_reaches_run() -> None:
    """The code running now reaches for the run (its writer, a model call, a stream): the sync
    tool it runs in, if any, stays in a worker thread from now on."""
    record = _current_call.get()
    if record is not None:
        record.reached_run = True


def when_cancelled(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` if the sync tool call this code runs in (in a worker thread) is
    cancelled: the thread cannot be stopped, but work it started on a loop of its own (an
    agent run, say) can. Returns the function that withdraws the request; outside such a
    call nothing is registered.
    """
    record = _current_call.get()
    if record is None or record.in_place:
        return _nothing
    with _cancel_lock:
        if not record.cancelled:
            if record.on_cancel is None:
                record.on_cancel = []
            record.on_cancel.append(callback)
            return lambda: _withdraw(record, callback)
    callback()  # cancelled already
    return _nothing


def _withdraw(record: _CallRecord, callback: Callable[[], None]) -> None:
    with _cancel_lock:
        if record.on_cancel is not None and callback in record.on_cancel:
            record.on_cancel.remove(callback)


def _nothing() -> None:
    pass


def holds_the_loop() -> bool:
    """True inside a sync tool call that runs in place: the run's loop cannot take anything
    until the call returns, so nothing here may wait for it."""
    record = _current_call.get()
    return record is not None and record.in_place


class SyncToolPlacement:
    """Where one sync tool's calls run, and what its calls have shown so far.

    Attributes:
        thread: ``None`` learns the place from the calls; ``True`` always uses a worker
            thread; ``False`` always runs in place.
    """

    __slots__ = ("_quick_calls", "_reaches_run", "thread")

    def __init__(self, thread: bool | None, *, reaches_run: bool) -> None:
        self.thread = thread
        self._quick_calls = 0  # quick, quiet calls in a row
        self._reaches_run = reaches_run  # once True, a thread for good

    @property
    def in_place(self) -> bool:
        """Whether the next call runs in place on the event loop."""
        if self.thread is not None:
            return not self.thread
        return not self._reaches_run and self._quick_calls >= _QUICK_CALLS

    async def call(
        self, context: contextvars.Context, func: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Any:
        """Call ``func(**kwargs)`` in ``context``, in place or in a worker thread, and learn
        from the call where the next one runs.

        A thread cannot be stopped: on cancellation this waits for ``func`` to return, then
        lets the cancellation through (the result is dropped), so a call never goes on writing
        into a run that has moved on.
        """
        if self.in_place:
            record = _CallRecord(in_place=True)
            context.run(_current_call.set, record)
            # A model called from here must not wait on the run's demand: the consumer
            # cannot take anything while this call holds its event loop.
            context.run(subscription_demand.set, None)
            # And it may block the loop to call a model with invoke(): it holds it anyway.
            context.run(sync_code_in_place.set, True)
            return self._timed(context, func, kwargs, record)
        record = _CallRecord(in_place=False)
        context.run(_current_call.set, record)

        def in_thread() -> tuple[Any]:
            # Boxed, because trio refuses a worker's result that looks like a coroutine.
            return (self._timed(context, func, kwargs, record),)

        (result,) = await run_in_thread(in_thread, on_cancel=record.cancel)
        return result

    def _timed(
        self,
        context: contextvars.Context,
        func: Callable[..., Any],
        kwargs: dict[str, Any],
        record: _CallRecord,
    ) -> Any:
        start = _clock()
        try:
            return context.run(func, **kwargs)
        finally:
            # Unsynchronised, as parallel calls may race here: the worst outcome of a lost
            # update is one call more or less in a thread.
            quick = _clock() - start < _QUICK_SECONDS
            self._quick_calls = self._quick_calls + 1 if quick else 0
            if record.reached_run:
                self._reaches_run = True

    def __repr__(self) -> str:
        return f"SyncToolPlacement(thread={self.thread!r}, in_place={self.in_place})"
