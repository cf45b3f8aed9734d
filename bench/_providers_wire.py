"""The replies of ``bench/providers.py``, pre-rendered in both wire formats; no I/O.

A reply is text (``N`` text tokens) or a tool call (one call to ``lookup`` whose arguments
arrive in ``N`` pieces). The events carry every field the real APIs send (ids, ``created``,
``logprobs``, ``usage`` placeholders...), as compact JSON, so that each library parses what it
would parse in production; an SDK that validates a field it needs finds it.

The server picks a reply from the request's path, ``/<kind>/<n>/v1/...``: clients are pointed
at a base URL carrying the prefix (``http://host:port/text/20000/v1`` for OpenAI's wire,
``http://host:port/text/20000`` for Anthropic's), which every library accepts, where a custom
header would not reach the wire the same way in each. A request that carries a tool's result
(an agent's second model call) gets the short final answer instead.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

OPENAI = "openai"
ANTHROPIC = "anthropic"
WIRES = (OPENAI, ANTHROPIC)
TEXT = "text"
TOOL = "tool"
KINDS = (TEXT, TOOL)

TOOL_NAME = "lookup"
FINAL_ANSWER = "done"
OPENAI_MODEL = "gpt-5-nano"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"


def tokens(count: int) -> list[str]:
    """``count`` text tokens of four characters, a typical token's length."""
    return [f"{i % 10_000:04d}" for i in range(count)]


def argument_pieces(count: int) -> list[str]:
    """The ``count`` pieces of the tool call's arguments: ``{"q":"<tokens>"}`` cut at every
    token, the braces riding on the first and the last piece."""
    pieces = tokens(count)
    pieces[0] = '{"q":"' + pieces[0]
    pieces[-1] += '"}'
    return pieces


@dataclass(frozen=True)
class Expected:
    """What a library must deliver for a reply: the text, and the tool call's arguments."""

    text: str
    args: str


def expected(kind: str, count: int, *, agent: bool = False) -> Expected:
    """What a model call (or, with ``agent``, a whole agent run) must deliver."""
    if kind == TEXT:
        return Expected("".join(tokens(count)), "")
    # Through an agent, the tool runs and the model's second reply is the final answer.
    return Expected(FINAL_ANSWER if agent else "", "".join(argument_pieces(count)))


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# -- OpenAI chat completions ---------------------------------------------------------------------


def _oa_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return b"data: " + _json({
        "id": "chatcmpl-CbenchXk3Lq9Tz1", "object": "chat.completion.chunk",
        "created": 1764892800, "model": OPENAI_MODEL + "-2025-08-07",
        "service_tier": "default", "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }) + b"\n\n"


def _oa_tail(finish: str) -> bytes:
    usage = {"id": "chatcmpl-CbenchXk3Lq9Tz1", "object": "chat.completion.chunk",
             "created": 1764892800, "model": OPENAI_MODEL + "-2025-08-07",
             "service_tier": "default", "system_fingerprint": None, "choices": [],
             "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32}}
    return _oa_chunk({}, finish) + b"data: " + _json(usage) + b"\n\ndata: [DONE]\n\n"


def _openai_text(texts: list[str]) -> bytes:
    head = _oa_chunk({"role": "assistant", "content": "", "refusal": None})
    return head + b"".join(_oa_chunk({"content": t}) for t in texts) + _oa_tail("stop")


def _openai_tool(pieces: list[str]) -> bytes:
    head = _oa_chunk({"role": "assistant", "content": None, "refusal": None, "tool_calls": [
        {"index": 0, "id": "call_bench01", "type": "function",
         "function": {"name": TOOL_NAME, "arguments": ""}}]})
    body = b"".join(_oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
                    for p in pieces)
    return head + body + _oa_tail("tool_calls")


# -- Anthropic messages ----------------------------------------------------------------------------


def _an_event(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + _json(payload) + b"\n\n"


def _an_reply(block: dict[str, Any], deltas: list[dict[str, Any]], stop: str) -> bytes:
    start = _an_event({"type": "message_start", "message": {
        "id": "msg_01BenchXk3Lq9Tz1", "type": "message", "role": "assistant",
        "model": ANTHROPIC_MODEL, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 1}}})
    return (start
            + _an_event({"type": "content_block_start", "index": 0, "content_block": block})
            + _an_event({"type": "ping"})
            + b"".join(_an_event({"type": "content_block_delta", "index": 0, "delta": d})
                       for d in deltas)
            + _an_event({"type": "content_block_stop", "index": 0})
            + _an_event({"type": "message_delta",
                         "delta": {"stop_reason": stop, "stop_sequence": None},
                         "usage": {"output_tokens": 20}})
            + _an_event({"type": "message_stop"}))


def _anthropic_text(texts: list[str]) -> bytes:
    return _an_reply({"type": "text", "text": ""},
                     [{"type": "text_delta", "text": t} for t in texts], "end_turn")


def _anthropic_tool(pieces: list[str]) -> bytes:
    block = {"type": "tool_use", "id": "toolu_01Bench", "name": TOOL_NAME, "input": {}}
    return _an_reply(block, [{"type": "input_json_delta", "partial_json": p} for p in pieces],
                     "tool_use")


# -- what the server sends -------------------------------------------------------------------------


@functools.cache
def body(wire: str, kind: str, count: int) -> bytes:
    """The whole SSE body of a reply (cached: built once per server process)."""
    if kind == TEXT:
        return (_openai_text if wire == OPENAI else _anthropic_text)(tokens(count))
    return (_openai_tool if wire == OPENAI else _anthropic_tool)(argument_pieces(count))


@functools.cache
def final_answer(wire: str) -> bytes:
    """The reply to an agent's second call, after the tool ran."""
    return (_openai_text if wire == OPENAI else _anthropic_text)([FINAL_ANSWER])


def reply_for(path: str, request: bytes) -> bytes | None:
    """The body answering a POST to ``path`` with ``request``; ``None`` for an unknown path."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    # ["text", "20000", "v1", "chat", "completions"] or ["tool", "500", "v1", "messages"]
    if len(parts) < 4 or parts[0] not in KINDS or not parts[1].isdigit():
        return None
    endpoint = "/".join(parts[2:])
    if endpoint == "v1/chat/completions":
        wire, result_marker = OPENAI, b'"tool_call_id"'
    elif endpoint == "v1/messages":
        wire, result_marker = ANTHROPIC, b'"tool_result"'
    else:
        return None
    if result_marker in request:
        return final_answer(wire)
    return body(wire, parts[0], int(parts[1]))


def base_url(port: int, wire: str, kind: str, count: int) -> str:
    """The base URL a library is given, as it expects it for ``wire``."""
    url = f"http://127.0.0.1:{port}/{kind}/{count}"
    return url + "/v1" if wire == OPENAI else url
