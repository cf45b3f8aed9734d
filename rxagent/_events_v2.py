"""``astream_events(version="v2")``: a run's callback events as LangChain's event dicts.

As in LangChain, the events are what a callback handler hears, reshaped: :class:`EventStream`
is a handler, added to the run's ``callbacks``, that turns each call into an event
``{"event", "data", "name", "tags", "run_id", "metadata", "parent_ids"}`` and sends it into the
run's own stream as a part of type ``"events"``. So events wait for a slow consumer as every
other part does, from whichever thread they come, and :func:`observe_events` is that stream
with the other parts left out. A graph node's output is also given as ``on_chain_stream`` of
the node, then of the agent (``{node: output}``, the outermost agent only), as LangGraph
streams them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import reactivex
from reactivex import abc

from ._callbacks import handlers_of
from ._exceptions import UsageError
from ._fast_rx import FastObservable
from ._sink import RunSink
from ._types import StreamPart
from .operators._modes import select

__all__ = ["EventFilter", "EventStream", "check_events_version", "observe_events"]


def check_events_version(version: str) -> None:
    """LangChain's v1 events are deprecated; v2 is the one to use (v3 is handled apart)."""
    if version == "v1":
        raise UsageError("astream_events(version='v1') is deprecated in LangChain and not "
                         "given here: use version='v2' (the default)")
    if version != "v2":
        raise UsageError(f"version is 'v2' (LangChain's events) or 'v3' (LangGraph's "
                         f"experimental event stream), got {version!r}")


@dataclass
class _Run:
    name: str
    tags: list[str]
    metadata: dict[str, Any]
    parent_ids: list[str]
    input: Any
    node: bool  # a graph node (LangGraph tags its run "graph:step:N")
    parent: uuid.UUID | None


class EventStream:
    """A callback handler that sends LangChain's v2 events into a run's stream."""

    def __init__(self) -> None:
        self._sink: RunSink | None = None
        self._runs: dict[uuid.UUID, _Run] = {}

    def _rxagent_bind(self, sink: RunSink) -> None:
        if self._sink is None:  # a run joined from inside a tool keeps the caller's stream
            self._sink = sink

    def _send(self, event: dict[str, Any]) -> None:
        if self._sink is not None:
            part: StreamPart = {"type": "events", "ns": (), "data": event}
            self._sink.emit(part)

    def _start(
        self, kind: str, name: str, input: Any, run_id: uuid.UUID, parent_run_id: uuid.UUID | None,
        tags: list[str] | None, metadata: dict[str, Any] | None, data: dict[str, Any],
    ) -> None:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        parents = [*parent.parent_ids, str(parent_run_id)] if parent is not None else (
            [str(parent_run_id)] if parent_run_id is not None else [])
        run = _Run(name, list(tags or ()), dict(metadata or {}), parents, input,
                   any(tag.startswith("graph:step:") for tag in tags or ()), parent_run_id)
        self._runs[run_id] = run
        self._send({"event": f"on_{kind}_start", "data": data, "name": name, "tags": run.tags,
                    "run_id": str(run_id), "metadata": run.metadata, "parent_ids": parents})

    def _event(self, event: str, run_id: uuid.UUID, run: _Run, data: dict[str, Any]) -> None:
        self._send({"event": event, "data": data, "run_id": str(run_id), "name": run.name,
                    "tags": run.tags, "metadata": run.metadata, "parent_ids": run.parent_ids})

    # -- chains: the agent and its nodes --------------------------------------------------

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, name: str = "", **kwargs: Any,
    ) -> None:
        self._start("chain", name, inputs, run_id, parent_run_id, tags, metadata,
                    {"input": inputs})

    def on_chain_end(self, outputs: Any, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        if not run.node:  # an agent: the outermost one streams, and ends without its input
            self._event("on_chain_end", run_id, run, {"output": outputs, "input": run.input}
                        if run.parent_ids else {"output": outputs})
            return
        self._event("on_chain_stream", run_id, run, {"chunk": outputs})
        self._event("on_chain_end", run_id, run, {"output": outputs, "input": run.input})
        graph = self._runs.get(run.parent) if run.parent is not None else None
        if graph is not None and run.parent is not None and not graph.parent_ids:
            self._event("on_chain_stream", run.parent, graph, {"chunk": {run.name: outputs}})

    def on_chain_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self._runs.pop(run_id, None)  # v2 has no error events: the stream raises

    # -- model calls ----------------------------------------------------------------------

    def on_chat_model_start(
        self, serialized: Any, messages: list[list[Any]], *, run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, name: str | None = None, **kwargs: Any,
    ) -> None:
        called = name or (serialized or {}).get("name") or "chat_model"
        self._start("chat_model", called, {"messages": messages}, run_id, parent_run_id, tags,
                    metadata, {"input": {"messages": messages}})

    def on_llm_new_token(
        self, token: str, *, chunk: Any = None, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        run = self._runs.get(run_id)
        if run is not None and chunk is not None:
            self._event("on_chat_model_stream", run_id, run, {"chunk": chunk.message})

    def on_llm_end(self, response: Any, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None:
            self._event("on_chat_model_end", run_id, run,
                        {"output": response.generations[0][0].message, "input": run.input})

    def on_llm_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self._runs.pop(run_id, None)

    # -- tools and custom events ----------------------------------------------------------

    def on_tool_start(
        self, serialized: Mapping[str, Any], input_str: str, *, run_id: uuid.UUID,
        parent_run_id: uuid.UUID | None = None, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, inputs: Any = None, **kwargs: Any,
    ) -> None:
        self._start("tool", serialized.get("name") or "tool", inputs, run_id, parent_run_id,
                    tags, metadata, {"input": inputs})

    def on_tool_end(self, output: Any, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None:
            self._event("on_tool_end", run_id, run, {"output": output, "input": run.input})

    def on_tool_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None:
            self._event("on_tool_error", run_id, run, {"error": error, "input": run.input})

    def on_custom_event(
        self, name: str, data: Any, *, run_id: uuid.UUID, tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        run = self._runs.get(run_id)
        self._send({"event": "on_custom_event", "run_id": str(run_id), "name": name,
                    "tags": list(tags or ()), "metadata": dict(metadata or {}), "data": data,
                    "parent_ids": run.parent_ids if run is not None else []})


@dataclass(frozen=True)
class EventFilter:
    """LangChain's ``include_*``/``exclude_*`` arguments: by name, run type and tag."""

    include_names: Sequence[str] | None = None
    include_types: Sequence[str] | None = None
    include_tags: Sequence[str] | None = None
    exclude_names: Sequence[str] | None = None
    exclude_types: Sequence[str] | None = None
    exclude_tags: Sequence[str] | None = None

    def keeps(self, event: dict[str, Any]) -> bool:
        name, tags = event["name"], event["tags"]
        kind = event["event"].split("_", 1)[1].rpartition("_")[0]  # on_chat_model_end
        included = (self.include_names is None and self.include_types is None
                    and self.include_tags is None)
        included = included or (
            name in (self.include_names or ()) or kind in (self.include_types or ())
            or any(tag in (self.include_tags or ()) for tag in tags))
        excluded = (name in (self.exclude_names or ()) or kind in (self.exclude_types or ())
                    or any(tag in (self.exclude_tags or ()) for tag in tags))
        return included and not excluded


def observe_events(
    start: Callable[[dict[str, Any]], reactivex.Observable[StreamPart]],
    config: Mapping[str, Any] | None,
    wanted: EventFilter,
) -> reactivex.Observable[dict[str, Any]]:
    """The run that ``start(config)`` makes, as its v2 events (each subscription one run)."""
    given = handlers_of(config)
    everything = wanted == EventFilter()

    def keep(part: StreamPart) -> bool:
        return part["type"] == "events" and (everything or wanted.keeps(part["data"]))

    def subscribe(
        observer: abc.ObserverBase[dict[str, Any]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        told = {**(config or {}), "callbacks": [*given, EventStream()]}
        events = start(told).pipe(select(keep, _data))
        return events.subscribe(observer, scheduler=scheduler)

    return FastObservable(subscribe)


def _data(part: StreamPart) -> dict[str, Any]:
    return part["data"]  # type: ignore[no-any-return]
