"""``create_agent`` and the agent: a model that calls tools in a loop, observed as Rx streams.

``Agent.observe()`` is the Rx-native entry: a cold Observable of StreamParts, one subscription
one run. ``stream()``, ``astream()``, ``invoke()`` and ``ainvoke()`` are thin bridges over it
with LangGraph's output shapes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Literal, TypeAlias, overload

import anyio
import reactivex
from reactivex import abc

from . import operators
from ._agent_graph import AgentGraph, check_middleware, middleware_state_keys, middleware_tools
from ._agent_loop import returns_directly, run_nested
from ._bridges import (
    DEFAULT_MAX_BUFFER,
    AsyncIteratorBridge,
    IterableObservable,
    SyncIterator,
    iterable,
    to_async_iterator,
    to_iterator,
)
from ._callbacks import handlers_of
from ._callbacks_run import run_agent_told
from ._context import RunContext, ToolTask, current_run, current_tool_task
from ._demand import Demand
from ._events_v2 import EventFilter, check_events_version, observe_events
from ._exceptions import ModelSpecError, RunCancelledError, UsageError
from ._fast_rx import observable_from_task
from ._interrupts import Command, GraphOutput
from ._loops import current_loop, waker
from ._messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from ._run_stream import AsyncRunStream, RunStream
from ._scheduler import holds_the_loop, when_cancelled
from ._sink import RunSink
from ._state_schema import AgentState, StateKey, state_keys_of
from ._structured_agent import OutputFormat
from ._thread_run import DURABILITIES, ThreadRun, thread_of
from ._thread_state import Durability, Route, apply_update, load_head
from ._thread_views import StateSnapshot, history_snapshots, results_of, snapshot, task_nodes
from ._threads import run_sync
from ._tools import BaseTool, ToolRuntime, as_tool
from ._types import StreamPart
from ._writer import StreamWriter
from .chat_models._base import BaseChatModel
from .checkpoint import BaseCheckpointSaver
from .middleware._types import AgentMiddleware, overrides
from .operators._modes import ON_REQUEST, check_modes, select

__all__ = ["Agent", "AgentState", "StreamMode", "create_agent"]

StreamMode: TypeAlias = Literal[
    "values", "updates", "messages", "custom", "checkpoints", "tasks", "debug", "partial_output"
]
AgentInput: TypeAlias = dict[str, Any] | Command | None
"""A run's input: ``{"messages": [...]}``; on a thread also ``None`` or a ``Command``."""


class Agent:
    """A model that calls tools in a loop until it answers without calling any.

    Made by :func:`create_agent`. State is ``{"messages": [...]}``. Without a checkpointer each
    run starts from its input state and nothing is kept between runs; with one, a run with a
    ``thread_id`` starts from the thread's latest state (see :meth:`get_state`).
    """

    def __init__(
        self,
        model: BaseChatModel,
        tools: Sequence[BaseTool],
        *,
        system_prompt: str | None,
        name: str | None,
        checkpointer: BaseCheckpointSaver | None = None,
        interrupt_before: Sequence[str] = (),
        interrupt_after: Sequence[str] = (),
        state_keys: Sequence[StateKey] = (),
        context_schema: type[Any] | None = None,
        middleware: Sequence[AgentMiddleware[Any, Any]] = (),
        store: Any = None,
        output_format: OutputFormat | None = None,
    ) -> None:
        self.model = model
        self.tools = list(tools)
        self.tools_by_name = {tool.name: tool for tool in self.tools}
        self.middleware = tuple(middleware)
        self.output_format = output_format
        self.graph = AgentGraph(
            self.middleware, has_tools=bool(self.tools),
            output_tools=frozenset(output_format.tools) if output_format else frozenset())
        self.route = _route(self.graph, returns_directly(self))
        self.store = store
        # Described once: every model call of every run sends the same specs.
        self.tool_specs = [tool.tool_spec() for tool in self.tools]
        self.system_prompt = system_prompt
        self.name = name
        self.checkpointer = checkpointer
        self.interrupt_before = tuple(interrupt_before)
        self.interrupt_after = tuple(interrupt_after)
        keys = {key.name: key for key in state_keys}  # a later schema's say wins
        self.state_key_specs = tuple(keys.values())
        self.state_keys = tuple(keys)  # the state's keys besides messages
        self.hidden_keys = frozenset(k.name for k in keys.values() if not k.in_output)
        self.untracked_keys = frozenset(k.name for k in keys.values() if not k.saved)
        self.context_schema = context_schema

    # -- the Rx-native entry ----------------------------------------------------------------

    def observe(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        durability: Durability | None = None,
        extra_modes: Sequence[str] = (),
        context: Any = None,
    ) -> IterableObservable[StreamPart]:
        """A cold Observable of the run's parts in every mode; each subscription is one run.

        Parts are dicts ``{"type": mode, "ns": namespace, "data": payload}`` with mode one of
        ``"values"``, ``"updates"``, ``"messages"``, ``"custom"``; pick and shape them with the
        operators in :mod:`rxagent.operators`. Disposing the subscription cancels the run:
        the model call in flight and the tools. An error ends the stream after every part that
        came before it. ``for part in agent.observe(...)`` (and ``async for``) iterates one run.

        Subscribed inside a tool of another agent's run (``subagent.invoke(...)`` in a tool, as
        LangChain's multi-agent docs write it), the run joins that run: its parts go to this
        subscriber and also into the other run's stream under the namespace of the tool call
        (``("tools:<task id>",)``), which ``stream(..., subgraphs=True)`` shows; the other
        run's slow consumer holds it back, and cancelling the other run cancels it
        (``RunCancelledError`` here).

        Args:
            input: as for :meth:`stream`.
            config: as for :meth:`stream`.
            durability: as for :meth:`stream`.
            extra_modes: LangGraph's ``"checkpoints"``, ``"tasks"`` and ``"debug"`` parts too,
                which a run builds only when asked for.
            context: as for :meth:`stream`.
        """
        extra = frozenset(check_modes(extra_modes) if extra_modes else ())
        if extra - set(ON_REQUEST):
            raise UsageError(f"extra_modes are among {list(ON_REQUEST)}, got {list(extra_modes)}")
        return iterable(self._observe(input, config, subgraphs=True, durability=durability,
                                      extra_modes=extra, context=context))

    def _observe(
        self,
        input: AgentInput,
        config: dict[str, Any] | None,
        *,
        subgraphs: bool,
        durability: Durability | None,
        extra_modes: frozenset[str] = frozenset(),
        context: Any = None,
    ) -> reactivex.Observable[StreamPart]:
        _check_config(config)
        tags = (config or {}).get("tags", ())
        metadata = (config or {}).get("metadata")
        thread_id, checkpoint_id = thread_of(config)
        self._check_thread(thread_id, input, durability)

        async def produce(observer: abc.ObserverBase[StreamPart], demand: Demand) -> None:
            loop = current_loop()
            assert loop is not None
            thread = None
            if self.checkpointer is not None and thread_id is not None:
                configurable = (config or {}).get("configurable") or {}
                run_id = (config or {}).get("run_id") or configurable.get("run_id")
                thread = ThreadRun(
                    self.checkpointer, thread_id, checkpoint_id=checkpoint_id,
                    durability=durability or "async",
                    run_id=None if run_id is None else str(run_id),
                )
            task = current_tool_task.get()
            if task is not None:
                await _run_joined(self, input, config, task, observer, demand, subgraphs, thread,
                                  context)
                return
            sink = RunSink(observer, demand, loop, subgraphs=subgraphs)
            run = RunContext(sink, ns=(), checkpoint_ns="", agent_name=self.name,
                             config_tags=tags, config_metadata=metadata,
                             extra_modes=extra_modes, config=config, context=context,
                             store=self.store)
            try:
                await run_agent_told(self, input, config, run, thread)
            finally:
                sink.close()

        return observable_from_task(produce)

    # -- LangGraph's iterator API -------------------------------------------------------------

    def stream(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] = "updates",
        subgraphs: bool = False,
        version: Literal["v1", "v2"] = "v1",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        durability: Durability | None = None,
        context: Any = None,
    ) -> SyncIterator[Any]:
        """Run the agent and iterate over what it streams, from sync code.

        Args:
            input: ``{"messages": [...]}``: message objects, dicts, ``(role, text)`` or str.
                On a thread, also ``None`` (go on from the thread's checkpoint) or a
                :class:`~rxagent.types.Command` (``resume=`` an interrupt, ``update=``).
            config: ``{"recursion_limit": 25, "tags": [...], "configurable": {"thread_id":
                "1"}}``; ``checkpoint_id`` in ``configurable`` starts from that checkpoint.
            stream_mode: one mode, giving its payloads, or a list of modes, giving
                ``(mode, payload)`` pairs; ``"updates"`` by default, as in LangGraph.
                Beyond LangGraph, ``"partial_output"`` gives the ``response_format``'s answer
                as it forms: validated partial objects while its JSON arrives, then the whole
                answer (see :func:`rxagent.operators.partial_structured`).
            subgraphs: also give the namespace: ``(ns, payload)`` / ``(ns, mode, payload)``.
            version: ``"v2"`` gives the part dicts ``{"type", "ns", "data"}`` instead.
            max_buffer: parts buffered before the run waits for the consumer.
            durability: on a thread, when checkpoints are written: ``"sync"``, ``"async"``
                (the default) or ``"exit"`` (see ``docs/checkpoints.md``).
            context: what the run's tools get as ``runtime.context`` (a ``ToolRuntime``
                parameter), typically an instance of ``create_agent``'s ``context_schema``.

        Leaving the loop early cancels the run (once the iterator is dropped; ``close()`` or
        ``with agent.stream(...) as stream:`` does it at once). An error is raised after every
        part that came before it.
        """
        return to_iterator(
            self._parts(input, config, stream_mode=stream_mode, subgraphs=subgraphs,
                        version=version, durability=durability, context=context),
            max_buffer=max_buffer)

    def astream(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] = "updates",
        subgraphs: bool = False,
        version: Literal["v1", "v2"] = "v1",
        max_buffer: int = DEFAULT_MAX_BUFFER,
        durability: Durability | None = None,
        context: Any = None,
    ) -> AsyncIteratorBridge[Any]:
        """Like :meth:`stream`, iterated with ``async for`` on asyncio or trio.

        ``await stream.aclose()``, or ``async with agent.astream(...) as stream:``, cancels the
        run and waits until everything in it has stopped.
        """
        return to_async_iterator(
            self._parts(input, config, stream_mode=stream_mode, subgraphs=subgraphs,
                        version=version, durability=durability, context=context),
            max_buffer=max_buffer)

    def _parts(
        self,
        input: AgentInput,
        config: dict[str, Any] | None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode],
        subgraphs: bool,
        version: Literal["v1", "v2"],
        durability: Durability | None,
        context: Any,
    ) -> reactivex.Observable[Any]:
        """What :meth:`stream` and :meth:`astream` iterate over, as an Observable (the server
        consumes it in its run's own task, with no iterator in between)."""
        shape = self._shape(stream_mode, subgraphs, version)
        source = self._observe(input, config, subgraphs=subgraphs, durability=durability,
                               extra_modes=_requested(stream_mode), context=context)
        return source.pipe(shape)

    def _shape(
        self, stream_mode: StreamMode | Sequence[StreamMode], subgraphs: bool, version: str
    ) -> Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[Any]]:
        shape = _output_shape(stream_mode, subgraphs, version)
        modes = (stream_mode,) if isinstance(stream_mode, str) else tuple(stream_mode)
        if "partial_output" not in modes:
            return shape
        if self.output_format is None:
            raise UsageError("stream_mode 'partial_output' streams the structured answer as it "
                             "forms: create the agent with a response_format")
        partial = operators.partial_output_parts(self.output_format.initial.schema)
        return lambda source: source.pipe(partial, shape)

    def observe_events(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        version: Literal["v2"] = "v2",
        durability: Durability | None = None,
        context: Any = None,
        include_names: Sequence[str] | None = None,
        include_types: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_types: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
    ) -> IterableObservable[dict[str, Any]]:
        """A cold Observable of the run's events as LangChain's ``astream_events(version="v2")``
        gives them; each subscription is one run.

        Each event is ``{"event", "data", "name", "tags", "run_id", "metadata",
        "parent_ids"}``: ``on_chain_start``/``_stream``/``_end`` for the agent (named after it,
        or ``"LangGraph"``) and each node, ``on_chat_model_start``/``_stream``/``_end``,
        ``on_tool_start``/``_end``/``_error``, ``on_custom_event``
        (:func:`~rxagent.callbacks.dispatch_custom_event`). Disposing cancels the run; an error
        ends the stream after the events before it.

        Args:
            input: as for :meth:`stream`.
            config: as for :meth:`stream`; its ``callbacks`` are called too.
            version: ``"v2"``.
            durability: as for :meth:`stream`.
            context: as for :meth:`stream`.
            include_names: keep only events of runs with these names (or the types or tags
                below).
            include_types: ... of these types (``"chain"``, ``"chat_model"``, ``"tool"``).
            include_tags: ... with one of these tags.
            exclude_names: leave out events of runs with these names.
            exclude_types: ... of these types.
            exclude_tags: ... with one of these tags.

        Raises:
            UsageError: ``version`` is not ``"v2"`` (``"v1"`` is deprecated in LangChain).
        """
        check_events_version(version)
        _check_config(config)
        wanted = EventFilter(include_names, include_types, include_tags, exclude_names,
                             exclude_types, exclude_tags)
        return iterable(observe_events(
            lambda told: self._observe(input, told, subgraphs=False, durability=durability,
                                       context=context),
            config, wanted))

    @overload
    def stream_events(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        version: Literal["v2"] = "v2", durability: Durability | None = None,
        context: Any = None, **filters: Sequence[str] | None,
    ) -> SyncIterator[dict[str, Any]]: ...
    @overload
    def stream_events(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        version: Literal["v3"], durability: Durability | None = None, context: Any = None,
    ) -> RunStream: ...

    def stream_events(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        version: Literal["v1", "v2", "v3"] = "v2",
        durability: Durability | None = None,
        context: Any = None,
        **filters: Sequence[str] | None,
    ) -> SyncIterator[dict[str, Any]] | RunStream:
        """The run's events, from sync code.

        ``version="v2"`` (the default, as in LangGraph) iterates LangChain's event dicts (see
        :meth:`observe_events`, which also takes ``include_*``/``exclude_*`` filters).
        ``version="v3"`` gives LangGraph's experimental v3 event stream: projections the
        caller drives by iterating, ``for message in run.messages: for token in
        message.text``, ``run.values``, and ``run.output``, ``run.interrupted``,
        ``run.interrupts`` (which run it to its end).

        Raises:
            UsageError: another ``version`` (``"v1"`` is deprecated in LangChain).
        """
        if version == "v3":
            _check_no_filters(filters)
            return RunStream(self.stream(input, config, stream_mode=["messages", "values"],
                                         version="v2", durability=durability, context=context))
        return to_iterator(self.observe_events(input, config, version=version,  # type: ignore[arg-type]
                                               durability=durability, context=context,
                                               **filters))

    @overload
    def astream_events(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        version: Literal["v2"] = "v2", durability: Durability | None = None,
        context: Any = None, **filters: Sequence[str] | None,
    ) -> AsyncIteratorBridge[dict[str, Any]]: ...
    @overload
    def astream_events(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        version: Literal["v3"], durability: Durability | None = None, context: Any = None,
    ) -> AsyncRunStream: ...

    def astream_events(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        version: Literal["v1", "v2", "v3"] = "v2",
        durability: Durability | None = None,
        context: Any = None,
        **filters: Sequence[str] | None,
    ) -> AsyncIteratorBridge[dict[str, Any]] | AsyncRunStream:
        """:meth:`stream_events` for asyncio and trio: ``async for event in
        agent.astream_events(...)``; for ``version="v3"``, ``async for`` over the projections,
        ``await run.output()``, ``await run.interrupted()``, ``await run.interrupts()``.

        Raises:
            UsageError: another ``version`` (``"v1"`` is deprecated in LangChain).
        """
        if version == "v3":
            _check_no_filters(filters)
            return AsyncRunStream(self.astream(input, config, stream_mode=["messages", "values"],
                                               version="v2", durability=durability,
                                               context=context))
        return to_async_iterator(self.observe_events(
            input, config, version=version, durability=durability,  # type: ignore[arg-type]
            context=context, **filters))

    @overload
    def invoke(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        durability: Durability | None = None, context: Any = None,
        version: Literal["v1"] = "v1",
    ) -> dict[str, Any]: ...
    @overload
    def invoke(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        durability: Durability | None = None, context: Any = None, version: Literal["v2"],
    ) -> GraphOutput: ...

    def invoke(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        durability: Durability | None = None,
        context: Any = None,
        version: Literal["v1", "v2"] = "v1",
    ) -> dict[str, Any] | GraphOutput:
        """Run the agent to the end and return the final state ``{"messages": [...]}`` (with
        ``"__interrupt__"`` when an interrupt stopped it); ``version="v2"`` gives a
        :class:`~rxagent.types.GraphOutput` (``.value``, ``.interrupts``) instead. Private
        state keys (a middleware's) are left out."""
        _check_version(version)
        final: dict[str, Any] = {}
        asked: list[Any] = []
        with self.stream(input, config, stream_mode="values", durability=durability,
                         context=context) as states:
            for state in states:
                final = _gather(state, asked)
        return self._result(final, asked, version)

    @overload
    async def ainvoke(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        durability: Durability | None = None, context: Any = None,
        version: Literal["v1"] = "v1",
    ) -> dict[str, Any]: ...
    @overload
    async def ainvoke(
        self, input: AgentInput, config: dict[str, Any] | None = None, *,
        durability: Durability | None = None, context: Any = None, version: Literal["v2"],
    ) -> GraphOutput: ...

    async def ainvoke(
        self,
        input: AgentInput,
        config: dict[str, Any] | None = None,
        *,
        durability: Durability | None = None,
        context: Any = None,
        version: Literal["v1", "v2"] = "v1",
    ) -> dict[str, Any] | GraphOutput:
        """Like :meth:`invoke`, awaited on asyncio or trio."""
        _check_version(version)
        final: dict[str, Any] = {}
        asked: list[Any] = []
        async with self.astream(
            input, config, stream_mode="values", durability=durability, context=context
        ) as states:
            async for state in states:
                final = _gather(state, asked)
        return self._result(final, asked, version)

    def _result(
        self, state: dict[str, Any], asked: list[Any], version: str
    ) -> dict[str, Any] | GraphOutput:
        """The last ``values`` part as ``invoke`` returns it, with every interrupt the run
        stopped for (each came with a ``values`` part of its own)."""
        hidden = self.hidden_keys
        state = {key: value for key, value in state.items()
                 if key not in hidden and key != "__interrupt__"}
        if version == "v2":
            return GraphOutput(value=state, interrupts=tuple(asked))
        if asked:
            state["__interrupt__"] = tuple(asked)
        return state

    # -- threads ------------------------------------------------------------------------------

    def with_checkpointer(self, checkpointer: BaseCheckpointSaver | None) -> Agent:
        """This agent with another checkpointer (a server gives the agents it serves its own);
        the model, tools and everything else are shared."""
        if checkpointer is not None and not isinstance(checkpointer, BaseCheckpointSaver):
            raise UsageError(
                "checkpointer is a saver from rxagent.checkpoint, got "
                f"{type(checkpointer).__name__}"
            )
        return Agent(
            self.model, self.tools, system_prompt=self.system_prompt, name=self.name,
            checkpointer=checkpointer, interrupt_before=self.interrupt_before,
            interrupt_after=self.interrupt_after, state_keys=self.state_key_specs,
            context_schema=self.context_schema, middleware=self.middleware, store=self.store,
            output_format=self.output_format,
        )

    def get_state(self, config: dict[str, Any]) -> StateSnapshot:
        """The thread's state at its latest checkpoint (or at ``checkpoint_id`` in the config):
        values, the nodes that run next, the pending interrupts...

        Raises:
            UsageError: the agent has no checkpointer, or the config names no ``thread_id``.
        """
        return run_sync(lambda: self.aget_state(config))

    async def aget_state(self, config: dict[str, Any]) -> StateSnapshot:
        """Like :meth:`get_state`, awaited on asyncio or trio."""
        saver, thread_id, checkpoint_id = self._thread_config(config)
        head = await load_head(saver, thread_id, "", checkpoint_id)
        if head is None:
            return StateSnapshot({}, (), config, None, None, None, ())
        results: dict[str, Any] = {}
        # A task that has run wrote its result in the next checkpoint. The latest checkpoint
        # has none (a later one would be newer), so only an earlier one is looked up.
        if head.next and checkpoint_id is not None:
            async for child in saver.alist(thread_id, ""):
                if child.checkpoint.parent_id == head.checkpoint_id:
                    results = results_of(child)
        # A step that stopped part-way shows its finished calls (the step has no next
        # checkpoint yet); an older one's results are in its next checkpoint.
        return snapshot(head, results, with_pending=not results)

    def get_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first, each as a :class:`StateSnapshot`.

        Args:
            filter: only checkpoints whose metadata has these values (``{"source": "loop"}``).
            before: only checkpoints older than the one this config names.
            limit: at most this many.
        """
        return iter(run_sync(lambda: self._history(config, filter, before, limit)))

    async def aget_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """Like :meth:`get_state_history`, iterated with ``async for``."""
        for item in await self._history(config, filter, before, limit):
            yield item

    async def _history(
        self,
        config: dict[str, Any],
        filter: dict[str, Any] | None,
        before: dict[str, Any] | None,
        limit: int | None,
    ) -> list[StateSnapshot]:
        saver, thread_id, _ = self._thread_config(config)
        before_id = thread_of(before)[1] if before else None
        thread = [item async for item in saver.alist(thread_id, "")]
        selected = [item async for item in saver.alist(
            thread_id, "", before=before_id, limit=limit, filter=filter
        )]
        return history_snapshots(saver, thread, selected)

    def update_state(
        self, config: dict[str, Any], values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        """Change the thread's state as if node ``as_node`` had written ``values``; the config
        of the new checkpoint.

        ``{"messages": [...]}`` adds messages, and replaces those whose ``id`` is already in the
        state. Without ``as_node`` the update counts as the node that wrote the state last; what
        runs next (``get_state(...).next``) is what follows that node. From an earlier
        ``checkpoint_id`` the update starts a branch.

        Raises:
            InvalidUpdateError: ``values`` is not an update of the state, or ``as_node`` is not
                one of the agent's nodes (``"model"``, ``"tools"``, ``"__start__"``, a
                middleware step such as ``"trim.before_model"``).
            ThreadBusyError: a run on the thread is going.
        """
        return run_sync(lambda: self.aupdate_state(config, values, as_node))

    async def aupdate_state(
        self, config: dict[str, Any], values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        """Like :meth:`update_state`, awaited on asyncio or trio."""
        saver, thread_id, checkpoint_id = self._thread_config(config)
        thread = ThreadRun(saver, thread_id, checkpoint_id=checkpoint_id, durability="sync")
        async with thread.open():
            head = apply_update(
                thread.head, values, as_node, thread_id=thread_id, ns="", run_id=thread.run_id,
                state_keys=self.state_keys, route=self.route,
            )
            await thread.save(head)
        return head.config()

    def _thread_config(self, config: dict[str, Any]) -> tuple[BaseCheckpointSaver, str, str | None]:
        _check_config(config)
        thread_id, checkpoint_id = thread_of(config)
        if self.checkpointer is None:
            raise UsageError(
                "this agent keeps no threads: create_agent(..., checkpointer=InMemorySaver()) "
                "(from rxagent.checkpoint) gives it a memory"
            )
        if thread_id is None:
            raise UsageError(
                "name the thread: config={'configurable': {'thread_id': '1'}}"
            )
        return self.checkpointer, thread_id, checkpoint_id

    def _check_thread(
        self, thread_id: str | None, input: AgentInput, durability: Durability | None
    ) -> None:
        if thread_id is not None and self.checkpointer is None:
            raise UsageError(
                f"config names thread_id {thread_id!r}, but this agent has no checkpointer to "
                "keep the thread in, so the run would forget it; create_agent(..., "
                "checkpointer=InMemorySaver()) (from rxagent.checkpoint) makes a conversation"
            )
        if durability is not None and durability not in DURABILITIES:
            raise UsageError(f"durability is one of {DURABILITIES}, got {durability!r}")
        if thread_id is None and (input is None or isinstance(input, Command)):
            raise UsageError(
                "None and Command(...) go on with a thread's run; name the thread: "
                "config={'configurable': {'thread_id': '1'}}"
            )
        if (
            thread_id is None
            and self.checkpointer is not None
            and current_tool_task.get() is None
        ):
            raise UsageError(
                "this agent has a checkpointer, so its runs belong to threads: name one with "
                "config={'configurable': {'thread_id': '1'}}"
            )

    # -- as a tool of another agent -----------------------------------------------------------

    def as_tool(self, name: str | None = None, description: str | None = None) -> BaseTool:
        """This agent as a tool another agent can call (passing the agent in ``tools=`` does
        the same with the defaults).

        The tool takes one string argument, ``request``, which becomes this agent's user
        message, and answers with this agent's final answer. While it runs, its events flow
        into the caller's stream under the namespace of the call (``("tools:<call id>",)``,
        one level deeper per nesting): its tokens and custom events always, its ``updates``
        and ``values`` with ``subgraphs=True``. Cancelling the caller cancels it; an error in
        it becomes the tool's error ToolMessage, after the events that came before it.

        Args:
            name: the tool's name; by default the agent's ``name``.
            description: what the agent does, for the calling model.

        Raises:
            UsageError: no ``name`` given and the agent has none.
        """
        tool_name = name or self.name
        if not tool_name:
            raise UsageError(
                "an agent used as a tool needs a name: create_agent(..., name='researcher') "
                "or agent.as_tool(name='researcher')"
            )
        return _AgentTool(
            self,
            tool_name,
            description or f"Ask the {tool_name} agent; it answers with its final reply.",
        )

    def __repr__(self) -> str:
        name = f"name={self.name!r}, " if self.name else ""
        return f"Agent({name}model={self.model!r}, tools={[t.name for t in self.tools]})"


async def _run_joined(
    agent: Agent,
    input: AgentInput,
    config: dict[str, Any] | None,
    task: ToolTask,
    observer: abc.ObserverBase[StreamPart],
    demand: Demand,
    subgraphs: bool,
    thread: ThreadRun | None,
    context: Any,
) -> None:
    """Run ``agent`` for its own subscriber, joined to the run whose tool call ``task`` this
    code runs in (see :meth:`Agent.observe`)."""
    loop = current_loop()
    assert loop is not None
    parent = task.run
    sink = RunSink(observer, demand, loop, subgraphs=subgraphs,
                   joins=(parent.sink, (*parent.ns, task.ns)))
    checkpoint_ns = f"{parent.checkpoint_ns}|{task.ns}" if parent.checkpoint_ns else task.ns
    run = RunContext(sink, ns=(), checkpoint_ns=checkpoint_ns, agent_name=agent.name,
                     config_tags=(config or {}).get("tags", ()),
                     config_metadata=(config or {}).get("metadata"), config=config,
                     context=context)
    # The other run's consumer holds this run back too, unless a tool running in place holds
    # that consumer's loop: then nothing could ever let go.
    linked = not holds_the_loop()
    if linked:
        parent.sink.demand.link_upstream(demand)
    with anyio.CancelScope() as scope:
        stop = waker(loop, scope.cancel)
        withdraw_close = parent.sink.when_closed(stop)
        withdraw_cancel = when_cancelled(stop)  # a sync tool in a thread, given up on
        try:
            await run_agent_told(agent, input, config, run, thread)
        finally:
            sink.close()
            withdraw_close()
            withdraw_cancel()
            if linked:
                parent.sink.demand.unlink_upstream(demand)
    if scope.cancelled_caught:
        raise RunCancelledError(
            f"the run that {agent.name or 'this agent'}'s run joined (from inside its tool "
            "call) was cancelled"
        )


_call_id: ContextVar[str] = ContextVar("rxagent_agent_tool_call_id", default="")


class _AgentTool(BaseTool):
    """An agent as a tool: ``request`` in, the agent's final answer out, its events nested."""

    def __init__(self, agent: Agent, name: str, description: str) -> None:
        # A method of a small object, not a closure: every agent tool then shares the schema
        # derived from _Asker.ask once (rxagent/_tools.py::derive), and nothing refers back to
        # the tool.
        super().__init__(_Asker(agent).ask, name=name, description=description)
        self.agent = agent

    async def arun(
        self,
        call: ToolCall,
        *,
        writer: StreamWriter | None = None,
        runtime: ToolRuntime[Any, Any] | None = None,
    ) -> ToolMessage | Command:
        token = _call_id.set(call.get("id") or "")
        try:
            return await super().arun(call, writer=writer, runtime=runtime)
        finally:
            _call_id.reset(token)

    def __repr__(self) -> str:
        return f"_AgentTool(name={self.name!r}, agent={self.agent!r})"


class _Asker:
    """What an agent tool calls: the agent asked one question."""

    __slots__ = ("agent",)

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def ask(self, request: str) -> str:
        """Ask the agent.

        Args:
            request: what to ask the agent, in plain words.
        """
        parent = current_run.get()
        if parent is None:  # called directly, outside any run: a run of its own
            state = await self.agent.ainvoke({"messages": [HumanMessage(content=request)]})
            return str(state["messages"][-1].text)
        return await run_nested(self.agent, request, _call_id.get(), parent)


_CONFIG_KEYS = frozenset({
    "callbacks", "configurable", "max_concurrency", "metadata", "recursion_limit", "run_id",
    "run_name", "tags",
})


def _check_config(config: dict[str, Any] | None) -> None:
    """A run's config as LangChain's ``RunnableConfig``; a key rxagent cannot honour is an error
    that names it, never silently dropped."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise UsageError(f"config is a dict, got {type(config).__name__}")
    unknown = sorted(str(key) for key in config if key not in _CONFIG_KEYS)
    if unknown:
        raise UsageError(
            f"config has key(s) {unknown} that rxagent does not know; it takes "
            f"{sorted(_CONFIG_KEYS)}"
        )
    for key in ("recursion_limit", "max_concurrency"):
        value = config.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise UsageError(f"config[{key!r}] is a positive int, got {value!r}")
    tags = config.get("tags")
    # A string would be spread into one tag per character; anything else fails mid-run.
    if tags is not None and (
        not isinstance(tags, (list, tuple)) or not all(isinstance(tag, str) for tag in tags)
    ):
        raise UsageError(f"config['tags'] is a list of str, got {tags!r}")
    metadata = config.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(key, str) for key in metadata)
    ):
        raise UsageError(f"config['metadata'] is a dict with str keys, got {metadata!r}")
    handlers_of(config)  # a list of handlers or a callback manager


def _route(
    graph: AgentGraph, ends: Callable[[AIMessage, Sequence[ToolMessage]], bool]
) -> Route:
    """The nodes a state update may count as, and what runs after each. (Made of the graph,
    not the agent: an agent holding its own bound method would be a reference cycle.)"""

    def after(node: str, messages: Sequence[BaseMessage]) -> list[str]:
        following = graph.entry if node == "__start__" else graph.after(
            node, None, messages, ends)
        return task_nodes(following, messages)

    return Route(frozenset({"__start__", *graph.nodes}), after, graph.before)


def _gather(state: dict[str, Any], asked: list[Any]) -> dict[str, Any]:
    """A ``values`` part on its way to ``invoke``'s result: its interrupts are kept."""
    for item in state.get("__interrupt__", ()):
        if item not in asked:
            asked.append(item)
    return state


def _check_no_filters(filters: dict[str, Any]) -> None:
    if filters:
        raise UsageError(f"{sorted(filters)} filter version='v2' events; v3 takes none")


def _check_version(version: str) -> None:
    if version not in ("v1", "v2"):
        raise UsageError(f"version is 'v1' or 'v2', got {version!r}")


def _output_shape(
    stream_mode: StreamMode | Sequence[StreamMode], subgraphs: bool, version: str
) -> Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[Any]]:
    single = isinstance(stream_mode, str)
    modes = check_modes((stream_mode,) if isinstance(stream_mode, str) else stream_mode)
    if version == "v2":
        shape = operators.parts(*modes)
    elif version == "v1":
        # A list of one mode still gives (mode, payload) pairs, as LangGraph does.
        shape = operators.stream_mode(*modes, subgraphs=subgraphs, labelled=not single)
    else:
        raise UsageError(f"version is 'v1' or 'v2', got {version!r}")
    if subgraphs or not {"updates", "values", *ON_REQUEST} & set(modes):
        return shape
    # Nested agents' steps and states are theirs, not the caller's: only with subgraphs=True.
    return lambda source: source.pipe(select(_not_a_nested_step, lambda part: part), shape)


def _requested(stream_mode: StreamMode | Sequence[StreamMode]) -> frozenset[str]:
    """The modes of ``stream_mode`` that a run emits only when asked for."""
    modes = (stream_mode,) if isinstance(stream_mode, str) else stream_mode
    return frozenset(modes) & frozenset(ON_REQUEST)


def _not_a_nested_step(part: StreamPart) -> bool:
    return not part["ns"] or part["type"] in ("messages", "custom")


def create_agent(
    model: BaseChatModel | str,
    tools: Sequence[Any] | None = (),
    *,
    system_prompt: str | None = None,
    middleware: Sequence[AgentMiddleware[Any, Any]] = (),
    name: str | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    store: Any = None,
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
    state_schema: type[Any] | None = None,
    context_schema: type[Any] | None = None,
    response_format: Any = None,
) -> Agent:
    """Create an agent: ``model`` called with ``tools`` bound, in a loop, until it answers.

    Args:
        model: a chat model object, or a model string such as ``"openai:gpt-4o-mini"``,
            ``"gpt-5-nano"`` or ``"claude-sonnet-4-5-20250929"``.
        tools: plain functions (sync or async), ``@tool`` objects, or other agents (``None``
            for none).
        system_prompt: put before the conversation on every model call.
        middleware: :class:`~rxagent.middleware.AgentMiddleware` instances: hooks that run as
            steps of their own (``"<name>.before_model"`` in ``updates``) and wrappers of the
            model and tool calls, as LangChain runs them (:mod:`rxagent.middleware`).
        name: the agent's name, reported as ``lc_agent_name`` in ``messages`` metadata.
        checkpointer: where the agent keeps its threads (:mod:`rxagent.checkpoint`); runs
            then name their thread, ``config={"configurable": {"thread_id": "1"}}``.
        store: a long-term memory store, reached as ``runtime.store`` from tools and
            middleware.
        interrupt_before: nodes (``"model"``, ``"tools"``, a middleware step's name) to stop
            before, for a human to look; ``stream(None, config)`` goes on.
        interrupt_after: nodes to stop after.
        state_schema: an :class:`AgentState` subclass (a ``TypedDict``) whose keys besides
            ``messages`` the state also holds: given in the input, kept on the thread, in
            every ``values`` part and in ``update_state``. Their values are JSON-able.
        context_schema: the type of what runs are given as ``context=`` (kept for reference,
            as LangChain keeps it; the context reaches tools and middleware as
            ``runtime.context``).
        response_format: structured output: a schema (pydantic model, dataclass, TypedDict,
            JSON schema dict), a :class:`~rxagent.structured_output.ToolStrategy` or a
            :class:`~rxagent.structured_output.ProviderStrategy`. The answer is the state's
            ``structured_response`` (see :mod:`rxagent.structured_output`).

    Raises:
        ModelSpecError: ``model`` is neither a chat model nor a model string one resolves.
        ToolDefinitionError: an item of ``tools`` cannot become a tool.
        UsageError: ``tools`` is not a list, two tools share a name, ``middleware`` is not a
            list of middleware (or two share a name), ``system_prompt`` or ``name`` is not
            a str, or ``response_format`` is no schema or strategy.
    """
    if isinstance(model, str):
        model = _model_from_string(model)
    if not isinstance(model, BaseChatModel):
        raise ModelSpecError(
            "model is a chat model object (e.g. rxagent.testing.ScriptedChatModel, "
            "rxagent.chat_models.ChatOpenAI) or a model string such as 'openai:gpt-4o-mini'; "
            f"got {type(model).__name__}"
        )
    if tools is None:
        tools = ()
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
        raise UsageError(
            f"tools is a list of tools (functions, @tool objects, agents), got {tools!r}; "
            "a single tool goes in a list of one"
        )
    for option, value in (("system_prompt", system_prompt), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{option} is a str or None, got {type(value).__name__}")
    if checkpointer is not None and not isinstance(checkpointer, BaseCheckpointSaver):
        raise UsageError(
            "checkpointer is a saver from rxagent.checkpoint (InMemorySaver, SqliteSaver, "
            f"RedisSaver), got {type(checkpointer).__name__}"
        )
    chosen = check_middleware(middleware)
    converted = [as_tool(item) for item in [*tools, *middleware_tools(chosen)]]
    names = [tool.name for tool in converted]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"two tools share the name(s) {duplicates}; tool names must be unique")
    output = None if response_format is None else OutputFormat(response_format)
    if output is not None:
        clash = sorted(set(output.tools) & set(names))
        if clash:
            raise UsageError(f"the response format's output tool(s) {clash} share a name with "
                             "the agent's tools")
    # The answer's key: never in the input, as LangChain's input schema leaves it out.
    # Also when a wrap_model_call middleware may give the call a format of its own.
    wraps = any(any(overrides(m, "wrap_model_call")) for m in chosen)
    answer_key = [StateKey("structured_response", in_input=False)] if output or wraps else []
    agent = Agent(
        model, converted, system_prompt=system_prompt, name=name, checkpointer=checkpointer,
        interrupt_before=interrupt_before or (), interrupt_after=interrupt_after or (),
        state_keys=[*answer_key, *state_keys_of(state_schema), *middleware_state_keys(chosen)],
        context_schema=context_schema, middleware=chosen, store=store, output_format=output,
    )
    for option, nodes in (("interrupt_before", interrupt_before),
                          ("interrupt_after", interrupt_after)):
        known = agent.graph.nodes | {"model", "tools"}
        if nodes is not None and (isinstance(nodes, str) or not set(nodes) <= known):
            raise UsageError(f"{option} is a list of the agent's nodes, among "
                             f"{sorted(known)}; got {nodes!r}")
    return agent


def _model_from_string(spec: str) -> BaseChatModel:
    from .chat_models import init_chat_model

    return init_chat_model(spec)
