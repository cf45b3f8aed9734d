"""Anthropic's Messages API wire format, streamed.

Requests: ``POST {base_url}/v1/messages`` with ``stream: true``; the system prompt goes to the
top-level ``system``, tool calls become ``tool_use`` blocks, tool results ``tool_result``
blocks (consecutive ones merged into one user turn), and thinking blocks that carry a
signature go back as they came. Replies: the events ``message_start``,
``content_block_start`` / ``content_block_delta`` (``text_delta``, ``input_json_delta``,
``thinking_delta``, ``signature_delta``) / ``content_block_stop``, ``message_delta`` (stop
reason, cumulative usage), ``message_stop``, ``ping`` and ``error`` (an ``overloaded_error``
before anything was delivered is retried, like the HTTP 529 it stands for).

In the chunks, text is plain string content; thinking is
``{"type": "thinking", "thinking": ..., "index": i}`` blocks (the signature arrives as one
more such block, with ``"signature"``), which merge into one block per thinking block of the
reply; tool calls are tool-call chunks indexed by their content block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from .._chunks import fragment_chunk, make_chunk, piece_fragment, text_chunk
from .._exceptions import APIConnectionError, RxAgentError, StreamProtocolError
from .._messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    UsageMetadata,
)
from .._structured import SchemaSpec, anthropic_output_format
from ._base import UNNAMED_TOOL, DisableStreaming, ToolSpec
from ._errors import WRONG_SHAPE, error_message, expect_str, wire_failure, wrong_shape
from ._http import DEFAULT_TIMEOUTS, HTTPChatModel, StreamRequest, Timeouts, WireParser
from ._json import loads, scan
from ._reply import DeliveredReply
from ._retry import is_transient_error
from ._sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent
from ._whole import WholeReplyParser, anthropic_events

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "AnthropicStreamParser",
    "ChatAnthropic",
    "to_anthropic_messages",
]

_loads = loads  # looked up once: the parser calls it for every token
_scan = scan

# A content_block_delta as the API writes it (no spaces, its keys in this order), up to its
# index, then up to its text or its piece of a tool call's input:
# {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}.
# An event that starts so is exactly that object when the rest is two JSON values where
# these leave off and "}}" after them; reading the values with json's scanner where they
# stand, instead of the whole event, skips building its two dicts and five keys: about a
# fifth of a token's cost on this wire (bench/instructions.py, the Anthropic workloads).
# tests/chat_models/test_fast_path.py reads these events, and their near misses, both ways.
_DELTA = '{"type":"content_block_delta","index":'
_TEXT_DELTA = ',"delta":{"type":"text_delta","text":'
_INPUT_DELTA = ',"delta":{"type":"input_json_delta","partial_json":'
_DELTA_LENGTH = len(_DELTA)
_TEXT_DELTA_LENGTH = len(_TEXT_DELTA)
_INPUT_DELTA_LENGTH = len(_INPUT_DELTA)

ANTHROPIC_VERSION = "2023-06-01"
"""The ``anthropic-version`` header sent with every request."""

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when none is given: the API requires one, and every Claude model allows this."""

# stop_reason -> the finish_reason other providers (and the agent loop) speak.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class ChatAnthropic(HTTPChatModel):
    """A chat model speaking Anthropic's Messages API, streamed.

    The API key comes from ``api_key`` or ``ANTHROPIC_API_KEY`` and the base URL from
    ``base_url``, ``ANTHROPIC_BASE_URL`` or ``https://api.anthropic.com``. A call made without
    a key (to Anthropic's own servers) fails with :class:`~rxagent.MissingAPIKeyError`; making
    the model never does, nor touches the network.

    Example::

        from rxagent.chat_models import ChatAnthropic

        model = ChatAnthropic("claude-sonnet-4-5-20250929", max_tokens=1024)
        reply = await model.ainvoke("Say hello")

    Args:
        model: the model name.
        api_key: the API key (kept secret: it shows in no repr, log line or error).
        base_url: the API's base URL, without ``/v1``.
        http_client: an ``httpx.AsyncClient`` to send requests with (not closed by the
            model). Without one, the model keeps a pooled client per event loop, so that
            calls reuse connections; it is closed with the model (``close()``,
            ``aclose()``, ``with``/``async with``) or when its loop ends.
        timeout: a :class:`Timeouts`, or seconds to wait for the first token and between
            tokens, or ``None`` for no limit.
        max_retries: retries of a call that failed before its first token (429, 5xx, 529,
            connection failures).
        max_tokens: the longest reply, in tokens (the API requires a value).
        default_headers: extra HTTP headers for every request (``anthropic-beta``...).
        disable_streaming: ``True`` delivers each reply as one chunk; ``"tool_calling"``
            delivers tool calls whole.
        tags: reported in stream metadata.
        max_event_size: the most characters one server-sent event may hold (16 MiB by
            default; ``None`` for no limit); a larger one fails the call with
            :class:`~rxagent.StreamProtocolError`.
        **params: more request fields (``temperature``, ``thinking``, ``stop_sequences``...);
            keyword arguments of a call override them.
    """

    provider = "anthropic"
    label = "Anthropic"
    stop_field = "stop_sequences"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    base_url_env: str | None = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: Timeouts | float | None = DEFAULT_TIMEOUTS,
        max_retries: int = 2,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        default_headers: Mapping[str, str] | None = None,
        disable_streaming: DisableStreaming = False,
        tags: Sequence[str] = (),
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
        **params: Any,
    ) -> None:
        super().__init__(
            model,
            api_key=api_key,
            base_url=base_url,
            http_client=http_client,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            disable_streaming=disable_streaming,
            tags=tags,
            max_event_size=max_event_size,
            **params,
        )
        self.max_tokens = max_tokens

    def _request(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        api_key: str | None,
        kwargs: dict[str, Any],
    ) -> StreamRequest:
        system, turns = to_anthropic_messages(messages)
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": self.max_tokens,
            "messages": turns,
            "stream": True,
        }
        if system is not None:
            body["system"] = system
        if tools:
            body["tools"] = [_tool(spec) for spec in tools]
        body.update(self.params)
        body.update(kwargs)
        if body.get("tool_choice") is not None:
            body["tool_choice"] = anthropic_tool_choice(body["tool_choice"])
        else:
            body.pop("tool_choice", None)
        if "response_format" in body:
            # OpenAI's form, as ProviderStrategy gives it: Anthropic's structured outputs.
            body.setdefault("output_config", {})["format"] = anthropic_format(
                body.pop("response_format"))
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "anthropic-version": ANTHROPIC_VERSION,
            **self.default_headers,
        }
        if api_key:
            headers["x-api-key"] = api_key
        return StreamRequest(f"{self.base_url}/v1/messages", headers, body)

    def _parser(self, message_id: str) -> AnthropicStreamParser:
        return AnthropicStreamParser(
            message_id, model_name=self.model_name, provider=self.provider, label=self.label
        )

    def _reply_parser(
        self, message_id: str, request: StreamRequest, *, whole: bool
    ) -> WireParser | None:
        if not whole:
            return self._parser(message_id)
        return WholeReplyParser(self._parser(message_id), anthropic_events, self.label)


def _tool(spec: ToolSpec) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": spec["name"]}
    if spec.get("description"):
        tool["description"] = spec["description"]
    tool["input_schema"] = spec.get("parameters") or {"type": "object", "properties": {}}
    return tool


# -- requests -----------------------------------------------------------------------------------


def anthropic_tool_choice(choice: Any) -> Any:
    """LangChain's ``tool_choice`` in the Messages API's form: ``"any"``, ``"auto"``,
    ``"none"`` as ``{"type": ...}`` (``"required"`` is ``"any"``), a tool's name as
    ``{"type": "tool", "name": ...}``; dicts pass."""
    if choice is True or choice == "required":
        return {"type": "any"}
    if choice in ("any", "auto", "none"):
        return {"type": choice}
    if isinstance(choice, str):
        return {"type": "tool", "name": choice}
    return choice


def anthropic_format(value: Any) -> dict[str, Any]:
    """``output_config.format`` from OpenAI's ``response_format`` dict, a JSON schema, or a
    schema class."""
    if isinstance(value, Mapping):
        inner = value.get("json_schema")
        if value.get("type") == "json_schema" and isinstance(inner, Mapping) and "schema" in inner:
            return anthropic_output_format(inner["schema"])
        return anthropic_output_format(value)
    return anthropic_output_format(SchemaSpec(value).json_schema)


def to_anthropic_messages(
    messages: Sequence[BaseMessage],
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """The conversation as the Messages API wants it: ``(system, messages)``.

    System messages, wherever they are, make the top-level ``system`` (a string, or text
    blocks when any of them has blocks). Consecutive turns of one role merge into one (tool
    results and a user message after them make one user turn, results first); empty text is
    left out, as the API refuses it.
    """
    system_parts: list[str | list[dict[str, Any]]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in messages:
        if isinstance(message, SystemMessage):
            content = message.content
            system_parts.append(content if isinstance(content, str) else _blocks(content))
        elif isinstance(message, HumanMessage):
            add("user", _blocks(message.content))
        elif isinstance(message, AIMessage):
            add("assistant", _assistant_blocks(message))
        elif isinstance(message, ToolMessage):
            add("user", [_tool_result(message)])
        else:  # pragma: no cover - every concrete message type is handled above
            raise TypeError(f"cannot send a {type(message).__name__} to Anthropic")
    return _system(system_parts), turns


def _system(parts: list[str | list[dict[str, Any]]]) -> str | list[dict[str, Any]] | None:
    # One string when every system message is one; else text blocks, in order.
    if not parts:
        return None
    if all(isinstance(part, str) for part in parts):
        return "\n\n".join(part for part in parts if isinstance(part, str))
    system: list[dict[str, Any]] = []
    for part in parts:
        system.extend(_blocks(part) if isinstance(part, str) else part)
    return system


def _blocks(content: str | list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """User-side content as Anthropic blocks: text, images, documents."""
    if isinstance(content, str):
        content = [content]
    blocks: list[dict[str, Any]] = []
    for item in content:
        block = _text_block(item) if isinstance(item, str) else _user_block(item)
        if block is not None:
            blocks.append(block)
    return blocks


def _text_block(text: Any) -> dict[str, Any] | None:
    # The API refuses empty text blocks.
    return {"type": "text", "text": text} if text else None


def _user_block(item: dict[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "text":
        block = _text_block(item.get("text"))
        if block is not None and "cache_control" in item:
            block["cache_control"] = item["cache_control"]
        return block
    if kind == "image" and "source" not in item and "file_id" in item:
        return {"type": "image", "source": {"type": "file", "file_id": item["file_id"]}}
    if kind in ("file", "text-plain") and "source" not in item:
        return _document(item)
    if kind == "image" and "source" not in item:
        source = _image_source(item.get("url"), item.get("base64"), item.get("mime_type"))
    elif kind == "image_url":
        image = item.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        source = _image_source(url if isinstance(url, str) else None, None, None)
    else:
        # Already in Anthropic's shape (an image with a source, a document...).
        return {key: value for key, value in item.items() if key != "index"}
    return {"type": "image", "source": source} if source is not None else None


def _document(item: dict[str, Any]) -> dict[str, Any]:
    """A standard file block as a ``document`` block (by URL, inline, by Files API id), or a
    ``text-plain`` block as a text document, as langchain-anthropic sends them."""
    if item.get("type") == "text-plain":
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain",
                                  "data": item.get("text", "")}
    elif "file_id" in item:
        source = {"type": "file", "file_id": item["file_id"]}
    elif "base64" in item:
        source = {"type": "base64", "media_type": item.get("mime_type", "application/pdf"),
                  "data": item["base64"]}
    else:
        source = {"type": "url", "url": item.get("url")}
    block: dict[str, Any] = {"type": "document", "source": source}
    if "title" in item:
        block["title"] = item["title"]
    return block


def _image_source(
    url: str | None, data: str | None, mime_type: str | None
) -> dict[str, Any] | None:
    if data is not None:
        return {"type": "base64", "media_type": mime_type or "image/png", "data": data}
    if url is None:
        return None
    if url.startswith("data:") and ";base64," in url:
        header, _, encoded = url.partition(";base64,")
        return {"type": "base64", "media_type": header[5:] or "image/png", "data": encoded}
    return {"type": "url", "url": url}


def _assistant_blocks(message: AIMessage) -> list[dict[str, Any]]:
    content = message.content
    blocks: list[dict[str, Any]] = []
    for item in [content] if isinstance(content, str) else content:
        block = _text_block(item) if isinstance(item, str) else _assistant_block(item)
        if block is not None:
            blocks.append(block)
    invalid = [bad for bad in message.invalid_tool_calls if bad.get("id")]
    # An invalid call's input must still be an object, so it goes back as {}; the text the
    # model wrote for it goes back too, as a text block in the same turn, so that the model
    # sees what it sent when the error result that follows asks for it again.
    blocks.extend(
        {"type": "text", "text": f"(the arguments of call {bad['id']}, not valid JSON: "
                                 f"{bad['args']})"}
        for bad in invalid
        if bad.get("args")
    )
    blocks.extend(
        {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["args"]}
        for call in message.tool_calls
    )
    blocks.extend(
        {
            "type": "tool_use",
            "id": bad["id"],
            "name": bad.get("name") or UNNAMED_TOOL,
            "input": {},
        }
        for bad in invalid
    )
    return blocks


def _assistant_block(item: dict[str, Any]) -> dict[str, Any] | None:
    # tool_use blocks come from tool_calls; blocks other than these are ours, not the API's.
    kind = item.get("type")
    if kind == "text":
        return _text_block(item.get("text"))
    if kind in ("thinking", "reasoning"):
        # Only a signed thinking block may go back; the API refuses the others.
        extras = item.get("extras")
        # Top level in Anthropic's own blocks, under extras in the standard ones.
        signature = item.get("signature") or (
            extras.get("signature") if isinstance(extras, dict) else None
        )
        if not signature:
            return None
        thought = item.get("thinking", item.get("reasoning", ""))
        return {"type": "thinking", "thinking": thought, "signature": signature}
    if kind == "redacted_thinking" and item.get("data"):
        return {"type": "redacted_thinking", "data": item["data"]}
    return None


def _tool_result(message: ToolMessage) -> dict[str, Any]:
    content = message.content
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": message.tool_call_id,
        "content": content if isinstance(content, str) else _blocks(content),
    }
    if message.status == "error":
        result["is_error"] = True
    return result


# -- replies ------------------------------------------------------------------------------------


class AnthropicStreamParser:
    """Messages API stream events in, message chunks out; no I/O.

    One parser per attempt at a reply. ``message_start`` and ``message_delta`` only record
    metadata and usage (the usage in ``message_delta`` is cumulative); :meth:`last_chunk`
    closes the reply with them.
    """

    __slots__ = (
        "_id",
        "_label",
        "_model",
        "_provider",
        "_response_id",
        "_stop_reason",
        "_stop_sequence",
        "_usage",
        "finished",
        "opening",
        "transient_error",
    )

    def __init__(self, message_id: str, *, model_name: str, provider: str, label: str) -> None:
        self._id = message_id
        self._model = model_name
        self._provider = provider
        self._label = label
        self.finished = False
        self.transient_error = False  # whether the error event raised for may pass
        # The empty chunk the reply opens with, while due (see _reply.DeliveredReply.open).
        self.opening: AIMessageChunk | None = None
        self._response_id: str | None = None
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._usage: dict[str, Any] = {}

    def on_event(self, event: ServerSentEvent) -> AIMessageChunk | None:
        """The chunk this event makes, if any; raises on an error event."""
        data = event.data
        try:
            payload = _loads(data)
        except ValueError:
            raise self._malformed(data, "JSON") from None
        if not isinstance(payload, dict):
            raise self._malformed(data, "a JSON object")
        kind = payload.get("type") or event.event
        # One handler around the whole event instead of a check per field: a field of the
        # wrong shape (a string for the delta, a number for the message) fails where it is
        # used, and the failure is turned into the tree's error here. The fields that reach a
        # chunk without being used are checked where they are read.
        try:
            if kind == "content_block_delta":
                return self._delta(payload)
            if kind == "content_block_start":
                return self._start(payload)
            self._record(kind, payload, data)
        except WRONG_SHAPE as exc:
            raise wrong_shape(self._label, data, exc) from exc
        return None

    def on_events(self, events: Sequence[ServerSentEvent], reply: DeliveredReply) -> bool:
        """:meth:`on_columns` over one read's events."""
        return self.on_columns([event[0] for event in events], [event[1] for event in events],
                               reply)

    def on_columns(
        self, names: Sequence[str], datas: Sequence[str], reply: DeliveredReply
    ) -> bool:
        """:meth:`on_event` over one read's events (their names and data, as
        ``SSEDecoder.feed_columns`` gives them), delivering into ``reply`` up to the end
        marker; whether a chunk went out.

        The per-token fast path (``chat_models/_reply.py``): a ``content_block_delta`` of
        non-empty text, or of a non-empty piece of a tool call's input, is read here, without
        the calls of :meth:`on_event`, and what it makes is what :meth:`_delta` makes. Any
        other event takes :meth:`on_event`.
        """
        texts, fragments, emit = reply.texts, reply.fragments, reply.emit
        message_id = reply.piece_id = self._id
        produced = False
        # Where the pieces of arguments of the call of pieces_index go (reply.arguments_of),
        # until a chunk goes in through deliver (it may begin another call of that index).
        pieces: list[str] | None = None
        pieces_index: int | None = None
        for name, data in zip(names, datas, strict=True):
            # Parsing raises into the tree (as _http does for on_event); what emit raises, the
            # consumer's, goes on as it is.
            try:
                fast = None
                kind = value = index = None
                if data.startswith(_DELTA):
                    # The usual delta, in the API's own spelling: its values read where they
                    # stand (see _DELTA), and any other text as JSON below.
                    try:
                        index, at = _scan(data, _DELTA_LENGTH)
                        # The two spellings part at their 19th character ("t" or "i").
                        if data[at + 18] == "i" and data.startswith(_INPUT_DELTA, at):
                            value, end = _scan(data, at + _INPUT_DELTA_LENGTH)
                            kind = "input_json_delta"
                        elif data.startswith(_TEXT_DELTA, at):
                            value, end = _scan(data, at + _TEXT_DELTA_LENGTH)
                            kind = "text_delta"
                        if kind is not None and (end + 2 != len(data) or not data.endswith("}}")):
                            kind = None
                    except (StopIteration, ValueError, IndexError):
                        kind = None
                if kind is None:
                    try:
                        payload, end = _scan(data, 0)
                    except (StopIteration, ValueError):  # no JSON: on_event's business
                        end = -1
                    if (
                        end == len(data)
                        and type(payload) is dict
                        and payload.get("type") == "content_block_delta"
                    ):
                        delta = payload.get("delta")
                        if type(delta) is dict:
                            kind = delta.get("type")
                            if kind == "text_delta":
                                value = delta.get("text")
                            elif kind == "input_json_delta":
                                value = delta.get("partial_json")
                                index = payload.get("index")
                if kind == "text_delta":
                    if type(value) is str and value:
                        texts.append(value)
                        fast = text_chunk(value, message_id)
                elif (
                    kind == "input_json_delta" and type(value) is str and value
                    and type(index) is int
                ):
                    fragment = piece_fragment()
                    fragment["args"] = value
                    fragment["index"] = index
                    if index != pieces_index:
                        pieces_index = index
                        pieces = reply.arguments_of(index)
                    if pieces is None:  # no such call yet: kept, the fragment may begin it
                        fragments.append(fragment)
                    else:
                        pieces.append(value)
                    fast = fragment_chunk([fragment], message_id)
                chunk = self.on_event(ServerSentEvent(name, data)) if fast is None else None
            except RxAgentError:
                raise
            except Exception as exc:
                raise wire_failure(self._label, exc) from exc
            if fast is not None:
                emit(fast)
                produced = True
                continue
            if chunk is not None:
                reply.deliver(chunk)
                pieces_index = None
                produced = True
            elif self.opening is not None:  # the first event, with nothing else in it
                reply.open(self.opening)
                self.opening = None
            if self.finished:
                break
        return produced

    def _malformed(self, data: str, what: str) -> StreamProtocolError:
        return StreamProtocolError(
            f"{self._label} sent an event that is not {what}: {data[:200]!r}"
        )

    def _record(self, kind: Any, payload: dict[str, Any], data: str) -> None:
        # The events that make no chunk: metadata and usage, the end, an error.
        if kind == "message_start":
            # The reply opens with an empty chunk, as langchain-anthropic streams one here.
            self.opening = make_chunk(
                "", id=self._id, response_metadata={"model_provider": self._provider}
            )
            message = payload.get("message") or {}
            response_id = message.get("id")
            self._response_id = expect_str(response_id, "the message id") if response_id else None
            model = message.get("model")
            if model:
                self._model = expect_str(model, "the model")
            self._add_usage(message.get("usage"))
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop_reason = expect_str(delta["stop_reason"], "stop_reason")
            if delta.get("stop_sequence"):
                self._stop_sequence = expect_str(delta["stop_sequence"], "stop_sequence")
            self._add_usage(payload.get("usage"))
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            self.transient_error = is_transient_error(payload)
            raise StreamProtocolError(
                f"{self._label} sent an error in the stream: {error_message(data)}"
            )
        # ping, content_block_stop and event types added later need nothing.

    def _start(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        index = _index(payload)
        block = payload.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return make_chunk(expect_str(text, "the text"), id=self._id) if text else None
        if kind == "tool_use":
            arguments = block.get("input")
            name = block.get("name")
            call_id = block.get("id")
            return make_chunk(
                "",
                id=self._id,
                tool_call_chunks=[
                    {
                        "name": None if name is None else expect_str(name, "the tool's name"),
                        # Proxies sometimes send the whole input here, and no deltas.
                        "args": json.dumps(arguments) if arguments else "",
                        "id": None if call_id is None else expect_str(call_id, "the call's id"),
                        "index": index,
                        "type": "tool_call_chunk",
                    }
                ],
            )
        if kind == "thinking":
            thought = block.get("thinking")
            if not thought and not block.get("signature"):
                return None
            start: dict[str, Any] = {
                "type": "thinking",
                "thinking": expect_str(thought, "the thinking") if thought else "",
                "index": index,
            }
            if block.get("signature"):
                start["signature"] = expect_str(block["signature"], "the signature")
            return make_chunk([start], id=self._id)
        if kind is None:
            return None
        expect_str(kind, "the block's type")
        # redacted_thinking and server-side blocks: kept as they came, marked with their index.
        return make_chunk([{**block, "index": index}], id=self._id)

    def _delta(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if type(text) is str:
                return text_chunk(text, self._id) if text else None
            if text is None:
                return None
            raise TypeError(f"the text is a {type(text).__name__}, not a string")
        if kind == "input_json_delta":
            partial = delta.get("partial_json")
            if not partial:
                return None
            expect_str(partial, "partial_json")
            return fragment_chunk(
                [
                    {
                        "name": None,
                        "args": partial,
                        "id": None,
                        "index": _index(payload),
                        "type": "tool_call_chunk",
                    }
                ],
                self._id,
            )
        if kind == "thinking_delta":
            thought = delta.get("thinking")
            if not thought:
                return None
            return make_chunk(
                [
                    {
                        "type": "thinking",
                        "thinking": expect_str(thought, "the thinking"),
                        "index": _index(payload),
                    }
                ],
                id=self._id,
            )
        if kind == "signature_delta":
            return make_chunk(
                [
                    {
                        "type": "thinking",
                        "thinking": "",
                        "signature": expect_str(delta.get("signature"), "the signature"),
                        "index": _index(payload),
                    }
                ],
                id=self._id,
            )
        return None  # citations and delta types added later

    def _add_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            # Counts are cumulative: a later non-null value replaces the earlier one.
            self._usage.update((key, value) for key, value in usage.items() if value is not None)

    def last_chunk(self) -> AIMessageChunk:
        """The closing chunk: finish and stop reasons, model, provider, usage."""
        if not self.finished and self._stop_reason is None:
            raise APIConnectionError(
                f"{self._label}: the stream ended before the reply was complete"
            )
        stop_reason = self._stop_reason
        metadata: dict[str, Any] = {
            "finish_reason": _FINISH_REASONS.get(stop_reason, stop_reason)
            if stop_reason
            else "stop",
            "stop_reason": stop_reason,
            "stop_sequence": self._stop_sequence,
            "model_name": self._model,
            "model_provider": self._provider,
        }
        if self._response_id is not None:
            metadata["id"] = self._response_id
        metadata["model"] = self._model  # langchain-anthropic gives both names
        if self._usage:
            metadata["usage"] = dict(self._usage)  # as the server counted it
        try:
            usage = anthropic_usage(self._usage) if self._usage else None
        except WRONG_SHAPE as exc:
            raise wrong_shape(self._label, repr(self._usage), exc, what="usage") from exc
        return make_chunk(
            "",
            id=self._id,
            chunk_position="last",
            response_metadata=metadata,
            usage_metadata=usage,
        )


def _index(payload: dict[str, Any]) -> int:
    # A content block's index: blocks merge by it, so it must be a number.
    index = payload.get("index")
    if type(index) is not int:
        raise TypeError(f"the block's index is a {type(index).__name__}, not an int")
    return index


def anthropic_usage(usage: Mapping[str, Any]) -> UsageMetadata:
    """The Messages API's ``usage`` as :class:`~rxagent.messages.UsageMetadata`.

    Input tokens count the cached ones too (read and written), which also appear in
    ``input_token_details`` as ``cache_read`` and ``cache_creation``.
    """
    cache_read = usage.get("cache_read_input_tokens")
    cache_creation = usage.get("cache_creation_input_tokens")
    input_tokens = int(usage.get("input_tokens") or 0) + int(cache_read or 0)
    input_tokens += int(cache_creation or 0)
    output_tokens = int(usage.get("output_tokens") or 0)
    result: UsageMetadata = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    details = {
        name: int(value)
        for name, value in (("cache_read", cache_read), ("cache_creation", cache_creation))
        if value is not None
    }
    if details:
        result["input_token_details"] = details
    return result
