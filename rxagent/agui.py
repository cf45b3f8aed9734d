"""AG-UI, the protocol CopilotKit and other front ends speak: a run's parts as AG-UI events.

Needs the optional ``ag-ui-protocol`` package (``pip install 'rxagent[agui]'``); the events are
its ``ag_ui.core`` models, ready for ``ag_ui.encoder.EventEncoder``::

    from rxagent import agui

    agent.observe(inputs, extra_modes=agui.EXTRA_MODES).pipe(
        agui.events(thread_id="t1", run_id="r1"),
    ).subscribe(lambda event: print(event.type))

``rxagent serve`` serves every agent this way too, at ``POST /agui/{assistant_id}``
(docs/serving.md). What maps to what: a model call's text is ``TEXT_MESSAGE_*``, its tool
calls ``TOOL_CALL_START/ARGS/END`` as their arguments form, its reasoning ``REASONING_*``; a
tool's result ``TOOL_CALL_RESULT``; the state without its messages ``STATE_SNAPSHOT`` then
``STATE_DELTA`` (JSON Patch); each node's tasks a step (``STEP_STARTED``/``STEP_FINISHED``);
``custom`` parts ``CUSTOM``; a nested run (a sub-agent) ``SUBAGENT_STARTED``/``FINISHED``
around its events; the run ``RUN_STARTED`` and ``RUN_FINISHED`` (with the run's interrupts as
its outcome) or ``RUN_ERROR``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import reactivex
from reactivex import abc
from reactivex.disposable import SingleAssignmentDisposable

from ._exceptions import UsageError
from ._messages import BaseMessage
from ._types import StreamPart

try:
    from ag_ui.core import BaseEvent, RunAgentInput
except ImportError as error:
    raise UsageError(
        "rxagent.agui needs the ag-ui-protocol package, an optional dependency of rxagent: "
        "pip install 'rxagent[agui]'"
    ) from error

from . import _agui
from ._agui import AguiMapper

__all__ = ["EXTRA_MODES", "agent_input", "events"]

EXTRA_MODES: Sequence[str] = _agui.EXTRA_MODES
"""What to pass as ``observe(..., extra_modes=...)``: the ``tasks`` parts, which start each
step when it starts (without them a step shows once it has finished)."""


class _EventsObserver(abc.ObserverBase[StreamPart]):
    """Maps each part as it comes; after a failure, ``RUN_ERROR`` and the end."""

    def __init__(self, observer: abc.ObserverBase[BaseEvent], mapper: AguiMapper) -> None:
        self.observer = observer
        self.mapper = mapper
        self.upstream = SingleAssignmentDisposable()
        self.done = False

    def _emit(self, events: list[BaseEvent]) -> None:
        for event in events:
            self.observer.on_next(event)

    def on_next(self, part: StreamPart) -> None:
        if self.done:
            return
        try:
            events = self.mapper.on_part(part)
        except Exception as error:  # a part the mapping cannot read ends the run as an error
            self.upstream.dispose()
            self.on_error(error)
            return
        self._emit(events)

    def on_error(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        try:
            events = self.mapper.fail(error)
        except Exception as failure:  # error_message is the caller's code
            self.observer.on_error(failure)
            return
        self._emit(events)
        self.observer.on_completed()

    def on_completed(self) -> None:
        if self.done:
            return
        self.done = True
        self._emit(self.mapper.finish())
        self.observer.on_completed()


def events(
    thread_id: str | None = None,
    run_id: str | None = None,
    *,
    run_input: RunAgentInput | None = None,
    error_message: Callable[[BaseException], str] = str,
) -> Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[BaseEvent]]:
    """A run's parts as AG-UI events (``ag_ui.core`` models), one run per subscription.

    Put it on ``agent.observe(..., extra_modes=EXTRA_MODES)``. ``RUN_STARTED`` comes at once
    on subscribing; a run that fails gives ``RUN_ERROR`` after every event before it, and the
    stream then completes (in AG-UI the error is an event). Disposing cancels the run and
    gives nothing more. ::

        --m("Hi")--m(last)--v--|
        events()
        RS--TMS--TMC("Hi")--TME--SS--RF--|

    Args:
        thread_id: the events' ``threadId``; a new UUID when not given.
        run_id: their ``runId``; a new UUID per subscription when not given.
        run_input: the ``RunAgentInput`` the run answers (``RUN_STARTED.input``).
        error_message: the text of ``RUN_ERROR`` for an error (by default ``str(error)``; a
            server may want to hide internals).

    Returns:
        An operator from parts to events.
    """

    def operator(source: reactivex.Observable[StreamPart]) -> reactivex.Observable[BaseEvent]:
        def subscribe(
            observer: abc.ObserverBase[BaseEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            mapper = AguiMapper(thread_id or str(uuid.uuid4()), run_id or str(uuid.uuid4()),
                                run_input=run_input, error_message=error_message)
            sink = _EventsObserver(observer, mapper)
            sink._emit(mapper.start())
            sink.upstream.disposable = source.subscribe(sink, scheduler=scheduler)
            return sink.upstream

        return reactivex.create(subscribe)

    return operator


def agent_input(run_input: RunAgentInput, thread_messages: Sequence[BaseMessage] = ()) -> Any:
    """The agent's input for an AG-UI ``RunAgentInput``.

    An AG-UI client sends its whole conversation each time. With ``thread_messages``, the
    messages the thread holds already, only those after the last one it knows (by id) are
    added; the request's ``state`` (but its ``messages``) goes in beside them, and its
    ``resume`` entries answer the thread's interrupts by id (a ``Command``).

    Args:
        run_input: the request.
        thread_messages: the thread's messages (``agent.get_state(config).values``).

    Returns:
        A dict ``{"messages": [...], ...}`` or a ``Command``, for ``observe()``.

    Raises:
        InvalidMessageError: a tool call whose arguments are not JSON.
    """
    return _agui.agent_input(run_input, thread_messages)
