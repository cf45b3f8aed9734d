"""OpenAI's Chat Completions wire format, streamed: OpenAI itself, Ollama, and any server that
speaks it (vLLM, LM Studio, OpenRouter, DeepSeek, Azure's deployments...).

Requests: ``POST {base_url}/chat/completions`` with ``stream: true`` and
``stream_options: {"include_usage": true}``. Replies: ``data: {chat.completion.chunk}`` events,
then ``data: [DONE]``. What real servers do that the happy path does not:

- a first chunk with empty ``choices`` (Azure's ``prompt_filter_results``) and the usage chunk
  with empty ``choices``;
- tool calls whose arguments arrive whole, whose ``index`` is missing, whose ``index`` is
  reused for the next call with a new ``id`` (Ollama), several at once;
- ``reasoning_content`` (DeepSeek) or ``reasoning`` (OpenRouter, Ollama) deltas, emitted as
  ``{"type": "reasoning", "reasoning": ...}`` content blocks;
- ``refusal`` deltas, emitted as text and kept whole in ``response_metadata["refusal"]``;
- the usage under ``x_groq.usage`` (Groq) instead of ``usage``;
- ``finish_reason: "length"`` cutting tool-call arguments short (an invalid tool call after the
  merge, not a crash);
- ``data: {"error": {...}}`` after HTTP 200, raised as :class:`~rxagent.StreamProtocolError`
  (a ``server_error`` before anything was delivered is retried, like a 5xx).
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
    ToolCallChunk,
    ToolMessage,
    UsageMetadata,
)
from .._structured import SchemaSpec, openai_response_format
from ._base import UNNAMED_TOOL, DisableStreaming, ToolSpec
from ._errors import WRONG_SHAPE, error_message, expect_str, wire_failure, wrong_shape
from ._http import DEFAULT_TIMEOUTS, HTTPChatModel, StreamRequest, Timeouts, WireParser
from ._json import loads, scan
from ._reply import DeliveredReply
from ._retry import is_transient_error
from ._sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent
from ._whole import WholeReplyParser, openai_events, openai_extra

__all__ = [
    "ChatOllama",
    "ChatOpenAI",
    "LogprobsStreamParser",
    "OpenAIStreamParser",
    "to_openai_messages",
]

_loads = loads  # looked up once: the parser calls it for every token
_scan = scan

# A usual token, as OpenAI writes it: what follows the fields every event of a reply repeats
# (see OpenAIStreamParser._learn_head), up to the token's value, and what must follow that.
# An event spelt otherwise (spaces, other keys, another order) is parsed whole instead.
_TEXT = '"choices":[{"index":0,"delta":{"content":'
_ARGUMENTS = '"choices":[{"index":0,"delta":{"tool_calls":[{"index":'
_ARGUMENTS_VALUE = ',"function":{"arguments":'
_TEXT_CLOSE = '},"logprobs":null,"finish_reason":null}]'
_ARGUMENTS_CLOSE = '}}]' + _TEXT_CLOSE
_ENDS = ("}", ',"usage":null}')  # what may close the event, before or after a padding:
_PADDING = tuple((text, len(text)) for text in (',"obfuscation":', ',"usage":null,"obfuscation":'))
_CHOICES = '"choices":['
_TEXT_LENGTH, _ARGUMENTS_LENGTH = len(_TEXT), len(_ARGUMENTS)  # (per token: no len() calls)
_ARGUMENTS_VALUE_LENGTH = len(_ARGUMENTS_VALUE)
_TEXT_CLOSE_LENGTH, _ARGUMENTS_CLOSE_LENGTH = len(_TEXT_CLOSE), len(_ARGUMENTS_CLOSE)
_LEARNS = 4  # heads tried per reply: a server whose head changes every event gives up soon


def _usual_token(data: str, at: int, last_index: int) -> str | ToolCallChunk | None:
    """The token of an event whose head was seen before, read where it stands from ``at``:
    its text, or its piece of a begun call's arguments; ``None`` unless the rest is exactly
    ``_TEXT`` or ``_ARGUMENTS``'s shape, which is what the whole event would have parsed to
    on the fast path of :meth:`OpenAIStreamParser.on_columns`."""
    try:
        if data.startswith(_TEXT, at):
            value, end = _scan(data, at + _TEXT_LENGTH)
            if type(value) is not str or not value or not data.startswith(_TEXT_CLOSE, end):
                return None
            token: str | ToolCallChunk = value
            end += _TEXT_CLOSE_LENGTH
        elif data.startswith(_ARGUMENTS, at):
            index, end = _scan(data, at + _ARGUMENTS_LENGTH)
            if (
                type(index) is not int
                or not 0 <= index <= last_index
                or not data.startswith(_ARGUMENTS_VALUE, end)
            ):
                return None
            value, end = _scan(data, end + _ARGUMENTS_VALUE_LENGTH)
            if type(value) is not str or not data.startswith(_ARGUMENTS_CLOSE, end):
                return None
            piece = piece_fragment()
            piece["args"] = value
            piece["index"] = index
            token = piece
            end += _ARGUMENTS_CLOSE_LENGTH
        else:
            return None
        rest = data[end:]
        if rest in _ENDS:
            return token
        for padding, length in _PADDING:
            if rest.startswith(padding):
                end = _scan(rest, length)[1]  # (its value means nothing)
                return token if rest[end:] in _ENDS else None
    except (StopIteration, ValueError):
        pass
    return None


class ChatOpenAI(HTTPChatModel):
    """A chat model speaking OpenAI's Chat Completions API, streamed.

    Works with OpenAI and any OpenAI-compatible server (give its ``base_url``). The API key
    comes from ``api_key`` or ``OPENAI_API_KEY`` and the base URL from ``base_url``,
    ``OPENAI_BASE_URL`` or ``https://api.openai.com/v1``. A key is required only by OpenAI's
    own servers; a call made without one fails with :class:`~rxagent.MissingAPIKeyError`
    (making the model never does, nor touches the network).

    Example::

        from rxagent.chat_models import ChatOpenAI

        model = ChatOpenAI("gpt-4o-mini", temperature=0)
        reply = await model.ainvoke("Say hello")

    Args:
        model: the model name, as the server knows it.
        api_key: the API key (kept secret: it shows in no repr, log line or error).
        base_url: the API's base URL, up to and including ``/v1``.
        http_client: an ``httpx.AsyncClient`` to send requests with (not closed by the
            model). Without one, the model keeps a pooled client per event loop, so that
            calls reuse connections; it is closed with the model (``close()``,
            ``aclose()``, ``with``/``async with``) or when its loop ends.
        timeout: a :class:`Timeouts`, or seconds to wait for the first token and between
            tokens, or ``None`` for no limit.
        max_retries: retries of a call that failed before its first token (429, 5xx,
            connection failures).
        default_headers: extra HTTP headers for every request.
        stream_usage: ask for the usage chunk (``stream_options``); turn off for servers that
            reject it.
        disable_streaming: ``True`` delivers each reply as one chunk; ``"tool_calling"``
            delivers tool calls whole.
        tags: reported in stream metadata.
        max_event_size: the most characters one server-sent event may hold (16 MiB by
            default; ``None`` for no limit); a larger one fails the call with
            :class:`~rxagent.StreamProtocolError`.
        **params: more request fields (``temperature``, ``max_completion_tokens``,
            ``reasoning_effort``...); keyword arguments of a call override them.
    """

    provider = "openai"
    label = "OpenAI"
    api_key_env: str | None = "OPENAI_API_KEY"
    base_url_env: str | None = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"

    structured_output_method = "json_schema"  # langchain-openai's default

    def __init__(
        self,
        model: str,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: Timeouts | float | None = DEFAULT_TIMEOUTS,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        stream_usage: bool = True,
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
        self.stream_usage = stream_usage

    def _request(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        api_key: str | None,
        kwargs: dict[str, Any],
    ) -> StreamRequest:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": to_openai_messages(messages),
            "stream": True,
        }
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = [_tool(spec) for spec in tools]
        body.update(self.params)
        body.update(kwargs)
        if "tool_choice" in body:
            body["tool_choice"] = openai_tool_choice(body["tool_choice"])
        if body.get("response_format") is not None:
            body["response_format"] = openai_format(body["response_format"])
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            **self.default_headers,
        }
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return StreamRequest(f"{self.base_url}/chat/completions", headers, body)

    def _parser(self, message_id: str) -> OpenAIStreamParser:
        return OpenAIStreamParser(
            message_id, model_name=self.model_name, provider=self.provider, label=self.label
        )

    def _reply_parser(
        self, message_id: str, request: StreamRequest, *, whole: bool
    ) -> WireParser | None:
        # A whole chat.completion (_whole.py), or a stream whose logprobs must be kept.
        if whole:
            return WholeReplyParser(
                self._parser(message_id), openai_events, self.label, openai_extra
            )
        if request.body.get("logprobs"):
            return LogprobsStreamParser(
                message_id, model_name=self.model_name, provider=self.provider, label=self.label
            )
        return self._parser(message_id)


class ChatOllama(ChatOpenAI):
    """A model served by Ollama, through its OpenAI-compatible API; no key needed.

    The base URL comes from ``base_url``, ``OLLAMA_BASE_URL`` or ``http://localhost:11434/v1``;
    a URL given without a path (``http://gpu-box:11434``) gets ``/v1`` added. ``OPENAI_API_KEY``
    is never read (it must not travel to another server); pass ``api_key`` when a proxy in
    front of Ollama wants one. Everything else is as for :class:`ChatOpenAI`.
    """

    provider = "ollama"
    label = "Ollama"
    api_key_env = None
    base_url_env = "OLLAMA_BASE_URL"
    default_base_url = "http://localhost:11434/v1"

    def __init__(self, model: str, *, base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(model, base_url=base_url, **kwargs)
        url = httpx.URL(self.base_url)
        if url.path in ("", "/"):
            self.base_url = str(url.copy_with(path="/v1")).rstrip("/")


def _tool(spec: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": spec["name"]}
    if spec.get("description"):
        function["description"] = spec["description"]
    function["parameters"] = spec.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


# -- requests -----------------------------------------------------------------------------------


def openai_tool_choice(choice: Any) -> Any:
    """LangChain's ``tool_choice`` in Chat Completions' form: ``"any"`` is ``"required"``, a
    tool's name forces that tool; ``"auto"``, ``"none"``, ``"required"`` and dicts pass."""
    if choice == "any" or choice is True:
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def openai_format(value: Any) -> Any:
    """``response_format`` as sent: a dict as it is, a schema (pydantic model, dataclass,
    TypedDict) as its JSON schema."""
    if isinstance(value, Mapping):
        return value
    return openai_response_format(SchemaSpec(value))


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The conversation in Chat Completions' ``messages`` format.

    System, user, assistant (text and ``tool_calls``, invalid ones included with their raw
    arguments so that the tool results answering them have a call to answer) and ``tool``
    messages. Reasoning blocks are not sent back: servers either ignore them or refuse them.
    """
    converted: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            converted.append({"role": "system", "content": _text(message.content)})
        elif isinstance(message, HumanMessage):
            converted.append({"role": "user", "content": _user_content(message.content)})
        elif isinstance(message, AIMessage):
            converted.append(_assistant(message))
        elif isinstance(message, ToolMessage):
            converted.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id,
                    "content": _text(message.content),
                }
            )
        else:  # pragma: no cover - every concrete message type is handled above
            raise TypeError(f"cannot send a {type(message).__name__} to OpenAI")
    return converted


def _text(content: str | list[str | dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        item if isinstance(item, str) else str(item.get("text", ""))
        for item in content
        if isinstance(item, str) or item.get("type") == "text"
    )


def _user_content(
    content: str | list[str | dict[str, Any]],
) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for item in content:
        if isinstance(item, str):
            parts.append({"type": "text", "text": item})
            continue
        kind = item.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": item.get("text", "")})
        elif kind == "image" and ("url" in item or "base64" in item):
            # The standard image block; OpenAI takes it as an image_url (a data URL inline).
            url = item.get("url") or (
                f"data:{item.get('mime_type', 'image/png')};base64,{item['base64']}"
            )
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif (part := _standard_part(item)) is not None:
            parts.append(part)
        else:
            # Already in OpenAI's shape (image_url, input_audio, file), or a block it does not
            # take (a video, a file by URL), which it then refuses by name rather than unseen.
            parts.append(dict(item))
    return parts


def _standard_part(item: dict[str, Any]) -> dict[str, Any] | None:
    """A standard file or audio block as Chat Completions takes it, as langchain-openai
    sends it: a PDF inline or by id as a ``file`` part, base64 audio as ``input_audio``."""
    kind = item.get("type")
    if kind == "file" and "file" not in item:
        if "file_id" in item:
            return {"type": "file", "file": {"file_id": item["file_id"]}}
        if "base64" in item:
            mime = item.get("mime_type", "application/pdf")
            extras = item.get("extras")
            filename = item.get("filename") or (
                extras.get("filename") if isinstance(extras, dict) else None
            )
            file: dict[str, Any] = {"file_data": f"data:{mime};base64,{item['base64']}"}
            if filename:
                file["filename"] = filename
            return {"type": "file", "file": file}
    if kind == "audio" and "base64" in item:
        mime = str(item.get("mime_type", "audio/wav"))
        audio_format = {"audio/mpeg": "mp3", "audio/mp3": "mp3"}.get(mime, mime.split("/")[-1])
        return {"type": "input_audio",
                "input_audio": {"data": item["base64"], "format": audio_format}}
    return None


def _assistant(message: AIMessage) -> dict[str, Any]:
    text = _text(message.content)
    calls: list[dict[str, Any]] = [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in message.tool_calls
    ]
    # An invalid call goes back as the model sent it, its arguments the raw text (the API
    # takes any string there), so that the error result answering it has a call to answer.
    calls.extend(
        {
            "id": bad["id"],
            "type": "function",
            "function": {
                "name": bad.get("name") or UNNAMED_TOOL,
                "arguments": bad.get("args") or "",
            },
        }
        for bad in message.invalid_tool_calls
        if bad.get("id")
    )
    converted: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        converted["tool_calls"] = calls
    return converted


# -- replies ------------------------------------------------------------------------------------


class OpenAIStreamParser:
    """Chat-completion chunks in, message chunks out; no I/O.

    One parser per attempt at a reply. Each event gives at most one chunk; empty deltas (the
    role-only first chunk, the finish chunk, the usage chunk) give none. :meth:`last_chunk`
    closes the reply with the finish reason, the usage and the response metadata.
    """

    __slots__ = (
        "_finish_reason",
        "_head",
        "_id",
        "_ids",
        "_label",
        "_last_index",
        "_learns",
        "_model",
        "_model_name",
        "_provider",
        "_refusal",
        "_response_id",
        "_service_tier",
        "_system_fingerprint",
        "_tool_calls",
        "_usage",
        "finished",
        "opening",
        "transient_error",
    )

    def __init__(self, message_id: str, *, model_name: str, provider: str, label: str) -> None:
        self._id = message_id
        self._model_name = model_name
        self._provider = provider
        self._label = label
        self.finished = False
        self.transient_error = False  # whether the error event raised for may pass
        # The empty chunk the reply opens with, while due (see _reply.DeliveredReply.open).
        self.opening: AIMessageChunk | None = None
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model: str | None = None  # from the first chunk that names it
        self._response_id: str | None = None
        self._system_fingerprint: str | None = None
        self._service_tier: str | None = None
        self._refusal: list[str] = []
        self._tool_calls = False
        # For tool-call fragments without an index: where each id went, and the latest call.
        self._ids: dict[str, int] = {}
        self._last_index = -1
        # The text before "choices" that every usual event of this reply repeats (the id,
        # model, created...), once an event has shown it: see _learn_head.
        self._head: str | None = None
        self._learns = _LEARNS

    def on_event(self, event: ServerSentEvent) -> AIMessageChunk | None:
        """The chunk this event makes, if any; raises on an error event."""
        data = event.data
        if data == "[DONE]":
            self.finished = True
            return None
        try:
            payload = _loads(data)
        except ValueError:
            raise self._malformed(data, "JSON") from None
        if not isinstance(payload, dict):
            raise self._malformed(data, "a JSON object")
        if event.event == "error" or payload.get("error") is not None:
            raise self._error(payload, data)
        # One handler around the whole event instead of a check per field: a field of the
        # wrong shape (a string for the delta, a number for the choices) fails where it is
        # used, and the failure is turned into the tree's error here. The fields that reach a
        # chunk without being used are checked where they are read (_fragments, _rich_chunk).
        try:
            if self._model is None:
                return self._first_chunk_of(payload)
            return self._chunk_of(payload)
        except WRONG_SHAPE as exc:
            raise wrong_shape(self._label, data, exc) from exc

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

        The per-token fast path (``chat_models/_reply.py``): an event whose only choice has a
        delta of nothing but text, or of nothing but a further piece of a begun tool call's
        arguments, with no finish reason, usage or error, is read here, without the calls of
        :meth:`on_event`, and what it makes is what :meth:`_chunk_of` makes. Once such an
        event has shown the fields that every event repeats (:meth:`_learn_head`), an event
        spelt as OpenAI spells it that starts with them has only its token read, where it
        stands (``_usual_token``). Any other event takes :meth:`on_event`.
        """
        texts, fragments, emit = reply.texts, reply.fragments, reply.emit
        message_id = reply.piece_id = self._id
        head = self._head
        produced = False
        # Where the pieces of arguments of the call of pieces_index go (reply.arguments_of),
        # until a chunk goes in through deliver (it may begin another call of that index).
        pieces: list[str] | None = None
        pieces_index: int | None = None
        for name, data in zip(names, datas, strict=True):
            # Parsing raises into the tree (as _http does for on_event); what emit raises, the
            # consumer's, goes on as it is.
            piece: ToolCallChunk | None = None  # a further piece of a begun call's arguments
            if head is not None and data.startswith(head) and name == "message":
                # A head seen before: only the token is read (see _learn_head).
                try:
                    token = _usual_token(data, len(head), self._last_index)
                except Exception as exc:
                    raise wire_failure(self._label, exc) from exc
                if isinstance(token, str):  # the commonest event of all: out at once
                    texts.append(token)
                    emit(text_chunk(token, message_id))
                    produced = True
                    continue
                piece = token
            try:
                fast = None
                if piece is None:
                    try:
                        payload, end = _scan(data, 0)
                    except (StopIteration, ValueError):  # [DONE], or no JSON: on_event's
                        end = -1
                    if (
                        end == len(data)
                        and type(payload) is dict
                        and name == "message"
                        and self._model is not None  # the metadata is read
                        and payload.get("error") is None
                        and not payload.get("usage")
                        and "x_groq" not in payload
                    ):
                        choices = payload.get("choices")
                        if type(choices) is list and choices:
                            choice = choices[0]
                            if (
                                type(choice) is dict
                                and not choice.get("finish_reason")
                                and choice.get("index", 0) == 0
                            ):
                                delta = choice.get("delta")
                                if type(delta) is dict and len(delta) == 1:
                                    text = delta.get("content")
                                    if type(text) is str and text:
                                        texts.append(text)
                                        fast = text_chunk(text, message_id)
                                    else:
                                        piece = self._arguments_piece(delta)
                                    if (
                                        (fast is not None or piece is not None)
                                        and head is None
                                        and self._learns
                                    ):
                                        head = self._learn_head(data)
                if piece is not None:  # (its index is an int: a begun call's)
                    if piece["index"] != pieces_index:
                        pieces_index = piece["index"]
                        pieces = reply.arguments_of(pieces_index)  # type: ignore[arg-type]
                    if pieces is None:
                        fragments.append(piece)
                    else:
                        pieces.append(piece["args"])  # type: ignore[arg-type]
                    fast = fragment_chunk([piece], message_id)
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

    def _learn_head(self, data: str) -> str | None:
        # OpenAI repeats its id, object, created, model, service tier and fingerprint in
        # every event, before "choices", spelt the same each time. Once a usual token's event
        # (parsed whole, and found usual: no error, usage or x_groq in it) shows that text to
        # be whole members of the object, an event that starts with the same text needs only
        # its token read (_usual_token): its head was parsed and found harmless already. Some
        # servers change it every event (a counter): after a few tries the parser stops
        # looking.
        self._learns -= 1
        at = data.find(_CHOICES)
        if at < 0:
            return None
        head = data[:at]
        try:
            _scan(head[:-1] + "}", 0)  # whole members, then the comma before "choices"
        except (StopIteration, ValueError):
            return None  # that '"choices":[' was inside another field (or came first)
        self._head = head
        return head

    def _malformed(self, data: str, what: str) -> StreamProtocolError:
        return StreamProtocolError(
            f"{self._label} sent an event that is not {what}: {data[:200]!r}"
        )

    def _error(self, payload: dict[str, Any], data: str) -> StreamProtocolError:
        self.transient_error = is_transient_error(payload)
        return StreamProtocolError(
            f"{self._label} sent an error in the stream: {error_message(data)}"
        )

    def _chunk_of(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        # The first choice's delta as a chunk; on the way, the usage and the finish reason.
        usage = payload.get("usage")
        if not usage and "x_groq" in payload:
            usage = payload["x_groq"].get("usage")  # Groq's place: {"x_groq": {"usage": {...}}}
        if usage:
            self._usage = usage  # cumulative where servers send it more than once
        choices = payload.get("choices")
        if not choices:
            return None  # Azure's prompt_filter_results, the usage chunk
        choice = choices[0]
        if choice.get("index", 0) != 0:
            choice = next((c for c in choices if c.get("index", 0) == 0), None)
            if choice is None:
                return None  # n > 1: only the first choice makes the message
        finish_reason = choice.get("finish_reason")
        if finish_reason:
            self._finish_reason = expect_str(finish_reason, "finish_reason")
        delta = choice.get("delta")
        if not delta:
            return None
        text = delta.get("content")
        if len(delta) == 1:
            # The usual tokens take shorter paths than _delta_chunk's look at every field:
            # text alone, or a further piece of a tool call's arguments. The tests of
            # test_each_kind_of_delta_makes_the_chunk_it_should keep the paths agreeing.
            if type(text) is str:
                return text_chunk(text, self._id) if text else None
            fragment = self._arguments_piece(delta)
            if fragment is not None:
                return fragment_chunk([fragment], self._id)
        return self._delta_chunk(delta, text)

    def _arguments_piece(self, delta: dict[str, Any]) -> ToolCallChunk | None:
        # {"tool_calls": [{"index": 0, "function": {"arguments": "..."}}]} for a call that
        # has begun: what _fragments makes of it, without its checks for ids and names.
        raw_calls = delta.get("tool_calls")
        if type(raw_calls) is not list or len(raw_calls) != 1:
            return None
        raw = raw_calls[0]
        if type(raw) is not dict or len(raw) != 2:
            return None
        index = raw.get("index")
        if type(index) is not int or not 0 <= index <= self._last_index:
            return None  # (no index, or a call that has not begun: _fragments decides)
        function = raw.get("function")
        if type(function) is not dict or len(function) != 1:
            return None
        arguments = function.get("arguments")
        if type(arguments) is not str:
            return None
        piece = piece_fragment()
        piece["args"] = arguments
        piece["index"] = index
        return piece

    def _delta_chunk(self, delta: dict[str, Any], text: Any) -> AIMessageChunk | None:
        # A delta with more fields than text, though they may be empty (a role, a null
        # reasoning_content): a plain token still, unless one of them has something.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        refusal = delta.get("refusal")
        raw_calls = delta.get("tool_calls")
        if type(text) is str and not (reasoning or refusal or raw_calls):
            return text_chunk(text, self._id) if text else None
        return self._rich_chunk(text, reasoning, refusal, raw_calls)

    def _rich_chunk(
        self, text: Any, reasoning: Any, refusal: Any, raw_calls: Any
    ) -> AIMessageChunk | None:
        # Reasoning, a refusal, tool-call fragments, or text sent in parts.
        if text is not None and not isinstance(text, str):
            text = _text(text) if isinstance(text, list) else str(text)  # a few send parts
        if refusal:
            self._refusal.append(expect_str(refusal, "refusal"))
            text = (text or "") + refusal
        fragments = self._fragments(raw_calls) if raw_calls else None
        content = _content(text, reasoning)
        if content is None:
            if not fragments:
                return None
            content = ""
        return make_chunk(content, id=self._id, tool_call_chunks=fragments)

    def _first_chunk_of(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        # Until an event names the model (Azure's first has empty fields). The one that does
        # opens the reply: with an empty chunk when it carries nothing else (the role-only
        # delta), as langchain-openai streams one; not when a token or tool call comes in it.
        self._read_metadata(payload)
        chunk = self._chunk_of(payload)
        if chunk is None and self._model is not None:
            self.opening = make_chunk(
                "", id=self._id, response_metadata={"model_provider": self._provider}
            )
        return chunk

    def _read_metadata(self, payload: dict[str, Any]) -> None:
        # Read until a chunk names the model: Azure's first chunk has empty fields.
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            return
        self._model = model
        response_id = payload.get("id")
        if isinstance(response_id, str) and response_id:
            self._response_id = response_id
        fingerprint = payload.get("system_fingerprint")
        self._system_fingerprint = fingerprint if isinstance(fingerprint, str) else None
        tier = payload.get("service_tier")
        self._service_tier = tier if isinstance(tier, str) else None

    def _fragments(self, raw_calls: list[dict[str, Any]]) -> list[ToolCallChunk]:
        fragments: list[ToolCallChunk] = []
        for raw in raw_calls:
            function = raw.get("function") or {}
            name = function.get("name") or None
            call_id = raw.get("id") or None
            if name is not None:
                expect_str(name, "a tool call's name")
            if call_id is not None:
                expect_str(call_id, "a tool call's id")
            index = raw.get("index")
            if call_id is not None and name is None and call_id not in self._ids:
                # A fresh id on a fragment without a name is no new call: some servers
                # (LM Studio, Kimi) send a new id with every fragment of one call.
                call_id = None
            if type(index) is not int:  # bool too: True is no index
                index = self._index_for(call_id)
            else:
                self._last_index = max(self._last_index, index)
                if call_id is not None:
                    self._ids[call_id] = index
            arguments = function.get("arguments")
            if arguments is not None and not isinstance(arguments, str):
                arguments = json.dumps(arguments)  # some servers send the object itself
            fragments.append(
                {
                    "name": name,
                    "args": arguments,
                    "id": call_id,
                    "index": index,
                    "type": "tool_call_chunk",
                }
            )
        self._tool_calls = True
        return fragments

    def _index_for(self, call_id: str | None) -> int:
        # No index: a known id keeps its call, a new id opens the next one, no id continues
        # the latest call.
        if call_id is None:
            return max(self._last_index, 0)
        index = self._ids.get(call_id)
        if index is None:
            index = self._ids[call_id] = self._last_index = self._last_index + 1
        return index

    def last_chunk(self) -> AIMessageChunk:
        """The closing chunk: finish reason, model, provider, usage."""
        if not self.finished and self._finish_reason is None:
            raise APIConnectionError(
                f"{self._label}: the stream ended before the reply was complete"
            )
        metadata: dict[str, Any] = {
            "finish_reason": self._finish_reason
            or ("tool_calls" if self._tool_calls else "stop"),
            "model_name": self._model or self._model_name,
            "model_provider": self._provider,
        }
        if self._response_id is not None:
            metadata["id"] = self._response_id
        if self._system_fingerprint is not None:
            metadata["system_fingerprint"] = self._system_fingerprint
        if self._service_tier is not None:
            metadata["service_tier"] = self._service_tier
        if self._refusal:
            metadata["refusal"] = "".join(self._refusal)
        if self._usage:
            metadata["token_usage"] = self._usage  # as the server sent it, as langchain-openai
        try:
            usage = openai_usage(self._usage) if self._usage else None
        except WRONG_SHAPE as exc:
            raise wrong_shape(self._label, repr(self._usage), exc, what="usage") from exc
        return make_chunk(
            "",
            id=self._id,
            chunk_position="last",
            response_metadata=metadata,
            usage_metadata=usage,
        )


def _content(text: str | None, reasoning: Any) -> str | list[Any] | None:
    # A delta's content: its text, after its reasoning as a block when it has some.
    if reasoning and isinstance(reasoning, str):
        content: list[Any] = [{"type": "reasoning", "reasoning": reasoning}]
        if text:
            content.append({"type": "text", "text": text})
        return content
    return text or None


def openai_usage(usage: Mapping[str, Any]) -> UsageMetadata:
    """Chat Completions' ``usage`` as :class:`~rxagent.messages.UsageMetadata`."""
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    total = usage.get("total_tokens")
    result: UsageMetadata = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": int(total) if total is not None else input_tokens + output_tokens,
    }
    prompt_details = usage.get("prompt_tokens_details") or {}
    input_details = {
        name: int(prompt_details[key])
        for key, name in (("audio_tokens", "audio"), ("cached_tokens", "cache_read"))
        if prompt_details.get(key) is not None
    }
    if input_details:
        result["input_token_details"] = input_details
    completion_details = usage.get("completion_tokens_details") or {}
    output_details = {
        name: int(completion_details[key])
        for key, name in (("audio_tokens", "audio"), ("reasoning_tokens", "reasoning"))
        if completion_details.get(key) is not None
    }
    if output_details:
        result["output_token_details"] = output_details
    return result


# -- logprobs, streamed ------------------------------------------------------------------------


class LogprobsStreamParser(OpenAIStreamParser):
    """:class:`OpenAIStreamParser` that also keeps each token's ``logprobs``, for a call that
    asked for them: they arrive beside each token, in events the per-token fast path of
    :meth:`OpenAIStreamParser.on_events` would pass over, so every event goes through
    :meth:`~OpenAIStreamParser.on_event` instead; the whole list goes in the closing chunk's
    ``response_metadata["logprobs"]``, as langchain-openai's merge of its chunks gives it."""

    __slots__ = ("_logprobs", "_refusal_logprobs")

    def __init__(self, message_id: str, *, model_name: str, provider: str, label: str) -> None:
        super().__init__(message_id, model_name=model_name, provider=provider, label=label)
        self._logprobs: list[Any] = []
        self._refusal_logprobs: list[Any] = []

    def on_events(self, events: Sequence[ServerSentEvent], reply: DeliveredReply) -> bool:
        """Every event through :meth:`on_event` (none may skip the logprobs)."""
        return self.on_columns([event[0] for event in events], [event[1] for event in events],
                               reply)

    def on_columns(
        self, names: Sequence[str], datas: Sequence[str], reply: DeliveredReply
    ) -> bool:
        """:meth:`on_events` over the events' names and data."""
        produced = False
        for name, data in zip(names, datas, strict=True):
            try:
                chunk = self.on_event(ServerSentEvent(name, data))
            except RxAgentError:
                raise
            except Exception as exc:
                raise wire_failure(self._label, exc) from exc
            if chunk is not None:
                reply.deliver(chunk)
                produced = True
            elif self.opening is not None:  # the first event, with nothing else in it
                reply.open(self.opening)
                self.opening = None
            if self.finished:
                break
        return produced

    def _chunk_of(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        for choice in payload.get("choices") or ():
            logprobs = choice.get("logprobs") if choice.get("index", 0) == 0 else None
            if isinstance(logprobs, Mapping):
                self._logprobs.extend(logprobs.get("content") or ())
                self._refusal_logprobs.extend(logprobs.get("refusal") or ())
        return super()._chunk_of(payload)

    def last_chunk(self) -> AIMessageChunk:
        last = super().last_chunk()
        logprobs = {
            "content": self._logprobs or None,
            "refusal": self._refusal_logprobs or None,
        }
        return make_chunk(
            "",
            id=last.id,
            chunk_position="last",
            response_metadata={**last.response_metadata, "logprobs": logprobs},
            usage_metadata=last.usage_metadata,
        )
