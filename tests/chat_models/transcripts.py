"""Event streams as the providers send them, written from their public API references.

Builders keep the quirk tests short; ``OPENAI_TEXT`` and ``ANTHROPIC_TOOL_USE`` are written out
in full, byte for byte, the way a server sends them.
"""

from __future__ import annotations

import json
from typing import Any

from rxagent.messages import AIMessageChunk, ChunkAccumulator

OPENAI_MODEL = "gpt-5-nano-2025-08-07"
OPENAI_ID = "chatcmpl-C9tljDFVki1e1haCyikBptAuXuHYG"

# The seed's final answer, as OpenAI streams it: a role-only first chunk, content deltas, a
# finish chunk, the usage chunk with empty choices, [DONE].
OPENAI_TEXT = (
    'data: {"id":"chatcmpl-C9tljDFVki1e1haCyikBptAuXuHYG","object":"chat.completion.chunk",'
    '"created":1756425601,"model":"gpt-5-nano-2025-08-07","service_tier":"default",'
    '"system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"",'
    '"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-C9tljDFVki1e1haCyikBptAuXuHYG","object":"chat.completion.chunk",'
    '"created":1756425601,"model":"gpt-5-nano-2025-08-07","service_tier":"default",'
    '"system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"It\'s"},'
    '"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-C9tljDFVki1e1haCyikBptAuXuHYG","object":"chat.completion.chunk",'
    '"created":1756425601,"model":"gpt-5-nano-2025-08-07","service_tier":"default",'
    '"system_fingerprint":null,"choices":[{"index":0,"delta":{"content":" always sunny"},'
    '"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-C9tljDFVki1e1haCyikBptAuXuHYG","object":"chat.completion.chunk",'
    '"created":1756425601,"model":"gpt-5-nano-2025-08-07","service_tier":"default",'
    '"system_fingerprint":null,"choices":[{"index":0,"delta":{"content":" in San Francisco! ☀️"},'
    '"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-C9tljDFVki1e1haCyikBptAuXuHYG","object":"chat.completion.chunk",'
    '"created":1756425601,"model":"gpt-5-nano-2025-08-07","service_tier":"default",'
    '"system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,'
    '"finish_reason":"stop"}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-C9tljDFVki1e1haCyikBptAuXuHYG","object":"chat.completion.chunk",'
    '"created":1756425601,"model":"gpt-5-nano-2025-08-07","service_tier":"default",'
    '"system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":168,'
    '"completion_tokens":764,"total_tokens":932,"prompt_tokens_details":{"cached_tokens":0,'
    '"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":704,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n'
    "data: [DONE]\n\n"
)
OPENAI_TEXT_ANSWER = "It's always sunny in San Francisco! ☀️"


def openai_chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``choices=False`` makes the usage chunk's empty list."""
    return {
        "id": OPENAI_ID,
        "object": "chat.completion.chunk",
        "created": 1756425601,
        "model": OPENAI_MODEL,
        "system_fingerprint": "fp_1",
        "choices": [
            {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
        ]
        if choices
        else [],
        "usage": usage,
    }


def openai_call(
    index: int | None, *, id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    """A ``delta.tool_calls`` item; ``index=None`` leaves the index out."""
    call: dict[str, Any] = {"function": {}}
    if index is not None:
        call["index"] = index
    if id is not None:
        call["id"] = id
        call["type"] = "function"
    if name is not None:
        call["function"]["name"] = name
    if args is not None:
        call["function"]["arguments"] = args
    return call


USAGE = {"prompt_tokens": 132, "completion_tokens": 280, "total_tokens": 412}


def sse(*events: dict[str, Any] | str, done: bool = True, end: str = "\n") -> str:
    """``data:`` events (dicts as JSON, strings as they are), then ``[DONE]``."""
    lines = [
        f"data: {event if isinstance(event, str) else json.dumps(event)}{end}{end}"
        for event in events
    ]
    if done:
        lines.append(f"data: [DONE]{end}{end}")
    return "".join(lines)


def anthropic_events(*events: dict[str, Any]) -> str:
    """Named events, the ``event:`` line matching the payload's ``type``."""
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"


def message_start(input_tokens: int = 25, **usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": ANTHROPIC_MODEL,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
        },
    }


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def text_delta(index: int, text: str) -> dict[str, Any]:
    return block_delta(index, {"type": "text_delta", "text": text})


def json_delta(index: int, partial: str) -> dict[str, Any]:
    return block_delta(index, {"type": "input_json_delta", "partial_json": partial})


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, output_tokens: int, **usage: int) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens, **usage},
    }


MESSAGE_STOP = {"type": "message_stop"}
PING = {"type": "ping"}

# The seed's first model turn, as Claude streams it: a little text, then one tool_use block
# whose input arrives as JSON fragments, pings in between.
ANTHROPIC_TOOL_USE = (
    "event: message_start\n"
    'data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U",'
    '"type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",'
    '"stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],'
    '"stop_reason":null}}\n\n'
    "event: content_block_start\n"
    'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
    "\n\n"
    "event: ping\n"
    'data: {"type": "ping"}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    '"text":"Let me check"}}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    '"text":" the weather."}}\n\n'
    "event: content_block_stop\n"
    'data: {"type":"content_block_stop","index":0}\n\n'
    "event: content_block_start\n"
    'data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use",'
    '"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    '"partial_json":""}}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    '"partial_json":"{\\"city\\": \\"San"}}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    '"partial_json":" Francisco\\"}"}}\n\n'
    "event: content_block_stop\n"
    'data: {"type":"content_block_stop","index":1}\n\n'
    "event: message_delta\n"
    'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
    '"usage":{"output_tokens":89}}\n\n'
    "event: message_stop\n"
    'data: {"type":"message_stop"}\n\n'
)


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    accumulator = ChunkAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.snapshot()
