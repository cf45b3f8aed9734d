"""Projections of a run's ``messages`` parts, and filters by where a part comes from.

Projections read the token stream of every model call in the run (the agent's own and any
called from a tool) and give what an application shows: text, reasoning, finished tool calls,
the message so far. Filters keep a run's part stream a run's part stream, so they go before
the mode operators and the projections::

    agent.observe(inputs).pipe(rxo.from_nodes("model"), rxo.text())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import abc

from .._exceptions import UsageError
from .._messages import AIMessage, AIMessageChunk, ChunkAccumulator, ToolCall
from .._types import StreamPart
from ._modes import select

__all__ = [
    "accumulate",
    "from_agents",
    "from_models",
    "from_nodes",
    "in_namespace",
    "reasoning",
    "text",
    "tool_calls",
    "with_tags",
]

PartOperator = Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[StreamPart]]


def _model_output(part: StreamPart) -> AIMessage | None:
    """A model's chunk, or its whole reply (``disable_streaming=True``); not a ToolMessage."""
    if part["type"] != "messages":
        return None
    message = part["data"][0]
    return message if isinstance(message, AIMessage) else None


# -- projections ---------------------------------------------------------------------------


def text() -> Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[str]]:
    """The text deltas of every model call in the run, as strings (empty ones left out).

    ::

        --m("It's")--u--m(" sunny")--m(last)--|   text()   --"It's"--" sunny"--|
    """

    def keep(part: StreamPart) -> bool:
        chunk = _model_output(part)
        return chunk is not None and bool(chunk.text)

    return select(keep, lambda part: part["data"][0].text)


def reasoning() -> Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[str]]:
    """The reasoning deltas (``{"type": "reasoning"}`` blocks) of every model call, as strings.

    ::

        --m(r:"Let me")--m("Hi")--m(r:" think")--|   reasoning()   --"Let me"--" think"--|
    """

    def pieces(part: StreamPart) -> str:
        chunk = part["data"][0]
        return "".join(
            block.get("reasoning") or ""
            for block in chunk.content_blocks
            if block.get("type") == "reasoning"
        )

    def keep(part: StreamPart) -> bool:
        chunk = _model_output(part)
        # Reasoning only ever rides in list content; plain string chunks are skipped cheaply.
        return chunk is not None and not isinstance(chunk.content, str)

    return lambda source: source.pipe(
        select(keep, pieces), select(bool, lambda piece: piece)
    )


def tool_calls() -> Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[ToolCall]]:
    """Each tool call the run's models make, once, complete, when its model call ends.

    Fragments are merged per model call (its chunks share one metadata dict) and parsed on the
    call's last chunk; calls whose arguments are not valid JSON are left out (they reach the
    tools node as error results). ::

        --m(c1 head)--m('{"city"')--m(':"SF"}')--m(last)--|
        tool_calls()
        --------------------------------------{c1}-----|
    """

    def operator(source: reactivex.Observable[StreamPart]) -> reactivex.Observable[ToolCall]:
        def subscribe(
            observer: abc.ObserverBase[ToolCall], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            pending: dict[int, ChunkAccumulator] = {}

            def on_next(part: StreamPart) -> None:
                chunk = _model_output(part)
                if chunk is None:
                    return
                if not isinstance(chunk, AIMessageChunk):  # a whole reply: its calls are done
                    for call in chunk.tool_calls:
                        observer.on_next(call)
                    return
                key = id(part["data"][1])
                accumulator = pending.get(key)
                if chunk.tool_call_chunks:
                    if accumulator is None:
                        accumulator = pending[key] = ChunkAccumulator()
                    accumulator.add(chunk)
                if chunk.chunk_position != "last" or accumulator is None:
                    return
                del pending[key]
                for call in accumulator.to_message().tool_calls:
                    observer.on_next(call)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


def accumulate() -> Callable[
    [reactivex.Observable[StreamPart]], reactivex.Observable[tuple[AIMessage, dict[str, Any]]]
]:
    """``(message so far, metadata)`` after every chunk of every model call in the run.

    Each item is a merged :class:`~rxagent.messages.AIMessageChunk` of the call's chunks up to
    that point (after the last one, with its parsed ``tool_calls``); a model with
    ``disable_streaming=True`` gives its whole :class:`~rxagent.messages.AIMessage` once.
    Each item copies the text so far, so on long answers follow it with ``throttle_latest``
    or put ``coalesce`` before it. ::

        --m("It's")--m(" sunny")--m(last)--|
        accumulate()
        --("It's")--("It's sunny")--("It's sunny", last)--|
    """

    def operator(
        source: reactivex.Observable[StreamPart],
    ) -> reactivex.Observable[tuple[AIMessage, dict[str, Any]]]:
        def subscribe(
            observer: abc.ObserverBase[tuple[AIMessage, dict[str, Any]]],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            calls: dict[int, ChunkAccumulator] = {}

            def on_next(part: StreamPart) -> None:
                chunk = _model_output(part)
                if chunk is None:
                    return
                metadata = part["data"][1]
                if not isinstance(chunk, AIMessageChunk):  # a whole reply is its own total
                    observer.on_next((chunk, metadata))
                    return
                key = id(metadata)
                accumulator = calls.get(key)
                if accumulator is None:
                    accumulator = calls[key] = ChunkAccumulator()
                accumulator.add(chunk)
                if chunk.chunk_position == "last":
                    del calls[key]
                observer.on_next((accumulator.snapshot(), metadata))

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


# -- filters -------------------------------------------------------------------------------


def _names(kind: str, names: tuple[str, ...]) -> frozenset[str]:
    if not names or not all(isinstance(name, str) for name in names):
        raise UsageError(f"name at least one {kind}, as strings; got {names!r}")
    return frozenset(names)


def from_nodes(*nodes: str) -> PartOperator:
    """Keep what the given nodes (``"model"``, ``"tools"``) produce, and every ``values`` part.

    A ``messages`` part belongs to its metadata's ``langgraph_node``, an ``updates`` part to
    the node it reports, a ``custom`` part to ``"tools"`` (writers run inside tools). ``values``
    parts are the state between steps, of no node, and pass. ::

        --m(model)--c--u(tools)--v--|   from_nodes("model")   --m(model)--v--|
    """
    wanted = _names("node", nodes)
    keep_custom = "tools" in wanted

    def keep(part: StreamPart) -> bool:
        kind = part["type"]
        if kind == "messages":
            return part["data"][1].get("langgraph_node") in wanted
        if kind == "updates":
            return not wanted.isdisjoint(part["data"])
        if kind == "custom":
            return keep_custom
        return True

    return select(keep, _same)


def in_namespace(*ns: str, exact: bool = False) -> PartOperator:
    """Keep the parts of the run (or nested run) whose namespace starts with ``ns``.

    ``in_namespace()`` with ``exact=True`` keeps the top-level agent's parts only; a nested
    agent's parts carry the namespace of the tool call that runs it
    (``("tools:<call id>",)``, one level deeper per nesting). ::

        --p(())--p(("tools:1",))--|   in_namespace(exact=True)   --p(())--|
    """
    prefix = tuple(ns)
    size = len(prefix)
    if exact:
        return select(lambda part: part["ns"] == prefix, _same)
    return select(lambda part: part["ns"][:size] == prefix, _same)


def _messages_filter(test: Callable[[dict[str, Any]], bool]) -> PartOperator:
    # Filters on a model call's metadata drop that call's messages and pass every other part.
    return select(
        lambda part: part["type"] != "messages" or test(part["data"][1]), _same
    )


def with_tags(*tags: str) -> PartOperator:
    """Keep the ``messages`` of model calls tagged with any of ``tags``; other parts pass.

    Tags come from the run's ``config={"tags": [...]}`` and the model's ``tags``.
    """
    wanted = _names("tag", tags)
    return _messages_filter(lambda metadata: not wanted.isdisjoint(metadata.get("tags", ())))


def from_models(*model_names: str) -> PartOperator:
    """Keep the ``messages`` of calls to the named models (``ls_model_name``); other parts
    pass."""
    wanted = _names("model", model_names)
    return _messages_filter(lambda metadata: metadata.get("ls_model_name") in wanted)


def from_agents(*agent_names: str) -> PartOperator:
    """Keep the ``messages`` of model calls made by the named agents
    (``create_agent(name=...)``, ``lc_agent_name`` in metadata); other parts pass."""
    wanted = _names("agent", agent_names)
    return _messages_filter(lambda metadata: metadata.get("lc_agent_name") in wanted)


def _same(part: StreamPart) -> StreamPart:
    return part
