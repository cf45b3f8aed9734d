"""The run that code is executing in: what a model call, a tool or a nested agent needs from it.

An agent run installs its :class:`RunContext` in a context variable for the duration of the
run; code inside it (the agent's own model calls, any model called from inside a tool, tools'
writers, agents nested as tools) finds it there. Chat models and tools depend on this module,
never on the agent loop that sets it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

import reactivex
from reactivex import abc

from ._callbacks import ModelCallback, model_scope
from ._fast_rx import FastObservable
from ._messages import AIMessageChunk, BaseMessage
from ._scheduler import note_reaches_run
from ._sink import RunSink
from ._types import ModelInfo, StreamPart
from ._writer import StreamWriter

__all__ = ["RunContext", "ToolTask", "current_run", "current_tool_task", "report_model_calls"]


# The ``configurable`` keys LangGraph copies into every event's metadata.
_PROPAGATED = ("thread_id", "checkpoint_id", "checkpoint_ns", "task_id", "run_id",
               "assistant_id", "graph_id")


class RunContext:
    """One agent's place in a run: its namespace and name, and the node and step it is in.

    A nested agent gets its own, with a deeper namespace and the same sink.
    """

    __slots__ = (
        "agent_name", "checkpoint_id", "checkpoint_ns", "config", "config_metadata",
        "config_tags", "context", "emit", "extra_modes", "node", "ns", "sink", "step",
        "step_base", "store", "task_ns",
    )

    def __init__(
        self,
        sink: RunSink,
        *,
        ns: tuple[str, ...],
        checkpoint_ns: str,
        agent_name: str | None,
        config_tags: Sequence[str],
        config_metadata: Mapping[str, Any] | None = None,
        extra_modes: frozenset[str] = frozenset(),
        config: Mapping[str, Any] | None = None,
        context: Any = None,
        store: Any = None,
    ) -> None:
        self.sink = sink
        self.emit = sink.emit  # a bound method kept: the loop emits a few parts per step
        self.ns = ns
        self.checkpoint_ns = checkpoint_ns  # "" at the top, "tools:<id>|..." when nested
        self.agent_name = agent_name
        self.config_tags = list(config_tags)
        self.config_metadata = dict(config_metadata or {})  # config["metadata"], in every event
        configurable = (config or {}).get("configurable") or {}
        for key in _PROPAGATED:  # as LangGraph: after the user's metadata, never over it
            if key not in self.config_metadata and configurable.get(key):
                self.config_metadata[key] = configurable[key]
        self.extra_modes = extra_modes  # "checkpoints", "tasks", "debug": only when asked for
        self.config = dict(config or {})  # the run's config, as given
        self.context = context  # the run's context= (a ToolRuntime's context)
        self.store = store  # the agent's long-term memory store, if it has one
        self.node = "model"
        self.step = 0
        self.step_base = 0  # the step the run started at (a thread's steps go on across runs)
        self.task_ns = ""  # checkpoint namespace of the node task being executed
        self.checkpoint_id = ""  # on a thread: the checkpoint the step started from

    def nested(self, call_id: str, agent_name: str | None) -> RunContext:
        """The context of an agent run as this run's tool call ``call_id``."""
        ns = (*self.ns, f"tools:{call_id}")
        return RunContext(
            self.sink,
            ns=ns,
            checkpoint_ns="|".join(ns),
            agent_name=agent_name,
            config_tags=self.config_tags,
            config_metadata=self.config_metadata,
            extra_modes=self.extra_modes,
            config=self.config,
            context=self.context,
            store=self.store,
        )

    def writer(self) -> StreamWriter:
        """A writer whose data goes to this run's ``custom`` mode under this run's namespace."""
        return self.sink.writer(self.ns)

    def part(self, mode: str, data: Any) -> None:
        """Emit ``data`` as a part of ``mode`` under this run's namespace."""
        part: StreamPart = {"type": mode, "ns": self.ns, "data": data}
        self.emit(part)

    def state(self, values: dict[str, Any], interrupts: tuple[Any, ...] = ()) -> None:
        """Emit the state as a ``values`` part, with the interrupts that stopped the run (also
        under ``"__interrupt__"`` in the state, as LangGraph's ``values`` mode gives them)."""
        if interrupts:
            values = {**values, "__interrupt__": interrupts}
        part: StreamPart = {
            "type": "values", "ns": self.ns, "data": values, "interrupts": interrupts,
        }
        self.emit(part)

    def _metadata(
        self, integration: str, node: str, triggers: tuple[str, ...], path: tuple[Any, ...],
        task_ns: str,
    ) -> dict[str, Any]:
        """The keys every message's metadata starts with, in LangGraph's order: the run's
        ``config["metadata"]`` first, so that its own keys win."""
        metadata: dict[str, Any] = {"ls_integration": integration}
        if self.agent_name is not None:
            metadata["lc_agent_name"] = self.agent_name
        metadata.update(self.config_metadata)
        metadata.update({
            "langgraph_step": self.step,
            "langgraph_node": node,
            "langgraph_triggers": triggers,
            "langgraph_path": path,
            "langgraph_checkpoint_ns": (
                f"{self.checkpoint_ns}|{task_ns}" if self.checkpoint_ns else task_ns
            ),
        })
        return metadata

    def node_metadata(self) -> dict[str, Any]:
        """The metadata of a message the node running now (a middleware hook) writes to the
        state, as LangGraph gives it in ``messages`` mode."""
        node = self.node
        metadata = self._metadata("langchain_create_agent", node, (f"branch:to:{node}",),
                                  ("__pregel_pull", node), self.task_ns)
        if self.checkpoint_ns:  # nested: the outermost segment, as for model calls
            metadata["checkpoint_ns"] = self.checkpoint_ns.partition("|")[0]
        return metadata

    def call_metadata(self, model: ModelInfo) -> dict[str, Any]:
        """The metadata of one model call, built once and shared by all its chunks.

        Key for key (and in the order) LangGraph gives it: ``lc_agent_name`` only for a named
        agent, ``checkpoint_ns`` the outermost segment of the call's namespace, ``tags`` only
        when there are any.
        """
        task = current_tool_task.get()
        if task is not None and task.run is self:  # a model called inside one of our tools
            node, task_ns = "tools", task.ns
            triggers: tuple[str, ...] = ("__pregel_push",)
            path: tuple[Any, ...] = ("__pregel_push", task.position, False)
        else:
            node = self.node
            task_ns = self.task_ns or f"{node}:{uuid.uuid4()}"
            triggers, path = (f"branch:to:{node}",), ("__pregel_pull", node)
        metadata = self._metadata("langchain_chat_model", node, triggers, path, task_ns)
        metadata.update({
            "checkpoint_ns": metadata["langgraph_checkpoint_ns"].partition("|")[0],
            "ls_provider": model.provider,
            "ls_model_type": "chat",
            "ls_model_name": model.model_name,
        })
        tags = [*self.config_tags, *model.tags]
        if tags:
            metadata["tags"] = tags
        # A model's own config metadata (with_config, a call's config) adds keys, never
        # replaces the run's.
        for key, value in getattr(model, "config_metadata", {}).items():
            metadata.setdefault(key, value)
        return metadata

    def tool_metadata(self, position: int, task_ns: str) -> dict[str, Any]:
        """The metadata of the ToolMessage of the tools node's call at ``position``, run as
        the task ``task_ns`` (``"tools:<id>"``), as LangGraph gives it."""
        metadata = self._metadata("langchain_create_agent", "tools", ("__pregel_push",),
                                  ("__pregel_push", position, False), task_ns)
        if self.checkpoint_ns:  # nested: the outermost segment, as for model calls
            metadata["checkpoint_ns"] = self.checkpoint_ns.partition("|")[0]
        return metadata  # no "tags": LangGraph gives a ToolMessage's none

    def model_call(
        self, model: ModelInfo, observer: abc.ObserverBase[AIMessageChunk]
    ) -> abc.ObserverBase[AIMessageChunk] | None:
        """An observer that reports one model call's chunks to this run on their way to
        ``observer``; None when the call must not stream (a model tagged ``"nostream"``)."""
        if "nostream" in model.tags or "nostream" in self.config_tags:
            return None
        metadata = self.call_metadata(model)
        return self.sink.reporter(
            self.ns, metadata, observer, whole=model.disable_streaming is True
        )


current_run: ContextVar[RunContext | None] = ContextVar("rxagent_current_run", default=None)


class ToolTask(NamedTuple):
    """One tool call of a run's tools node, as a task of its own (LangGraph's push task)."""

    run: RunContext
    position: int  # among the node's calls
    ns: str  # "tools:<id>"


current_tool_task: ContextVar[ToolTask | None] = ContextVar("rxagent_tool_task", default=None)
"""The tool call that code runs in (a tool, a model or an agent it calls), if any."""


def report_model_calls(
    source: reactivex.Observable[AIMessageChunk],
    model: ModelInfo,
    messages: list[BaseMessage] | None = None,
    config: Mapping[str, Any] | None = None,
) -> reactivex.Observable[AIMessageChunk]:
    """Report a model call's chunks to the run it is made in (if any), as they pass, and to
    the callback handlers of the run or of ``config`` (if any; the call's ``messages`` go to
    their ``on_chat_model_start``)."""

    def subscribe(
        observer: abc.ObserverBase[AIMessageChunk], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = current_run.get()
        note_reaches_run()  # a tool that calls models stays in a worker thread
        reporting = run.model_call(model, observer) if run is not None else None
        target = reporting or observer
        told = model_scope(config)  # None, at no cost per chunk, when nobody listens
        if told is not None:
            metadata = run.call_metadata(model) if run is not None else {
                "ls_provider": model.provider, "ls_model_type": "chat",
                "ls_model_name": model.model_name}
            metadata.pop("tags", None)
            target = ModelCallback(told, model, messages or [], metadata, target)
        return source.subscribe(target, scheduler=scheduler)

    return FastObservable(subscribe)
