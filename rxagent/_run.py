"""One agent run as a stream of parts: the loop, the metadata, and where events come from.

A run pushes StreamParts (``{"type": mode, "ns": ns, "data": payload}``) for every mode at once;
the stream modes are filters downstream. Events reach the run from three places, all through
the :class:`RunContext` that the run installs in a context variable:

- the agent's own model node, and any model called from inside a tool, report their chunks
  (:meth:`RunContext.model_call`), so ``messages`` sees every model call made in the run;
- tools send custom data through their :class:`~rxagent.StreamWriter`;
- nested agents (agents used as tools) push their parts under a deeper namespace.

Parts are delivered on the run's event loop thread; code in worker threads (sync tools, a
model called from one) hands its events over thread-safely and waits on the demand there. A sync
tool running in place on the loop (see :mod:`rxagent._tools`) holds the loop, so nothing it
starts waits for it.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from threading import get_ident  # a global, not an attribute lookup, per item
from typing import TYPE_CHECKING, Any, TypedDict, cast

import anyio
import reactivex
from reactivex import abc

from ._convert import to_messages
from ._exceptions import InvalidMessageError, ModelCallError, RecursionLimitError
from ._messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChunkAccumulator,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from ._runtime import (
    Demand,
    FastObservable,
    LoopHandle,
    Trusted,
    current_loop,
    current_tool_call,
)
from ._writer import StreamWriter

if TYPE_CHECKING:
    from ._agent import Agent
    from .chat_models._base import BaseChatModel

__all__ = [
    "RunContext",
    "StreamPart",
    "current_run",
    "kept_payloads",
    "run_agent",
    "run_nested",
]

DEFAULT_RECURSION_LIMIT = 25


class StreamPart(TypedDict):
    """One event of a run, in LangGraph's v2 shape."""

    type: str
    ns: tuple[str, ...]
    data: Any


class RunContext:
    """What code executing inside a run needs to add events to it.

    One per agent (a nested agent gets its own, pointing at the same sink), with the node and
    step being executed updated as the loop goes.
    """

    __slots__ = (
        "_drained",
        "_emit",
        "_flush_scheduled",
        "_pending",
        "agent_name",
        "checkpoint_ns",
        "closed",
        "config_tags",
        "demand",
        "keeps",
        "loop",
        "node",
        "ns",
        "step",
        "task_ns",
    )

    def __init__(
        self,
        *,
        emit: Callable[[StreamPart], None],
        demand: Demand,
        loop: LoopHandle,
        ns: tuple[str, ...],
        checkpoint_ns: str,
        agent_name: str | None,
        config_tags: Sequence[str],
        keeps: tuple[str, Callable[[Any], None]] | None = None,
    ) -> None:
        self._emit = emit
        # When the subscriber keeps one mode's payloads and nothing else (see kept_payloads):
        # the mode, and where its payloads go. Model calls then hand it (chunk, metadata)
        # without building a part for it to take apart: the per-token path.
        self.keeps = keeps
        self.demand = demand
        self.loop = loop
        self.ns = ns
        self.checkpoint_ns = checkpoint_ns  # "" at the top, "tools:<id>|..." when nested
        self.agent_name = agent_name
        self.config_tags = list(config_tags)
        self.node = "model"
        self.step = 0
        self.task_ns = ""  # checkpoint namespace of the node task being executed
        self.closed = False
        # Parts from other threads (sync tools' writers) wait here for the loop, which is
        # woken once per batch, not once per part: a wake-up costs far more than a part.
        # Made on first use: most runs never see another thread.
        # They are parts, or only the payloads when the subscriber keeps one mode (``keeps``).
        self._pending: deque[Any] | None = None
        self._flush_scheduled = False
        self._drained: threading.Event | None = None

    # -- emitting -------------------------------------------------------------------------

    def emit(self, part: StreamPart) -> None:
        """Deliver a part to the run's subscriber, from whichever thread we are on.

        From another thread the part is queued for the loop, and the caller waits while
        ``_MAX_PENDING`` parts are queued already, so the queue stays bounded too.
        """
        if self.closed:
            return
        if get_ident() == self.loop.thread_id:
            if self._pending:  # parts from other threads came first
                self._flush()
            self._emit(part)
            return
        pending, drained = self._pending, self._drained
        if pending is None or drained is None:
            pending, drained = self._cross_thread_queue()
        keeps = self.keeps
        if keeps is None:
            pending.append(part)
        elif part["type"] == keeps[0]:
            pending.append(part["data"])  # the subscriber keeps the payloads of this mode
        else:
            return  # and nothing else
        if not self._flush_scheduled:
            self._schedule_flush()
        if len(pending) >= _MAX_PENDING and _holds_the_loop():
            return  # a model called by a tool running in place: the loop cannot flush yet
        while len(pending) >= _MAX_PENDING and not self.closed:
            drained.clear()
            if len(pending) < _MAX_PENDING:  # flushed between the test and the clear
                break
            if not self._flush_scheduled:
                self._schedule_flush()
            drained.wait(1.0)

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
        else:  # parts to the subscriber, or payloads straight to the stage after its filter
            deliver = self._emit if self.keeps is None else self.keeps[1]
            take = pending.popleft
            while pending:
                deliver(take())
        drained.set()

    def writer(self) -> StreamWriter:
        """A writer whose data goes to this run's ``custom`` mode under this run's namespace."""
        return _RunWriter(self)

    # -- model calls ----------------------------------------------------------------------

    def call_metadata(self, model: BaseChatModel) -> dict[str, Any]:
        """The metadata of one model call, built once and shared by all its chunks."""
        node = self.node
        prefix = f"{self.checkpoint_ns}|" if self.checkpoint_ns else ""
        task_ns = self.task_ns or f"{node}:{uuid.uuid4()}"
        return {
            "langgraph_step": self.step,
            "langgraph_node": node,
            "langgraph_triggers": (f"branch:to:{node}",),
            "langgraph_path": ("__pregel_pull", node),
            "langgraph_checkpoint_ns": prefix + task_ns,
            "checkpoint_ns": prefix + task_ns,
            "ls_provider": model.provider,
            "ls_model_name": model.model_name,
            "ls_model_type": "chat",
            "tags": [*self.config_tags, *model.tags],
            "lc_agent_name": self.agent_name,
        }

    def model_call(
        self, model: BaseChatModel, observer: abc.ObserverBase[AIMessageChunk]
    ) -> abc.ObserverBase[AIMessageChunk] | None:
        """An observer that reports one model call's chunks to this run on their way to
        ``observer``; None when the call must not stream (a model tagged ``"nostream"``)."""
        metadata = self.call_metadata(model)
        if "nostream" in metadata["tags"]:
            return None
        reporting = _ReportingWhole if model.disable_streaming is True else _Reporting
        return reporting(self, metadata, observer)


current_run: ContextVar[RunContext | None] = ContextVar("rxagent_current_run", default=None)


_MAX_PENDING = 1024
_queue_lock = threading.Lock()


def kept_payloads(emit: Callable[[StreamPart], None]) -> tuple[str, Callable[[Any], None]] | None:
    """``(mode, where its payloads go)`` when ``emit`` belongs to a stage that keeps one mode's
    payloads and nothing else (``stream(stream_mode="messages")``); otherwise None.

    Such a stage (:func:`rxagent.operators.messages` and its kin) says so with
    ``keeps_payloads_of``. Handing a payload there directly is what the stage would do with
    the part, minus building the part and a call.
    """
    keeps = getattr(getattr(emit, "__self__", None), "keeps_payloads_of", None)
    return cast("tuple[str, Callable[[Any], None]] | None", keeps)


def _holds_the_loop() -> bool:
    record = current_tool_call.get()
    return record is not None and record.in_place


class _RunWriter(StreamWriter):
    """The writer of a run: ``custom`` parts under the run's namespace, with backpressure."""

    __slots__ = ("_demand", "_loop_thread", "_ns", "_run")

    def __init__(self, run: RunContext) -> None:
        super().__init__()  # __call__ and asend are overridden; nothing to hand the base
        self._run = run
        self._ns = run.ns
        self._demand = run.demand
        self._loop_thread = run.loop.thread_id

    def __call__(self, data: Any) -> None:
        run = self._run
        if get_ident() == self._loop_thread:
            run.emit({"type": "custom", "ns": self._ns, "data": data})  # the loop's thread
            return  # may not wait
        if not self._demand.ready and not self._demand.wait_blocking():
            return  # the consumer is gone: what the tool still writes is dropped
        # RunContext.emit's queueing, inlined for a writer in a worker thread (a sync tool
        # reporting progress), as long as nothing calls for more than an append.
        pending, keeps = run._pending, run.keeps
        if pending is None or run.closed or len(pending) >= _MAX_PENDING - 1:
            run.emit({"type": "custom", "ns": self._ns, "data": data})
            return
        if keeps is None:
            pending.append({"type": "custom", "ns": self._ns, "data": data})
        elif keeps[0] == "custom":
            pending.append(data)  # a subscriber that keeps custom payloads only
        else:
            return  # a subscriber that keeps another mode's
        if not run._flush_scheduled:
            run._schedule_flush()

    async def asend(self, data: Any) -> None:
        if not self._demand.ready:
            await self._demand.wait()
        self._run.emit({"type": "custom", "ns": self._ns, "data": data})

    @property
    def discards(self) -> bool:
        return False


def report_model_calls(
    source: reactivex.Observable[AIMessageChunk], model: BaseChatModel
) -> reactivex.Observable[AIMessageChunk]:
    """Report a model call's chunks to the run it is made in (if any), as they pass."""

    def subscribe(
        observer: abc.ObserverBase[AIMessageChunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = current_run.get()
        record = current_tool_call.get()
        if record is not None:
            record.reached_run = True  # a tool that calls models stays in a worker thread
        reporting = run.model_call(model, observer) if run is not None else None
        return source.subscribe(reporting or observer, scheduler=scheduler)

    return FastObservable(subscribe)


class _Reporting(Trusted[AIMessageChunk]):
    """Passes a model call's chunks on, reporting each to the run as a ``messages`` part."""

    __slots__ = ("_direct", "_forward", "_metadata", "_ns", "_observer", "_on_loop", "_run")

    def __init__(
        self,
        run: RunContext,
        metadata: dict[str, Any],
        observer: abc.ObserverBase[AIMessageChunk],
    ) -> None:
        self._run = run
        self._ns = run.ns
        self._metadata = metadata  # built once per call, shared by all its chunks
        self._observer = observer
        self._forward = observer.on_next
        # A call subscribed on the run's loop thread produces there too (it is spawned on the
        # subscriber's loop), so its chunks skip emit()'s thread check: the per-token path.
        self._on_loop = get_ident() == run.loop.thread_id
        keeps = run.keeps if self._on_loop else None
        self._direct = keeps[1] if keeps is not None and keeps[0] == "messages" else None

    def on_next(self, chunk: AIMessageChunk) -> None:
        # _report() inlined: one frame less on every token.
        run = self._run
        direct = self._direct
        if direct is not None:
            if not run.closed:
                direct((chunk, self._metadata))
        else:
            part: StreamPart = {
                "type": "messages", "ns": self._ns, "data": (chunk, self._metadata)
            }
            if not self._on_loop:
                run.emit(part)
            elif not run.closed:
                run._emit(part)
        self._forward(chunk)

    def _report(self, payload: AIMessage) -> None:
        run = self._run
        if self._direct is not None:
            if not run.closed:
                self._direct((payload, self._metadata))
            return
        part: StreamPart = {"type": "messages", "ns": self._ns, "data": (payload, self._metadata)}
        if not self._on_loop:
            run.emit(part)
        elif not run.closed:
            run._emit(part)

    def on_error(self, error: Exception) -> None:
        self._observer.on_error(error)

    def on_completed(self) -> None:
        self._observer.on_completed()


class _ReportingWhole(_Reporting):
    """For ``disable_streaming=True``: the call's one chunk shows as the whole AIMessage."""

    __slots__ = ()

    def on_next(self, chunk: AIMessageChunk) -> None:
        self._report(chunk.to_message())
        self._forward(chunk)


def _input_messages(value: Any) -> list[BaseMessage]:
    if isinstance(value, dict) and "messages" in value:
        return to_messages(value["messages"])
    raise InvalidMessageError(
        "an agent's input is a dict with a 'messages' list, e.g. "
        "{'messages': [{'role': 'user', 'content': 'Hi'}]}; got "
        f"{type(value).__name__}"
        + (f" with keys {sorted(map(str, value))}" if isinstance(value, dict) else "")
    )


async def run_agent(agent: Agent, input: Any, config: dict[str, Any] | None, run: RunContext
                    ) -> dict[str, Any]:
    """Run the agent loop, pushing every event into ``run``; return the final state."""
    config = config or {}
    limit = int(config.get("recursion_limit", DEFAULT_RECURSION_LIMIT))
    messages = _input_messages(input)
    state: dict[str, Any] = {"messages": messages}
    ns = run.ns
    emit = run.emit
    emit({"type": "values", "ns": ns, "data": {"messages": list(messages)}})
    token = current_run.set(run)
    try:
        while True:
            reply = await _model_node(agent, run, messages, limit)
            messages.append(reply)
            emit({"type": "updates", "ns": ns, "data": {"model": {"messages": [reply]}}})
            emit({"type": "values", "ns": ns, "data": {"messages": list(messages)}})
            calls = reply.tool_calls
            invalid = [c for c in reply.invalid_tool_calls if c.get("id")]
            if not calls and not invalid:
                return state
            results = await _tools_node(agent, run, reply, limit)
            messages.extend(results)
            emit({"type": "values", "ns": ns, "data": {"messages": list(messages)}})
    finally:
        current_run.reset(token)


async def run_nested(agent: Agent, request: str, call_id: str) -> str:
    """Run ``agent`` on ``request`` as a tool call of the run this code is in; its final
    answer's text.

    The nested run's parts go into the enclosing run's stream under the namespace of the call,
    ``(*ns, "tools:<call id>")``; it shares the enclosing run's demand, loop and cancellation
    (it is awaited inside the tool). Outside any run it simply runs on its own.
    """
    question = {"messages": [HumanMessage(content=request)]}
    parent = current_run.get()
    if parent is None:
        state = await agent.ainvoke(question)
    else:
        ns = (*parent.ns, f"tools:{call_id}")
        child = RunContext(
            emit=parent.emit,
            demand=parent.demand,
            loop=parent.loop,
            ns=ns,
            checkpoint_ns="|".join(ns),
            agent_name=agent.name,
            config_tags=parent.config_tags,
            keeps=parent.keeps,
        )
        state = await run_agent(agent, question, None, child)
    return str(state["messages"][-1].text)


def _next_step(run: RunContext, node: str, limit: int) -> None:
    run.step += 1
    if run.step > limit:
        raise RecursionLimitError(
            f"Recursion limit of {limit} reached without hitting a stop condition. Raise it "
            "with config={'recursion_limit': N}, or check why the model keeps calling tools."
        )
    run.node = node
    run.task_ns = f"{node}:{uuid.uuid4()}"


async def _model_node(
    agent: Agent, run: RunContext, messages: list[BaseMessage], limit: int
) -> AIMessage:
    _next_step(run, "model", limit)
    # A new list (of the same messages): the state goes on growing while the call runs.
    prompt = list(messages)
    if agent.system_prompt is not None:
        prompt.insert(0, SystemMessage(content=agent.system_prompt))
    accumulator = ChunkAccumulator()
    try:
        call = agent.model.stream_prepared(prompt, agent.tool_specs)
        await consume(call, accumulator.add)
    except ModelCallError as error:
        if error.partial is None and not accumulator.empty:
            error.partial = accumulator.snapshot()
        raise
    reply = accumulator.to_message()
    if agent.name is not None and reply.name is None:
        reply = reply.model_copy(update={"name": agent.name})
    return reply


async def _tools_node(
    agent: Agent, run: RunContext, reply: AIMessage, limit: int
) -> list[ToolMessage]:
    _next_step(run, "tools", limit)
    calls = list(reply.tool_calls)
    results: list[ToolMessage | None] = [None] * (len(calls) + len(reply.invalid_tool_calls))
    ns = run.ns
    metadata: dict[str, Any] = {
        "langgraph_step": run.step,
        "langgraph_node": "tools",
        "langgraph_triggers": ("__pregel_push",),
        "langgraph_path": ("__pregel_push", 0),
        "langgraph_checkpoint_ns": run.task_ns,
        "checkpoint_ns": run.task_ns,
        "tags": list(run.config_tags),
        "lc_agent_name": run.agent_name,
    }

    def finish(position: int, message: ToolMessage) -> None:
        results[position] = message
        run.emit({"type": "messages", "ns": ns, "data": (message, metadata)})
        run.emit({"type": "updates", "ns": ns, "data": {"tools": {"messages": [message]}}})

    async def call_tool(position: int) -> None:
        call = calls[position]
        tool = agent.tools_by_name.get(call["name"])
        if tool is None:
            known = ", ".join(sorted(agent.tools_by_name)) or "none"
            message = ToolMessage(
                content=f"Error: {call['name']!r} is not a valid tool, try one of [{known}].",
                name=call["name"],
                tool_call_id=call["id"] or "",
                status="error",
            )
        else:
            message = await tool.arun(call, writer=run.writer())
        finish(position, message)

    for offset, bad in enumerate(c for c in reply.invalid_tool_calls if c.get("id")):
        finish(
            len(calls) + offset,
            ToolMessage(
                content=f"Error: the arguments of {bad.get('name')!r} are not valid JSON "
                f"({bad.get('error')}); send them again as a JSON object.",
                name=bad.get("name"),
                tool_call_id=bad.get("id") or "",
                status="error",
            ),
        )
    if len(calls) == 1:
        await call_tool(0)
    elif calls:
        async with anyio.create_task_group() as group:
            for position in range(len(calls)):
                group.start_soon(call_tool, position)
    return [message for message in results if message is not None]


async def consume(
    source: reactivex.Observable[Any], on_next: Callable[[Any], None]
) -> None:
    """Subscribe to ``source`` from inside a run and wait for it to end; errors are raised,
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
        raise sink.failure


class _Consumer(Trusted[Any]):
    """The end of :func:`consume`: items to a callback, the end to an event on the loop."""

    # ``on_next`` is the callback itself, in a slot: a producer calls it without a frame of
    # ours in between (the slot's descriptor also stands in for ObserverBase's abstract method).
    __slots__ = ("_loop", "failure", "finished", "on_next")

    def __init__(self, on_next: Callable[[Any], None], loop: LoopHandle) -> None:
        self.on_next = on_next  # type: ignore[method-assign, assignment]
        self._loop = loop
        self.finished = anyio.Event()
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
