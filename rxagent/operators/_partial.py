"""``partial_structured``: the structured answer as it forms, validated as far as it goes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import abc

from .._messages import AIMessage
from .._structured import SchemaSpec, variants
from .._structured_partial import PartialReader
from .._types import StreamPart

__all__ = ["PartialStructured", "partial_output_parts", "partial_structured"]


class PartialStructured:
    """One subscription's readers: the reply's text (a provider's native form) and the output
    tool call's arguments (the tool form), each model call afresh."""

    __slots__ = ("_call", "_index", "_observer", "_reads_text", "_text", "_tool", "spec", "whole")

    def __init__(self, spec: SchemaSpec, observer: abc.ObserverBase[Any], *,
                 reads_text: bool = True) -> None:
        self.spec = spec
        self._reads_text = reads_text  # not for a Union's member: its tool's name tells
        self._observer = observer
        self._call: str | None = None
        self._text = PartialReader(spec)
        self._tool = PartialReader(spec)
        self._index: Any = None  # the output call's index, once the model named it
        self.whole: Any = None  # the last call's whole answer, or None

    def on_next(self, item: Any) -> None:
        """A chunk, a ``messages`` payload ``(chunk, metadata)`` or a run's part."""
        if isinstance(item, dict):  # a run's part
            if item.get("type") != "messages":
                return
            item = item["data"]
        if isinstance(item, tuple):
            item = item[0]
        if not isinstance(item, AIMessage):
            return  # a ToolMessage, say
        if item.id != self._call:  # another model call: its own answer
            self._call = item.id
            self._text = PartialReader(self.spec)
            self._tool = PartialReader(self.spec)
            self._index = None
        self._read(item)
        if getattr(item, "chunk_position", None) == "last" or not hasattr(item, "chunk_position"):
            self._finish()

    def _read(self, chunk: AIMessage) -> None:
        emit = self._observer.on_next
        text = chunk.content if isinstance(chunk.content, str) else chunk.text
        if text and self._reads_text:
            partial = self._text.feed(text)
            if partial is not None:
                emit(partial)
        for fragment in getattr(chunk, "tool_call_chunks", ()):
            if self._index is None and fragment.get("name") == self.spec.name:
                self._index = fragment.get("index")
            if fragment.get("index") == self._index and fragment.get("args"):
                partial = self._tool.feed(fragment["args"] or "")
                if partial is not None:
                    emit(partial)
        if not getattr(chunk, "tool_call_chunks", None):
            for call in chunk.tool_calls:  # a whole reply (disable_streaming=True)
                if call["name"] == self.spec.name and not self._tool.text:
                    self._tool.feed(json.dumps(call["args"]))

    def _finish(self) -> None:
        for reader in (self._tool, self._text):
            if not reader.text:
                continue
            try:
                self.whole = reader.finish()
            except ValueError:
                continue  # not this one's answer, or not a whole one: the agent says why
            self._observer.on_next(self.whole)
            return


def partial_structured(
    schema: Any,
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
    """The structured answer of each model call as it forms: validated partial objects while
    the JSON arrives, then the whole answer, validated by ``schema``, at the call's end.

    Reads a run's parts (``agent.observe(...)``), ``messages`` payloads or a model's chunks;
    the answer is the reply's text (a provider's native structured output) or the arguments
    of the call to the output tool named after the schema (the tool form). A pydantic model's
    or a dataclass's partial objects are instances of its partial twin (``PartialName``: each
    field ``None`` until it arrives, nested models twinned, constraints kept); a TypedDict's
    and a JSON schema's are dicts. An object is given only when it changed; a number at the
    very end waits until something follows it.

    ::

        --m('{"na')--m('me": "Jo')--m('"}', last)--|
            partial_structured(Contact)
        --P(name=None)--P(name='Jo')--Contact(name='Jo')--|

    Args:
        schema: a pydantic model, dataclass, TypedDict or JSON schema dict; or a ``Union`` of
            them, each member read from the calls of its own output tool (the tool form).
    """
    specs = [SchemaSpec(member) for member in variants(schema)]

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any],
                      scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            readers = [PartialStructured(spec, observer, reads_text=len(specs) == 1)
                       for spec in specs]

            def on_next(item: Any) -> None:
                for reader in readers:
                    reader.on_next(item)

            return source.subscribe(on_next, observer.on_error, observer.on_completed,
                                    scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


class _AsParts:
    """Gives a reader's objects on as ``partial_output`` parts of the run's top level."""

    __slots__ = ("_observer",)

    def __init__(self, observer: abc.ObserverBase[StreamPart]) -> None:
        self._observer = observer

    def on_next(self, value: Any) -> None:
        self._observer.on_next({"type": "partial_output", "ns": (), "data": value})


def partial_output_parts(
    schema: Any,
) -> Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[StreamPart]]:
    """A run's parts, each as it is, with a ``partial_output`` part after each token of the
    agent's own model steps that changed its structured answer (one reader per member of a
    ``Union``, each reading the calls of its own output tool): what
    ``stream(stream_mode="partial_output")`` gives."""
    specs = [SchemaSpec(member) for member in variants(schema)]

    def operator(source: reactivex.Observable[StreamPart]) -> reactivex.Observable[StreamPart]:
        def subscribe(observer: abc.ObserverBase[StreamPart],
                      scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            out: Any = _AsParts(observer)
            readers = [PartialStructured(spec, out, reads_text=len(specs) == 1)
                       for spec in specs]

            def on_next(part: StreamPart) -> None:
                observer.on_next(part)
                if (part["type"] == "messages" and not part["ns"]
                        and part["data"][1].get("langgraph_node") == "model"):
                    for reader in readers:
                        reader.on_next(part["data"][0])

            return source.subscribe(on_next, observer.on_error, observer.on_completed,
                                    scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator
