"""The bytes of a reply in both wire formats, written for the soak; no I/O.

Every text reply is made of numbered tokens (``t000017 ``), so that a consumer can tell from
the text alone which tokens it got: the text it saw must be the first few tokens, in order,
none twice. The builders here write the head of a reply (before any token), one event per
token, the tail (finish reason, usage, end marker), a tool call, and the broken pieces the
faults need (an error event, a chunk that is not JSON, a chunk of the wrong shape, a 10 MB
line, invalid UTF-8). The events carry only the fields rxagent's parsers read, so that a
100,000-token reply stays a few megabytes.
"""

from __future__ import annotations

import json
from typing import Any

OPENAI = "openai"
ANTHROPIC = "anthropic"
WIRES = (OPENAI, ANTHROPIC)

TOOL_NAME = "lookup"


def token(n: int) -> str:
    """The text of token number ``n``."""
    return f"t{n:06d} "


def tokens(count: int) -> list[str]:
    """The texts of a reply's ``count`` tokens."""
    return [token(n) for n in range(count)]


def _data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _event(payload: dict[str, Any]) -> bytes:
    return (f"event: {payload['type']}\n").encode() + _data(payload)


# -- OpenAI chat completions ---------------------------------------------------------------------


def _oa_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-soak", "object": "chat.completion.chunk", "model": "soak",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def _oa_token(text: str) -> bytes:
    # Written by hand: this runs 100,000 times for a long reply.
    return (b'data: {"id":"chatcmpl-soak","choices":[{"index":0,"delta":{"content":"'
            + text.encode() + b'"},"finish_reason":null}]}\n\n')


def _oa_tail(finish: str) -> bytes:
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    return (_data(_oa_chunk({}, finish))
            + _data({"id": "chatcmpl-soak", "choices": [], "usage": usage})
            + b"data: [DONE]\n\n")


# -- Anthropic messages ----------------------------------------------------------------------------


def _an_start() -> bytes:
    return _event({"type": "message_start", "message": {
        "id": "msg_soak", "type": "message", "role": "assistant", "content": [],
        "model": "soak", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1}}})


def _an_token(text: str) -> bytes:
    return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"' + text.encode() + b'"}}\n\n')


def _an_tail(stop: str, block: int = 0) -> bytes:
    return (_event({"type": "content_block_stop", "index": block})
            + _event({"type": "message_delta",
                      "delta": {"stop_reason": stop, "stop_sequence": None},
                      "usage": {"output_tokens": 5}})
            + _event({"type": "message_stop"}))


# -- what the faults and the server use ----------------------------------------------------------


def head(wire: str) -> bytes:
    """The start of a text reply, before its first token."""
    if wire == OPENAI:
        return _data(_oa_chunk({"role": "assistant", "content": ""}))
    return _an_start() + _event({"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}})


def token_event(wire: str, text: str) -> bytes:
    """One token of a text reply."""
    return _oa_token(text) if wire == OPENAI else _an_token(text)


def tail(wire: str) -> bytes:
    """The end of a text reply: finish reason, usage, end marker."""
    return _oa_tail("stop") if wire == OPENAI else _an_tail("end_turn")


def padded_token(wire: str, text: str, padding: bytes) -> bytes:
    """A token event with a field the parsers ignore, holding ``padding`` (a 10 MB string,
    invalid UTF-8...) as it is."""
    if wire == OPENAI:
        return (b'data: {"id":"chatcmpl-soak","x_pad":"' + padding + b'","choices":[{"index":0,'
                b'"delta":{"content":"' + text.encode() + b'"},"finish_reason":null}]}\n\n')
    return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"x_pad":"' + padding + b'","delta":{"type":"text_delta","text":"'
            + text.encode() + b'"}}\n\n')


def error_event(wire: str, kind: str = "") -> bytes:
    """An error sent inside the stream after HTTP 200: the server is overloaded."""
    if wire == OPENAI:
        return _data({"error": {"message": "soak: overloaded", "type": kind or "server_error",
                                "param": None, "code": None}})
    return _event({"type": "error",
                   "error": {"type": kind or "overloaded_error", "message": "soak: overloaded"}})


def error_body(wire: str, kind: str) -> bytes:
    """The JSON body of an HTTP error status."""
    if wire == OPENAI:
        return json.dumps({"error": {"message": f"soak: {kind}", "type": kind}}).encode()
    return json.dumps({"type": "error", "error": {"type": kind, "message": f"soak: {kind}"}}
                      ).encode()


def not_json(wire: str) -> bytes:
    """A chunk whose data is not JSON."""
    if wire == OPENAI:
        return b'data: {"choices": [{"delta": \n\n'
    return b'event: content_block_delta\ndata: {"type": "content_block_delta", oops\n\n'


def wrong_shape(wire: str) -> bytes:
    """A chunk that is valid JSON of the wrong shape."""
    if wire == OPENAI:
        return b'data: {"choices": ["oops"]}\n\n'
    return b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,' \
           b'"delta":"oops"}\n\n'


def tool_call(wire: str, *, scrambled: bool) -> bytes:
    """A whole reply that calls the ``lookup`` tool once; ``scrambled`` sends its fragments
    with repeated and out-of-order indices (two calls, index 1 before index 0, a call's start
    sent twice)."""
    if wire == OPENAI:
        def call(index: int, **fields: Any) -> bytes:
            item: dict[str, Any] = {"index": index, "function": {}}
            if "id" in fields:
                item.update(id=fields["id"], type="function")
                item["function"]["name"] = TOOL_NAME
            item["function"]["arguments"] = fields.get("args", "")
            return _data(_oa_chunk({"tool_calls": [item]}))

        body = _data(_oa_chunk({"role": "assistant", "content": None}))
        if scrambled:
            body += (call(1, id="call_b") + call(0, id="call_a") + call(1, args='{"q": ')
                     + call(0, args='{"q": ') + call(0, id="call_a") + call(0, args='"a"}')
                     + call(1, args='"b"}'))
        else:
            body += call(0, id="call_a") + call(0, args='{"q": ') + call(0, args='"a"}')
        return body + _oa_tail("tool_calls")

    def start(index: int, ident: str) -> bytes:
        return _event({"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": ident, "name": TOOL_NAME, "input": {}}})

    def part(index: int, text: str) -> bytes:
        return _event({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": text}})

    body = _an_start()
    if scrambled:
        body += (start(1, "toolu_b") + part(0, '{"q": ') + start(0, "toolu_a") + part(1, '{"q": ')
                 + start(0, "toolu_a") + part(0, '"a"}') + part(1, '"b"}')
                 + _event({"type": "content_block_stop", "index": 1}))
    else:
        body += start(0, "toolu_a") + part(0, '{"q": ') + part(0, '"a"}')
    return body + _an_tail("tool_use")


def path(wire: str) -> str:
    """The endpoint a wire's model POSTs to."""
    return "/v1/chat/completions" if wire == OPENAI else "/v1/messages"
