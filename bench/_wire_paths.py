"""The provider path without the network: a model's ``astream()`` over a reply in its wire format.

The reply is rendered once, as the server would send it (OpenAI's chat-completion chunks, or
Anthropic's message events, as server-sent events), and handed to the model through
``httpx.MockTransport`` in 64 KB pieces, the size a socket read gives. So each token pays for
everything rxagent does with it (reading, decoding the events, parsing the JSON, building the
chunk, keeping the partial reply, delivering it) and nothing the kernel does, which makes the
cost repeat under callgrind (``bench/instructions.py``).

The rows match ``bench/providers.py``'s: each wire format, text and a tool call's arguments, a
model's stream and an agent's (``stream_mode="messages"``), sync and async; and the floor,
httpx with a split on blank lines and ``json.loads`` per event, over the same bodies, so that
a ratio to the floor can be read off the counts too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from _common import Metrics, Runner, check_text

import rxagent
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, HTTPChatModel
from rxagent.messages import AIMessageChunk

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


def _anthropic_event(name: str, data: dict[str, object]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def anthropic_body(tokens: list[str]) -> bytes:
    """A streamed message: message_start, a text block of one delta per token, the end."""
    return _anthropic_reply({"type": "text", "text": ""},
                            [{"type": "text_delta", "text": token} for token in tokens])


def anthropic_tool_body(tokens: list[str]) -> bytes:
    """A streamed tool_use block: its id and name, then one input_json_delta per token."""
    return _anthropic_reply(
        {"type": "tool_use", "id": "toolu_bench", "name": "record", "input": {}},
        [{"type": "input_json_delta", "partial_json": token} for token in tokens],
        stop="tool_use",
    )


def _anthropic_reply(block: dict[str, object], deltas: list[dict[str, object]],
                     stop: str = "end_turn") -> bytes:
    event = _anthropic_event
    parts = [
        event("message_start", {"type": "message_start", "message": {
            "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": block}),
    ]
    parts += [
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": delta})
        for delta in deltas
    ]
    parts += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {"output_tokens": len(deltas)}}),
        event("message_stop", {"type": "message_stop"}),
    ]
    return "".join(parts).encode()


def _client(body: bytes, answer: bytes = b"", marker: bytes = b"") -> httpx.AsyncClient:
    # ``answer`` answers a request holding ``marker`` (a tool's result: an agent's second call).
    def pieces(reply: bytes) -> AsyncIterator[bytes]:
        async def read() -> AsyncIterator[bytes]:
            for start in range(0, len(reply), _PIECE):
                yield reply[start:start + _PIECE]
        return read()

    def handler(request: httpx.Request) -> httpx.Response:
        reply = answer if marker and marker in request.content else body
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=pieces(reply)
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def record(q: str) -> str:
    """Record the query (the tool the tool-call replies call)."""
    return "recorded"


_RENDER = {  # (wire, kind) -> the body of a reply of those tokens
    ("openai", "text"): openai_body,
    ("openai", "tool"): openai_tool_body,
    ("anthropic", "text"): anthropic_body,
    ("anthropic", "tool"): anthropic_tool_body,
}
_RESULT_MARKER = {"openai": b'"tool_call_id"', "anthropic": b'"tool_result"'}


def _model(wire: str, client: httpx.AsyncClient) -> HTTPChatModel:
    if wire == "openai":
        return ChatOpenAI("gpt-bench", api_key="sk-bench", base_url="http://bench/v1",
                          http_client=client, max_retries=0)
    return ChatAnthropic("claude-bench", api_key="sk-bench", base_url="http://bench",
                         http_client=client, max_retries=0)


def wire_row(wire: str, kind: str, level: str, mode: str) -> Callable[[list[str]], Runner]:
    """A workload: ``wire`` ("openai", "anthropic"), ``kind`` ("text", or "tool": a tool call
    whose arguments come one token at a time), ``level`` ("model": the model's stream;
    "agent": ``create_agent(model, [record])``'s ``messages`` mode, whose tool-call reply is
    followed by the tool and a short answer) and ``mode`` ("sync": ``for``; "async":
    ``async for``). Each token's text, or piece of arguments, is checked."""

    def make(tokens: list[str]) -> Runner:
        body = _RENDER[wire, kind](tokens)
        answer = _RENDER[wire, "text"](["done"])

        def piece(chunk: Any) -> str:
            if kind == "text":
                return chunk.content  # type: ignore[no-any-return]
            fragments = chunk.tool_call_chunks
            return fragments[0]["args"] if fragments else ""  # type: ignore[no-any-return]

        def stream(client: httpx.AsyncClient) -> Any:
            model = _model(wire, client)
            if level == "model":
                return model.stream("Hello")
            agent = rxagent.create_agent(model, [record])
            run = agent.stream if mode == "sync" else agent.astream
            return run({"messages": ["Hello"]}, stream_mode="messages")

        def counted(item: Any, totals: list[int]) -> None:
            chunk = item if level == "model" else item[0]
            if isinstance(chunk, AIMessageChunk):
                text = piece(chunk)
                if text:
                    totals[0] += 1
                    totals[1] += len(text)

        def check(totals: list[int]) -> None:
            check_text(f"{wire} {kind} {level} {mode}", totals[0], totals[1], tokens)

        def run_sync() -> Metrics:
            client = _client(body, answer, _RESULT_MARKER[wire])
            totals = [0, 0]
            start = time.perf_counter()
            for item in stream(client):
                counted(item, totals)
            elapsed = time.perf_counter() - start
            check(totals)
            return {"seconds": elapsed}

        async def main() -> Metrics:
            async with _client(body, answer, _RESULT_MARKER[wire]) as client:
                totals = [0, 0]
                start = time.perf_counter()
                async for item in stream(client):
                    counted(item, totals)
                elapsed = time.perf_counter() - start
            check(totals)
            return {"seconds": elapsed}

        return run_sync if mode == "sync" else lambda: asyncio.run(main())

    return make


def floor_row(wire: str, kind: str) -> Callable[[list[str]], Runner]:
    """The floor over the same body: httpx async, a split on blank lines, ``json.loads`` per
    event, the text or the piece of arguments picked out (``bench/_providers_floor.py``'s)."""
    loads = json.loads

    def openai_events(events: list[bytes], out: list[str]) -> None:
        keep = out.append
        for event in events:
            payload = event[6:]  # after "data: "
            if payload == b"[DONE]":
                continue
            choices = loads(payload)["choices"]
            if choices:
                delta = choices[0]["delta"]
                content = delta.get("content")
                if content:
                    keep(content)
                calls = delta.get("tool_calls")
                if calls:
                    piece = calls[0]["function"].get("arguments")
                    if piece:
                        keep(piece)

    def anthropic_events(events: list[bytes], out: list[str]) -> None:
        keep = out.append
        for event in events:
            data = loads(event[event.index(b"data: ") + 6:])
            if data["type"] == "content_block_delta":
                delta = data["delta"]
                kind = delta["type"]
                if kind == "text_delta":
                    keep(delta["text"])
                elif kind == "input_json_delta":
                    keep(delta["partial_json"])

    parse = openai_events if wire == "openai" else anthropic_events

    def make(tokens: list[str]) -> Runner:
        body = _RENDER[wire, kind](tokens)

        async def main() -> Metrics:
            async with _client(body) as client:
                out: list[str] = []
                rest = b""
                start = time.perf_counter()
                async with client.stream("POST", "http://bench/", json={}) as response:
                    async for data in response.aiter_bytes():
                        events = (rest + data).split(b"\n\n")
                        rest = events.pop()
                        parse(events, out)
                elapsed = time.perf_counter() - start
            check_text(f"floor {wire} {kind}", len(out), sum(map(len, out)), tokens)
            return {"seconds": elapsed}

        return lambda: asyncio.run(main())

    return make


# The first three workloads, under the names they were first measured by.
openai_async = wire_row("openai", "text", "model", "async")
anthropic_async = wire_row("anthropic", "text", "model", "async")
openai_tool_async = wire_row("openai", "tool", "model", "async")
