"""The provider path without the network: a model's ``astream()`` over a reply in its wire format.

The reply is rendered once, as the server would send it (OpenAI's chat-completion chunks, or
Anthropic's message events, as server-sent events), and handed to the model through
``httpx.MockTransport`` in 64 KB pieces, the size a socket read gives. So each token pays for
everything rxagent does with it (reading, decoding the events, parsing the JSON, building the
chunk, keeping the partial reply, delivering it) and nothing the kernel does, which makes the
cost repeat under callgrind (``bench/instructions.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
from _common import Metrics, Runner, check_text

from rxagent.chat_models import ChatAnthropic, ChatOpenAI, HTTPChatModel

_PIECE = 65_536


def _openai_event(delta: dict[str, object], finish: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n"


def openai_body(tokens: list[str]) -> bytes:
    """A streamed chat completion: a role chunk, one chunk per token, the finish, usage."""

    parts = [_openai_event({"role": "assistant", "content": ""})]
    parts += [_openai_event({"content": token}) for token in tokens]
    parts.append(_openai_event({}, "stop"))
    usage = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1,
             "model": "gpt-bench", "choices": [],
             "usage": {"prompt_tokens": 9, "completion_tokens": len(tokens),
                       "total_tokens": 9 + len(tokens)}}
    parts.append(f"data: {json.dumps(usage, separators=(',', ':'))}\n\ndata: [DONE]\n\n")
    return "".join(parts).encode()


def openai_tool_body(tokens: list[str]) -> bytes:
    """A streamed tool call: its id and name, then one arguments fragment per token."""

    opening = {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_bench", "type": "function",
         "function": {"name": "record", "arguments": ""}}]}
    parts = [_openai_event(opening)]
    parts += [_openai_event({"tool_calls": [{"index": 0, "function": {"arguments": token}}]})
              for token in tokens]
    parts.append(_openai_event({}, "tool_calls"))
    return ("".join(parts) + "data: [DONE]\n\n").encode()


def anthropic_body(tokens: list[str]) -> bytes:
    """A streamed message: message_start, a text block of one delta per token, the end."""

    def event(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    parts = [
        event("message_start", {"type": "message_start", "message": {
            "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
    ]
    parts += [
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": token}})
        for token in tokens
    ]
    parts += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": len(tokens)}}),
        event("message_stop", {"type": "message_stop"}),
    ]
    return "".join(parts).encode()


def _client(body: bytes) -> httpx.AsyncClient:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), _PIECE):
            yield body[start:start + _PIECE]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=pieces()
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _model_async(
    tokens: list[str], render: Callable[[list[str]], bytes],
    make: Callable[[httpx.AsyncClient], HTTPChatModel],
) -> Runner:
    body = render(tokens)

    async def main() -> Metrics:
        async with _client(body) as client:
            model = make(client)
            delivered = chars = 0
            start = time.perf_counter()
            async for chunk in model.astream("Hello"):
                # The text, or a tool call's arguments: what each token carries.
                fragments = chunk.tool_call_chunks
                text = fragments[0]["args"] if fragments else chunk.content
                if text:
                    delivered += 1
                    chars += len(text)
            elapsed = time.perf_counter() - start
        check_text(type(model).__name__, delivered, chars, tokens)
        return {"seconds": elapsed}

    return lambda: asyncio.run(main())


def openai_async(tokens: list[str]) -> Runner:
    """``ChatOpenAI.astream()`` over a rendered reply."""
    return _model_async(tokens, openai_body, lambda client: ChatOpenAI(
        "gpt-bench", api_key="sk-bench", base_url="http://bench/v1", http_client=client))


def anthropic_async(tokens: list[str]) -> Runner:
    """``ChatAnthropic.astream()`` over a rendered reply."""
    return _model_async(tokens, anthropic_body, lambda client: ChatAnthropic(
        "claude-bench", api_key="sk-bench", base_url="http://bench", http_client=client))


def openai_tool_async(tokens: list[str]) -> Runner:
    """``ChatOpenAI.astream()`` over a tool call whose arguments come one token at a time."""
    return _model_async(tokens, openai_tool_body, lambda client: ChatOpenAI(
        "gpt-bench", api_key="sk-bench", base_url="http://bench/v1", http_client=client))
