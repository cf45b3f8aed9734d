"""The per-token fast path (``on_events``) against the general one (``on_event``, ``deliver``).

Both wire parsers read the usual token (text, or a piece of a tool call's arguments) of a
whole read in one loop, and keep the partial reply as pieces merged once per read
(``rxagent/chat_models/_reply.py``). For every kind of event, however the events are cut into
reads, that must deliver the same chunks (down to the fields counted as set), end at the same
place with the same error, and keep the same partial reply as reading each event through
``on_event`` and :meth:`DeliveredReply.deliver`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rxagent import StreamProtocolError
from rxagent.chat_models import ChatOpenAI
from rxagent.chat_models import _anthropic as anthropic_module
from rxagent.chat_models import _openai as openai_module
from rxagent.chat_models._anthropic import AnthropicStreamParser
from rxagent.chat_models._openai import OpenAIStreamParser
from rxagent.chat_models._reply import DeliveredReply, events_reader
from rxagent.chat_models._sse import ServerSentEvent, SSEDecoder
from rxagent.messages import AIMessageChunk

from .transcripts import (
    ANTHROPIC_TOOL_USE,
    MESSAGE_STOP,
    OPENAI_TEXT,
    PING,
    USAGE,
    anthropic_events,
    block_delta,
    block_start,
    block_stop,
    json_delta,
    message_delta,
    message_start,
    openai_call,
    openai_chunk,
    sse,
    text_delta,
)

Parser = OpenAIStreamParser | AnthropicStreamParser


def _openai() -> OpenAIStreamParser:
    return OpenAIStreamParser("msg", model_name="m", provider="openai", label="OpenAI")


def _anthropic() -> AnthropicStreamParser:
    return AnthropicStreamParser("msg", model_name="m", provider="anthropic", label="Anthropic")


_TOKEN = openai_chunk({"content": "a"})
_PIECE = openai_chunk({"tool_calls": [openai_call(0, args='y": 1')]})

OPENAI_STREAMS = {
    "text": OPENAI_TEXT,
    "tool calls": sse(
        openai_chunk({"role": "assistant", "content": None}),
        openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="f", args="")]}),
        openai_chunk({"tool_calls": [openai_call(0, args='{"x')]}),
        _PIECE,
        openai_chunk({"tool_calls": [openai_call(1, id="call_2", name="g", args="{")]}),
        openai_chunk({"tool_calls": [openai_call(1, args="}")]}),
        openai_chunk({"tool_calls": [openai_call(0, args="}")]}),  # back to the first call
        openai_chunk({"tool_calls": [openai_call(None, args="more")]}),  # no index
        openai_chunk({"tool_calls": [openai_call(5, args="{}")]}),  # never begun
        openai_chunk({"tool_calls": [openai_call(2, id="call_3", name="h")]}),  # no arguments
        openai_chunk({"tool_calls": [openai_call(2, args="{")]}),
        openai_chunk({"tool_calls": [openai_call(2, args="}")]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": {"a": 1}}}]}),
        openai_chunk({"tool_calls": [{"index": True, "function": {"arguments": "t"}}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "x", "n": 1}}]}),
        openai_chunk(finish="tool_calls"),
        openai_chunk(usage=USAGE, choices=False),
    ),
    "text, reasoning, refusal and calls mixed": sse(
        openai_chunk({"role": "assistant", "content": ""}),
        _TOKEN,
        openai_chunk({"reasoning_content": "think"}),
        _TOKEN,
        openai_chunk({"reasoning": "more", "content": "b"}),
        openai_chunk({"content": ""}),
        openai_chunk({"content": None}),
        openai_chunk({"content": ["c", {"type": "text", "text": "d"}]}),
        openai_chunk({"content": "e", "role": None}),
        openai_chunk({"refusal": "no"}),
        openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="f", args="{")]}),
        _TOKEN,
        _PIECE,
        openai_chunk({"content": 7}),
        openai_chunk({"content": "f"}, finish="stop"),
        {**_TOKEN, "x_groq": {"usage": USAGE}},
        {**_TOKEN, "usage": {**USAGE, "total_tokens": 500}},  # the last usage counts
        {**_TOKEN, "choices": [{"index": 1, "delta": {"content": "second"}}, _TOKEN["choices"][0]]},
        {**_TOKEN, "choices": [{"index": 1, "delta": {"content": "only the second"}}]},
        {**_TOKEN, "choices": [{"delta": {"content": "no index"}}]},
        {**_TOKEN, "choices": [{"index": 0.0, "delta": {"content": "a float"}}]},
        openai_chunk({"content": "g"}) | {"model": 5},
        " " + json.dumps(_TOKEN),  # whitespace around the JSON
        json.dumps(_TOKEN) + " ",
    ),
    "groq's usage": sse(
        openai_chunk({"role": "assistant", "content": ""}),
        _TOKEN,
        {**_TOKEN, "x_groq": {"usage": USAGE}},
        openai_chunk(finish="stop"),
    ),
    "an error after tokens": sse(
        openai_chunk({"role": "assistant", "content": ""}),
        _TOKEN,
        _PIECE,
        {"error": {"type": "server_error", "message": "boom"}},
        _TOKEN,
    ),
    "an error riding on a token": sse(
        openai_chunk({"role": "assistant", "content": ""}),
        _TOKEN,
        {**_TOKEN, "error": {"type": "server_error", "message": "boom"}},
    ),
    "an error event after tokens": sse(
        openai_chunk({"role": "assistant", "content": ""}), _TOKEN, done=False
    )
    + "event: error\n"
    + sse(_TOKEN, done=False),
    "a delta of the wrong shape": sse(
        openai_chunk({"role": "assistant", "content": ""}), _TOKEN, {**_TOKEN, "choices": 7}
    ),
    "a delta that is a string": sse(
        openai_chunk({"role": "assistant", "content": ""}),
        _TOKEN,
        {**_TOKEN, "choices": [{"index": 0, "delta": "text"}]},
    ),
    "not JSON": sse(openai_chunk({"role": "assistant", "content": ""}), _TOKEN, "{nope"),
    "events after [DONE]": sse(_TOKEN, done=True) + sse(_TOKEN, done=False),
    "a token before the model is named": sse(
        openai_chunk({"content": "early"}) | {"model": ""}, _TOKEN
    ),
}

def _compact(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


# Events spelt as OpenAI writes them (no spaces, its key order): after the first usual token
# the parser reads only the token of an event that starts with the same head (the fields
# before "choices"). The strings after _HEAD are near misses of that spelling.
_HEAD = _compact(openai_chunk()).split('"choices"')[0]
_CHOICE = '"choices":[{"index":0,"delta":'
_USUAL = ',"logprobs":null,"finish_reason":null}]'
_BEGUN = openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="f", args="")]})


def _spelt(*events: dict[str, Any] | str, done: bool = True) -> str:
    return sse(*(event if isinstance(event, str) else _compact(event) for event in events),
               done=done)


def _token(delta: str, tail: str = ',"usage":null}', choice: str = _USUAL) -> str:
    return _HEAD + _CHOICE + delta + choice + tail


OPENAI_SPELT = {
    "events spelt as the API writes them, and near misses": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),  # the head is learned here
        _BEGUN,
        _token('{"content":"é \\"quoted\\" \\\\ \\n and \\u2028"}'),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"x"}}]}'),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":""}}]}'),
        _token('{"content":"padded"}', ',"usage":null,"obfuscation":"aB3"}'),
        _token('{"content":"padded, no usage"}', ',"obfuscation":"aB3"}'),
        _token('{"content":"padded, then usage"}', ',"obfuscation":"aB3","usage":null}'),
        _token('{"content":"padded twice"}', ',"usage":null,"obfuscation":"a","usage":null,'
                                             '"obfuscation":"b"}'),
        _token('{"content":"no usage"}', "}"),
        _token('{"content":"padding of the wrong shape"}', ',"obfuscation":5}'),
        _token('{"content":"more after the padding"}', ',"obfuscation":"a","x":1}'),
        _token('{"content":"usage"}', ',"usage":{"prompt_tokens":1,"completion_tokens":2,'
                                      '"total_tokens":3}}'),
        _token('{"content":"groq"}', ',"x_groq":{"usage":{"prompt_tokens":1,'
                                     '"completion_tokens":2,"total_tokens":3}}}'),
        _token('{"content":"another key"}', ',"usage":null,"x":1}'),
        _token('{"content":"trailing space"}', ',"usage":null} '),
        _token('{"content":""}'),
        _token('{"content":null}'),
        _token('{"content":5}'),
        _token('{"content": "a space"}'),
        _token('{"content":"a role","role":"assistant"}'),
        _token('{"content":"finished"}', choice=',"logprobs":null,"finish_reason":"stop"}]'),
        _token('{"content":"logprobs"}', choice=',"logprobs":{"content":[]},'
                                                '"finish_reason":null}]'),
        _token('{"content":"two choices"}', choice=_USUAL[:-1] + ',{"index":1,"delta":{}}]'),
        _token('{"tool_calls":[{"index":"0","function":{"arguments":"a"}}]}'),
        _token('{"tool_calls":[{"index":0.0,"function":{"arguments":"b"}}]}'),
        _token('{"tool_calls":[{"index":true,"function":{"arguments":"c"}}]}'),
        _token('{"tool_calls":[{"index":-1,"function":{"arguments":"d"}}]}'),
        _token('{"tool_calls":[{"index":3,"function":{"arguments":"not begun"}}]}'),
        openai_chunk({"tool_calls": [openai_call(None, args="no index: the latest call")]}),
        _token('{"tool_calls":[{"index":0,"function":{"argumentz":"j"}}]}'),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":5}}]}'),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"e","name":"g"}}]}'),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"f"},"id":"call_9"}]}'),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"g"}},'
               '{"index":0,"function":{"arguments":"h"}}]}'),
        _token('{"tool_calls":[{"index":0 ,"function":{"arguments":"i"}}]}'),
        _HEAD.replace('"created":1756425601', '"created":1756425602') + _CHOICE
        + '{"content":"another head"}' + _USUAL + ',"usage":null}',
        openai_chunk(finish="tool_calls"),
    ),
    # A further piece goes straight to its call's pieces (DeliveredReply.arguments_of): to
    # the latest call of its index, even one begun in the same read.
    "a call index used again": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _BEGUN,
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\""}}]}'),
        openai_chunk({"tool_calls": [openai_call(0, args=": 1}")]}),
        openai_chunk({"tool_calls": [openai_call(0, id="call_2", name="g", args="")]}),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"b\\""}}]}'),
        openai_chunk({"tool_calls": [openai_call(0, args=": 2}")]}),
        openai_chunk(finish="tool_calls"),
    ),
    "a finish reason as long as null, after text": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _token('{"content":"a reason"}', choice=',"logprobs":null,"finish_reason":"ok"}]'),
    ),
    "a finish reason as long as null, after a piece of a call": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _BEGUN,
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"k"}}]}',
               choice=',"logprobs":null,"finish_reason":"ok"}]'),
    ),
    "usage after the padding": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _token('{"content":"usage"}', ',"obfuscation":"a","usage":{"prompt_tokens":1,'
                                      '"completion_tokens":2,"total_tokens":3}}'),
        openai_chunk(finish="stop"),
    ),
    "an error riding on an event spelt as the API writes it": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _token('{"content":"boom"}', ',"usage":null,"error":{"type":"server_error",'
                                     '"message":"boom"}}'),
    ),
    "a token cut short after its head": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _token('{"content":"unterminated}'),
    ),
    "a token's choice not closed": _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _HEAD + '"choices":[{"index":0,"delta":{"content":"Hi"}}',
    ),
    "choices first": _spelt(
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"model":"m"}',
        '{"choices":[{"index":0,"delta":{"content":"a"},"logprobs":null,'
        '"finish_reason":null}],"model":"m"}',
        '{"choices":[{"index":0,"delta":{"content":"b"},"logprobs":null,'
        '"finish_reason":null}]}',
        '{"choices":[{"index":0,"delta":{"content":"c"},"logprobs":null,'
        '"finish_reason":null}],"model":"m"}',
    ),
    "choices inside a field before the choices": _spelt(
        '{"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
        '{"model":"m","a":{"x":1,"choices":[]},"choices":[{"index":0,"delta":{"content":"a"},'
        '"logprobs":null,"finish_reason":null}]}',
        '{"model":"m","a":{"x":1,"choices":[{"index":0,"delta":{"content":"b"},'
        '"logprobs":null,"finish_reason":null}],"obfuscation":"z"}',  # not closed: not JSON
    ),
    "an error event spelt as the API writes a token": (
        _spelt(openai_chunk({"role": "assistant", "content": ""}),
               openai_chunk({"content": "Hi"}), done=False)
        + "event: error\n" + _spelt(_token('{"content":"boom"}'))
    ),
}
OPENAI_STREAMS.update(OPENAI_SPELT)

_WORDS = text_delta(0, "a")
_ARGS = json_delta(1, '"x": 1')


def _as_the_api_writes(*events: dict[str, Any] | str) -> str:
    # Deltas spelt as Anthropic's API does (no spaces, its key order), which the parser reads
    # without parsing the whole event; strings go as they are (near misses of that spelling).
    return "".join(
        "event: content_block_delta\ndata: "
        + (event if isinstance(event, str) else json.dumps(event, separators=(",", ":")))
        + "\n\n"
        for event in events
    )


_DELTA = '{"type":"content_block_delta","index":'

ANTHROPIC_STREAMS = {
    "tool use": ANTHROPIC_TOOL_USE,
    "thinking, text and calls mixed": anthropic_events(
        message_start(),
        block_start(0, {"type": "thinking", "thinking": ""}),
        block_delta(0, {"type": "thinking_delta", "thinking": "hm"}),
        block_delta(0, {"type": "signature_delta", "signature": "sig"}),
        block_stop(0),
        block_start(1, {"type": "text", "text": "Hi"}),
        _WORDS | {"index": 1},
        text_delta(1, ""),
        block_delta(1, {"type": "text_delta"}),
        block_delta(1, {"type": "citations_delta", "citation": {}}),
        block_stop(1),
        PING,
        PING | {"index": 1, "delta": {"type": "text_delta", "text": "not a token"}},
        block_start(2, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        json_delta(2, ""),
        json_delta(2, '{"x":'),
        _WORDS | {"index": 3},
        json_delta(2, " 1}"),
        block_stop(2),
        block_start(3, {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {"a": 1}}),
        json_delta(3, "{}"),
        message_delta("tool_use", 40),
        MESSAGE_STOP,
        _WORDS,  # after the end
    ),
    "an error after tokens": anthropic_events(
        message_start(), block_start(0, {"type": "text", "text": ""}), _WORDS, _WORDS,
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
        _WORDS,
    ),
    "an index of the wrong shape": anthropic_events(
        message_start(), block_start(1, {"type": "tool_use", "id": "t", "name": "f"}), _ARGS,
        _ARGS | {"index": "1"},
    ),
    "text of the wrong shape": anthropic_events(
        message_start(), _WORDS, block_delta(0, {"type": "text_delta", "text": 5}),
    ),
    "a delta of the wrong shape": anthropic_events(
        message_start(), _WORDS, {"type": "content_block_delta", "index": 0, "delta": "x"},
    ),
    "a piece of the wrong shape": anthropic_events(
        message_start(), _ARGS, block_delta(1, {"type": "input_json_delta", "partial_json": 5}),
    ),
    "deltas spelt as the API writes them, and near misses": (
        anthropic_events(
            message_start(),
            block_start(0, {"type": "text", "text": ""}),
            block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        )
        + _as_the_api_writes(
            text_delta(0, "Hi"),
            text_delta(0, 'é "quoted" \\ \n and \u2028'),
            text_delta(0, ""),
            json_delta(1, '{"x":'),
            json_delta(1, ""),
            json_delta(1, ' "\\u00e9"}'),
            _DELTA + '"1","delta":{"type":"input_json_delta","partial_json":"a"}}',
            _DELTA + '1.0,"delta":{"type":"input_json_delta","partial_json":"b"}}',
            _DELTA + ' 1,"delta":{"type":"input_json_delta","partial_json":"c"}}',
            _DELTA + 'null,"delta":{"type":"text_delta","text":"d"}}',
            _DELTA + '0,"delta":{"type":"text_delta","text":5}}',
            _DELTA + '0,"delta":{"type":"text_delta","text":"e","more":1}}',
            _DELTA + '0,"delta":{"type":"text_delta","text":"f"},"more":1}',
            _DELTA + '0,"delta":{"type":"text_delta","text": "g"}}',
            _DELTA + '0,"delta":{"type":"citations_delta","citation":{}}}',
            _DELTA + '0,"delta":{"type":"text_delta","text":"h"}} ',
        )
        + anthropic_events(message_delta("tool_use", 9), MESSAGE_STOP)
    ),
    "a delta spelt as the API writes it, cut short": (
        anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""}))
        + _as_the_api_writes(text_delta(0, "Hi"), _DELTA + '0,"delta":{"type":"text_delta",'
                             '"text":"unterminated}}')
    ),
    "a delta spelt as the API writes it, its object not closed": (
        anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""}))
        + _as_the_api_writes(text_delta(0, "Hi"), _DELTA + '0,"delta":{"type":"text_delta",'
                             '"text":"open"}')
    ),
    # A further piece goes straight to its call's pieces (DeliveredReply.arguments_of): to
    # the latest call of its index, even one begun in the same read, and in order with
    # pieces kept before their call had begun.
    "a block index used again, and pieces before their call": anthropic_events(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        json_delta(0, '{"a"'),
        json_delta(0, ": 1}"),
        block_start(0, {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {}}),
        json_delta(0, '{"b"'),
        json_delta(1, "a call not begun"),
        json_delta(1, ", and more"),
        json_delta(0, ": 2}"),
        block_start(1, {"type": "tool_use", "id": "toolu_3", "name": "h", "input": {}}),
        json_delta(1, "{}"),
        json_delta(1, "[]"),
        message_delta("tool_use", 9),
        MESSAGE_STOP,
    ),
    "an event type only in the event line": (
        anthropic_events(message_start(), _WORDS)
        + "event: content_block_delta\n"
        + 'data: {"index": 0, "delta": {"type": "text_delta", "text": "named"}}\n\n'
        + anthropic_events(_WORDS, message_delta("end_turn", 3), MESSAGE_STOP)
    ),
}

CASES = [(_openai, stream) for stream in OPENAI_STREAMS.values()] + [
    (_anthropic, stream) for stream in ANTHROPIC_STREAMS.values()
]
IDS = [f"openai: {name}" for name in OPENAI_STREAMS] + [
    f"anthropic: {name}" for name in ANTHROPIC_STREAMS
]


class _EventAtATime:
    """A parser seen without its ``on_events``: the general path."""

    def __init__(self, parser: Parser) -> None:
        self._parser = parser
        self._label = parser._label
        self.on_event = parser.on_event

    @property
    def finished(self) -> bool:
        return self._parser.finished

    @property
    def opening(self) -> Any:
        return self._parser.opening

    @opening.setter
    def opening(self, chunk: Any) -> None:
        self._parser.opening = chunk


def _read(
    parser: Any, events: list[ServerSentEvent], cuts: list[int]
) -> tuple[list[Any], list[Any], str | None, Any]:
    # Feed the events in reads cut at ``cuts``, as _http._read_events does: the chunks that
    # went out, the partial reply after each read, the error, and the closing chunk (or why
    # there is none).
    chunks: list[AIMessageChunk] = []
    reply = DeliveredReply(chunks.append)
    read = events_reader(parser, parser._label)
    partials: list[Any] = []
    error = None
    bounds = [0, *cuts, len(events)]
    for start, stop in itertools.pairwise(bounds):
        try:
            read(events[start:stop], reply)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        reply.settle()
        partials.append(_fields(reply.snapshot()) if reply.started else None)
        if error is not None or parser.finished:
            break
    try:
        last = _fields(parser._parser.last_chunk() if isinstance(parser, _EventAtATime)
                       else parser.last_chunk())
    except Exception as exc:
        last = f"{type(exc).__name__}: {exc}"
    return [_fields(chunk) for chunk in chunks], partials, error, last


def _fields(chunk: AIMessageChunk) -> Any:
    # (the repr: the order of the keys, as LangChain's own fragments have them, too)
    return (chunk, chunk.model_fields_set, chunk.model_dump(), repr(chunk))


def _cuttings(count: int) -> list[list[int]]:
    return [[], list(range(1, count)), [count // 2], [1, count - 1]]


@pytest.mark.parametrize(("make", "stream"), CASES, ids=IDS)
def test_the_fast_path_delivers_and_keeps_what_the_general_one_does(
    make: Callable[[], Parser], stream: str
) -> None:
    events = SSEDecoder().feed(stream.encode())
    for cuts in _cuttings(len(events)):
        fast = _read(make(), events, cuts)
        general = _read(_EventAtATime(make()), events, cuts)
        assert fast == general, cuts


def test_the_streams_take_the_fast_path() -> None:
    # Guard against a fast path that is never taken: the usual tokens must not reach on_event.
    for cls, stream, tokens in [
        (OpenAIStreamParser, OPENAI_TEXT, 3),
        (AnthropicStreamParser, ANTHROPIC_TOOL_USE, 4),
    ]:

        class Counting(cls):  # type: ignore[valid-type, misc]
            seen: list[Any]

            def on_event(self, event: Any) -> Any:
                self.seen.append(event)
                return super().on_event(event)

        parser = Counting("msg", model_name="m", provider="p", label="P")
        parser.seen = seen = []
        events = SSEDecoder().feed(stream.encode())
        chunks: list[AIMessageChunk] = []
        reply = DeliveredReply(chunks.append)
        assert parser.on_events(events, reply)
        assert len(seen) == len(events) - tokens
        # The empty opening chunk goes out, but is no part of the partial reply.
        opening, *rest = chunks
        assert opening.content == "" and not opening.tool_call_chunks
        assert reply.snapshot() == _delivered_one_by_one(rest)


def test_a_begun_calls_pieces_are_not_kept_as_fragments() -> None:
    # Guard against the short way for a further piece of a begun call's arguments never being
    # taken: it goes to the call's own pieces at once, and no fragment dict is kept until the
    # read ends (a read's worth of them set off the collector on a sync stream).
    pieces = [json_delta(0, f"{i},") for i in range(40)]
    stream = anthropic_events(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        *pieces, message_delta("tool_use", 9), MESSAGE_STOP)
    kept: list[int] = []
    reply = DeliveredReply(lambda chunk: kept.append(len(reply.fragments)))
    parser = _anthropic()
    assert parser.on_events(SSEDecoder().feed(stream.encode()), reply)
    assert kept == [0] * (2 + len(pieces))  # the opening, the call's start, its pieces
    calls = reply.snapshot().tool_call_chunks
    assert [call["args"] for call in calls] == ["".join(f"{i}," for i in range(40))]


def _whole_parses(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    # The texts the parser's module gives json's scanner from their start: whole events.
    whole: list[str] = []
    scan = module._scan

    def counting(text: str, start: int) -> Any:
        if start == 0:
            whole.append(text)
        return scan(text, start)

    monkeypatch.setattr(module, "_scan", counting)
    return whole


def test_deltas_spelt_as_the_api_writes_them_are_not_parsed_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Guard against the reading of the API's own spelling never being taken: no delta so
    # spelt goes to json's scanner whole.
    whole = _whole_parses(monkeypatch, anthropic_module)
    stream = anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""}))
    stream += _as_the_api_writes(text_delta(0, "Hi"), json_delta(0, '{"x": 1}'))
    chunks: list[AIMessageChunk] = []
    assert _anthropic().on_events(SSEDecoder().feed(stream.encode()),
                                         DeliveredReply(chunks.append))
    assert [chunk.content for chunk in chunks] == ["", "Hi", ""]
    assert chunks[2].tool_call_chunks[0]["args"] == '{"x": 1}'
    assert not [text for text in whole if text.startswith(_DELTA)]


def test_openai_events_spelt_as_the_api_writes_them_are_not_parsed_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Guard against the head never being learned or used: after the first usual token, no
    # usual token with the same head goes to json's scanner whole.
    whole = _whole_parses(monkeypatch, openai_module)
    stream = _spelt(
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        _BEGUN,
        _token('{"content":" there"}'),
        _token('{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}', "}"),
        _token('{"content":"!"}', ',"usage":null,"obfuscation":"xY"}'),
        _token('{"content":"?"}', ',"obfuscation":"xY","usage":null}'),
    )
    chunks: list[AIMessageChunk] = []
    parser, reply = _openai(), DeliveredReply(chunks.append)
    for event in SSEDecoder().feed(stream.encode()):  # a read each: the head is kept
        parser.on_events([event], reply)
    assert [chunk.content for chunk in chunks] == ["", "Hi", "", " there", "", "!", "?"]
    assert chunks[4].tool_call_chunks[0]["args"] == "{}"
    parsed_tokens = [text for text in whole if text.startswith(_HEAD) and _CHOICE in text]
    assert len(parsed_tokens) == 3  # the opening, the first token, the call's start


def _delivered_one_by_one(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    reply = DeliveredReply(lambda chunk: None)
    for chunk in chunks:
        reply.deliver(chunk)
    return reply.snapshot()


@pytest.mark.parametrize(
    "fragments",
    [
        [{"index": 0, "id": "a", "name": "f", "args": None}, {"index": 0, "args": "{"},
         {"index": 0, "args": "}"}],
        [{"index": 0, "id": "a", "name": None, "args": "{"},
         {"index": 0, "name": "f", "args": "}"}],
        [{"index": 0, "id": "a", "args": "{"}, {"index": 0, "id": "b", "name": "g", "args": "}"}],
        [{"index": 0, "id": "a", "args": "{"}, {"index": 0, "id": "b", "args": "}"},
         {"index": 0, "id": "b", "args": "!"}],
        [{"index": 0, "id": "a", "args": "{"}, {"index": 0, "id": "b", "args": "{"},
         {"index": 0, "args": "}"}],
        [{"index": 0, "id": "a", "args": "{"}, {"index": 0, "args": None}, {"index": None,
                                                                          "args": "x"}],
        [{"index": None, "id": "a", "args": "{"}, {"index": None, "id": "a", "args": "}"}],
        [{"index": 1, "args": "{"}, {"index": 1, "args": "}"}, {"index": 0, "args": "{}"}],
    ],
)
def test_pieces_merge_as_their_chunks_do(fragments: list[dict[str, Any]]) -> None:
    # ChunkMerger.add_pieces (with _Calls.add_all's short way for a further piece of a call)
    # against adding each fragment's chunk.
    full = [{"name": None, "args": None, "id": None, "index": None, "type": "tool_call_chunk",
             **fragment} for fragment in fragments]
    one_by_one = DeliveredReply(lambda chunk: None)
    for fragment in full:
        one_by_one.deliver(AIMessageChunk(id="m", tool_call_chunks=[dict(fragment)]))
    pieces = DeliveredReply(lambda chunk: None)
    pieces.piece_id = "m"
    pieces.fragments.extend(dict(fragment) for fragment in full)  # type: ignore[misc]
    assert _fields(pieces.snapshot()) == _fields(one_by_one.snapshot())


def test_a_calls_pieces_are_where_its_further_pieces_go() -> None:
    # DeliveredReply.arguments_of: appending to it is adding the piece's chunk, across
    # snapshots (which join the pieces) too; no list where the chunk must be added instead.
    def call(index: int, call_id: str | None = None, name: str | None = None,
             args: str | None = "") -> AIMessageChunk:
        return AIMessageChunk(id="m", tool_call_chunks=[
            {"name": name, "args": args, "id": call_id, "index": index}])

    reply, one_by_one = DeliveredReply(lambda chunk: None), DeliveredReply(lambda chunk: None)
    for each in (reply, one_by_one):
        each.deliver(call(0, "a", "f", "{"))
        each.deliver(call(1, "b", "g", None))
    pieces = reply.arguments_of(0)
    assert pieces is not None and reply.arguments_of(1) is None  # (no arguments yet)
    for piece in ['"x"', ": ", "1}"]:
        pieces.append(piece)
        one_by_one.deliver(call(0, args=piece))
        assert _fields(reply.snapshot()) == _fields(one_by_one.snapshot())
    assert reply.arguments_of(2) is None
    no_id = DeliveredReply(lambda chunk: None)
    no_id.deliver(AIMessageChunk(tool_call_chunks=[
        {"name": "f", "args": "{", "id": "a", "index": 0}]))
    assert no_id.arguments_of(0) is None  # (the piece's chunk would give the reply its id)


class _Refused(Exception):
    """What a consumer raises from its on_next."""


def _refuse(chunk: AIMessageChunk) -> None:
    raise _Refused


@pytest.mark.parametrize("general", [False, True], ids=["fast", "general"])
@pytest.mark.parametrize(("make", "stream"), [(_openai, OPENAI_TEXT),
                                              (_anthropic, ANTHROPIC_TOOL_USE)])
def test_what_the_consumer_raises_goes_on_and_what_parsing_raises_is_a_stream_error(
    general: bool, make: Callable[[], Parser], stream: str
) -> None:
    events = SSEDecoder().feed(stream.encode())
    parser = make()
    reader = events_reader(_EventAtATime(parser) if general else parser, parser._label)
    with pytest.raises(_Refused):
        reader(events, DeliveredReply(_refuse))

    class Broken(type(parser)):  # type: ignore[misc]
        def on_event(self, event: Any) -> Any:
            raise LookupError("lost")

    broken = Broken("msg", model_name="m", provider="p", label="P")
    reader = events_reader(_EventAtATime(broken) if general else broken, "P")
    with pytest.raises(StreamProtocolError, match=r"P stream could not be read.*LookupError"):
        reader(events, DeliveredReply(lambda chunk: None))


@pytest.mark.parametrize(("make", "stream"), [
    (_openai, OPENAI_SPELT["events spelt as the API writes them, and near misses"]),
    (_anthropic, ANTHROPIC_STREAMS["deltas spelt as the API writes them, and near misses"]),
    (_anthropic, ANTHROPIC_STREAMS["a block index used again, and pieces before their call"]),
], ids=["openai", "anthropic", "anthropic: calls"])
def test_what_the_consumer_raises_on_any_chunk_goes_on(
    make: Callable[[], Parser], stream: str
) -> None:
    # Whichever way a chunk was read (a short way, or parsed whole), what the consumer raises
    # from it is the consumer's, not a stream error.
    events = SSEDecoder().feed(stream.encode())
    chunks: list[AIMessageChunk] = []
    with contextlib.suppress(StreamProtocolError):  # (a near miss of the wrong shape, last)
        make().on_events(events, DeliveredReply(chunks.append))
    assert len(chunks) > 5
    for refused in range(len(chunks)):
        taken = iter(range(refused))

        def consume(chunk: AIMessageChunk, taken: Any = taken) -> None:
            if next(taken, None) is None:
                raise _Refused

        with pytest.raises(_Refused):
            make().on_events(events, DeliveredReply(consume))


def _one_read_client(tokens: int) -> httpx.AsyncClient:
    # The whole reply in one piece of the body, as one large socket read gives it.
    body = sse(openai_chunk({"role": "assistant", "content": ""}),
               *[openai_chunk({"content": f"{i:04d}"}) for i in range(tokens)],
               openai_chunk(finish="stop")).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def test_a_large_read_is_handed_over_in_parts_sync() -> None:
    # A read's chunks go to the consumer a few dozen at a time, not all at once: a read's
    # worth alive at once outlives the collector's young generations (_http._HAND_OVER).
    model = ChatOpenAI("m", api_key="k", http_client=_one_read_client(400))
    stream = iter(model.stream("hi"))
    most = 0
    texts = []
    for chunk in stream:
        most = max(most, len(stream._sink.buffer) + 1)  # type: ignore[attr-defined]
        texts.append(chunk.content)
    assert "".join(texts) == "".join(f"{i:04d}" for i in range(400))
    assert most <= 2 * 32  # (_HAND_OVER, and one more slice the loop runs before it stops)


@pytest.mark.anyio
async def test_a_large_read_is_handed_over_in_parts_async() -> None:
    model = ChatOpenAI("m", api_key="k", http_client=_one_read_client(400))
    stream = aiter(model.astream("hi"))
    most = 0
    texts = []
    async for chunk in stream:
        most = max(most, len(stream._sink.buffer) + 1)  # type: ignore[attr-defined]
        texts.append(chunk.content)
    assert "".join(texts) == "".join(f"{i:04d}" for i in range(400))
    assert most <= 2 * 32  # (_HAND_OVER, and one more slice the loop runs before it stops)


# -- an agent's model step reads the reply the model kept -------------------------------------


def _replies_client(*bodies: str) -> httpx.AsyncClient:
    # Each request gets the next body.
    left = [body.encode() for body in bodies]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=left.pop(0)
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _double(x: int) -> str:
    """Double x."""
    return str(2 * x)


_CALLING = sse(
    openai_chunk({"role": "assistant", "content": ""}),
    openai_chunk({"content": "Let me "}),
    openai_chunk({"content": "see."}),
    openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="_double", args="")]}),
    openai_chunk({"tool_calls": [openai_call(0, args='{"x"')]}),
    openai_chunk({"tool_calls": [openai_call(0, args=": 21}")]}),
    openai_chunk(finish="tool_calls"),
)
_ANSWER = sse(openai_chunk({"content": "It is "}), openai_chunk({"content": "42."}),
              openai_chunk(finish="stop"))


@pytest.mark.anyio
async def test_an_agent_step_has_the_reply_its_chunks_add_up_to() -> None:
    # The model step takes the reply the HTTP model kept as it delivered it (no second
    # accumulator, BaseChatModel._reply_prepared); it must be what the streamed chunks add
    # up to, tool call and all, and the loop must act on it.
    import rxagent

    model = ChatOpenAI("m", api_key="k", http_client=_replies_client(_CALLING, _ANSWER))
    agent = rxagent.create_agent(model, [_double])
    streamed: dict[str, AIMessageChunk] = {}
    replies = []
    async for mode, data in agent.astream({"messages": ["hi"]}, stream_mode=["messages",
                                                                             "updates"]):
        if mode == "messages" and isinstance(data[0], AIMessageChunk):
            chunk = data[0]
            assert chunk.id is not None
            streamed[chunk.id] = streamed[chunk.id] + chunk if chunk.id in streamed else chunk
        elif mode == "updates" and "model" in data:
            replies += data["model"]["messages"]
    assert [reply.text for reply in replies] == ["Let me see.", "It is 42."]
    assert replies[0].tool_calls == [
        {"name": "_double", "args": {"x": 21}, "id": "call_1", "type": "tool_call"}
    ]
    for reply in replies:
        whole = streamed[reply.id].to_message()
        assert reply.model_dump() == whole.model_dump()


def test_an_agent_step_that_fails_keeps_what_was_delivered() -> None:
    import rxagent
    from rxagent import ModelCallError

    broken = sse(openai_chunk({"content": "Half "}), openai_chunk({"content": "an"}),
                 '{"error": {"message": "boom", "type": "server_error"}}', done=False)
    model = ChatOpenAI("m", api_key="k", max_retries=0, http_client=_replies_client(broken))
    agent = rxagent.create_agent(model, [_double])
    with pytest.raises(ModelCallError) as caught:
        agent.invoke({"messages": ["hi"]})
    assert caught.value.partial is not None and caught.value.partial.text == "Half an"
