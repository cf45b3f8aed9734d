"""Whole replies: the non-streaming requests of ``disable_streaming``, and logprobs.

A model with ``disable_streaming=True`` (or ``"tool_calling"`` on a call with tools) sends
``"stream": false`` (without ``stream_options``) and reads one JSON document: OpenAI's
``chat.completion`` or Anthropic's ``message``. The usual machinery carries it: the
``_http.py`` steps (retries, deadlines, errors, cancellation) with :class:`WholeBodyDecoder`,
which makes the whole body one event, and :class:`WholeReplyParser`, which turns that event
into the events the provider's stream parser reads (:func:`openai_events`,
:func:`anthropic_events`). So a whole reply is read by the same code as a streamed one, with
the same checks, and makes the same message, tool calls, usage and metadata; it goes out as
one chunk, then the closing one.

Costs: the body is held whole (up to ``max_event_size``), and read twice (once as JSON, once
as the events made of it): once per reply, not per token.

Streamed ``logprobs`` are read by ``_openai.py``'s ``LogprobsStreamParser``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._exceptions import StreamProtocolError
from .._messages import AIMessageChunk, ChunkAccumulator
from ._errors import WRONG_SHAPE, error_message, wrong_shape
from ._json import loads
from ._retry import is_transient_error
from ._sse import ServerSentEvent

__all__ = [
    "WholeBodyDecoder",
    "WholeReplyParser",
    "anthropic_events",
    "openai_events",
    "openai_extra",
    "whole_body",
]

EventsOf = Callable[[dict[str, Any]], list[ServerSentEvent]]
"""Turns a whole reply into the events its provider's stream would have sent."""


def whole_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body of the non-streaming form of a streaming request: ``"stream": false``, no
    ``stream_options``."""
    whole = {key: value for key, value in body.items() if key != "stream_options"}
    whole["stream"] = False
    return whole


class _StreamParser(Protocol):
    # The provider's WireParser (_http.py), as far as a whole reply needs it.
    @property
    def transient_error(self) -> bool: ...

    def on_event(self, event: Any) -> AIMessageChunk | None: ...

    def last_chunk(self) -> AIMessageChunk: ...


class WholeBodyDecoder:
    """An :class:`~rxagent.chat_models.EventDecoder` for a body that is one JSON document:
    nothing until the body ends, then the whole body as one event (a str).

    Raises:
        StreamProtocolError: the body is larger than ``max_size`` bytes.
    """

    __slots__ = ("_max_size", "_parts", "_size")

    def __init__(self, max_size: int | None) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._max_size = max_size

    def feed(self, data: bytes) -> Sequence[Any]:
        self._size += len(data)
        if self._max_size is not None and self._size > self._max_size:
            raise StreamProtocolError(
                f"the reply is larger than max_event_size ({self._max_size} bytes)"
            )
        self._parts.append(data)
        return ()

    def flush(self) -> Sequence[Any]:
        body = b"".join(self._parts)
        self._parts.clear()
        return [body.decode("utf-8")] if body.strip() else []


class WholeReplyParser:
    """A :class:`~rxagent.chat_models.WireParser` for a whole reply: the provider's stream
    parser fed the events the reply stands for, its chunks merged into one."""

    __slots__ = ("_events_of", "_extra", "_extra_metadata", "_label", "_parser", "finished",
                 "transient_error")

    def __init__(
        self,
        parser: _StreamParser,
        events_of: EventsOf,
        label: str,
        extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self._parser = parser
        self._events_of = events_of
        self._label = label
        self._extra: Callable[[dict[str, Any]], dict[str, Any]] | None = extra
        self._extra_metadata: dict[str, Any] | None = None
        self.finished = False
        self.transient_error = False

    def on_event(self, event: str) -> AIMessageChunk | None:
        """The reply's content as one chunk (``None`` when it has none)."""
        try:
            payload = loads(event)
        except ValueError:
            raise StreamProtocolError(
                f"{self._label} sent a reply that is not JSON: {event[:200]!r}"
            ) from None
        if not isinstance(payload, dict):
            raise StreamProtocolError(
                f"{self._label} sent a reply that is not a JSON object: {event[:200]!r}"
            )
        if payload.get("error") is not None or payload.get("type") == "error":
            self.transient_error = is_transient_error(payload)
            raise StreamProtocolError(f"{self._label} sent an error: {error_message(event)}")
        try:
            events = self._events_of(payload)
            extra = self._extra(payload) if self._extra is not None else None
        except WRONG_SHAPE as exc:
            raise wrong_shape(self._label, event, exc, what="a reply") from exc
        merged = ChunkAccumulator()
        for one in events:
            chunk = self._parser.on_event(one)
            if chunk is not None:
                merged.add(chunk)
        self.finished = True
        if extra:
            self._extra_metadata = extra
        return None if merged.empty else merged.snapshot()

    def last_chunk(self) -> AIMessageChunk:
        """The provider parser's closing chunk, with what only a whole reply tells."""
        last = self._parser.last_chunk()
        if not self._extra_metadata:
            return last
        metadata = {**last.response_metadata, **self._extra_metadata}
        return last.model_copy(update={"response_metadata": metadata})


def _event(payload: dict[str, Any], kind: str = "message") -> ServerSentEvent:
    return ServerSentEvent(kind, json.dumps(payload, ensure_ascii=False))


# -- OpenAI's chat.completion -------------------------------------------------------------------

_HEAD_FIELDS = ("id", "object", "created", "model", "system_fingerprint", "service_tier")


def openai_events(payload: dict[str, Any]) -> list[ServerSentEvent]:
    """A ``chat.completion`` as the ``chat.completion.chunk`` events of its stream: one delta
    per choice holding the whole message (its tool calls indexed), the usage, ``[DONE]``."""
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise TypeError(f"the reply's choices are a {type(choices).__name__}, not a list")
    head = {key: payload[key] for key in _HEAD_FIELDS if key in payload}
    events: list[ServerSentEvent] = []
    for choice in choices:
        message = dict(choice.get("message") or {})
        message.pop("role", None)
        calls = message.pop("tool_calls", None) or []
        if calls:
            message["tool_calls"] = [{**call, "index": index} for index, call in enumerate(calls)]
        delta = {key: value for key, value in message.items() if value is not None}
        events.append(_event({**head, "choices": [{
            "index": choice.get("index", 0),
            "delta": delta,
            "finish_reason": choice.get("finish_reason"),
        }]}))
    if payload.get("usage"):
        events.append(_event({**head, "choices": [], "usage": payload["usage"]}))
    events.append(ServerSentEvent("message", "[DONE]"))
    return events


def openai_extra(payload: dict[str, Any]) -> dict[str, Any]:
    """What langchain-openai puts in a whole reply's metadata that a stream does not carry:
    ``logprobs`` (``None`` when not asked for, as there)."""
    choices = payload.get("choices") or []
    first = next((c for c in choices if c.get("index", 0) == 0), None)
    if first is None or "logprobs" not in first:
        return {}
    return {"logprobs": first["logprobs"]}


# -- Anthropic's message ------------------------------------------------------------------------


def anthropic_events(payload: dict[str, Any]) -> list[ServerSentEvent]:
    """A ``message`` as the events of its stream: ``message_start`` (with the usage), one
    ``content_block_start`` per block holding the whole block, ``message_delta`` (the stop
    reason), ``message_stop``."""
    content = payload.get("content") or []
    if not isinstance(content, list):
        raise TypeError(f"the reply's content is a {type(content).__name__}, not a list")
    start = {key: value for key, value in payload.items() if key != "content"}
    start["content"] = []
    events = [_event({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(content):
        events.append(_event(
            {"type": "content_block_start", "index": index, "content_block": block},
            "content_block_start",
        ))
    events.append(_event({
        "type": "message_delta",
        "delta": {
            "stop_reason": payload.get("stop_reason"),
            "stop_sequence": payload.get("stop_sequence"),
        },
        "usage": {},
    }, "message_delta"))
    events.append(_event({"type": "message_stop"}, "message_stop"))
    return events
