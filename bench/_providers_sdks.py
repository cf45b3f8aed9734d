"""The official SDKs' rows: ``openai`` and ``anthropic``, streaming one call, sync and async.

OpenAI: ``client.chat.completions.create(..., stream=True)``, iterated. Anthropic:
``client.messages.create(..., stream=True)``, the raw event stream; the SDK's other helper,
``client.messages.stream()``, also keeps a snapshot of the message and re-parses the partial
tool input on every delta, which only costs more, so the cheaper API stands for the SDK. One
client per process, reused, as an application would.
"""

from __future__ import annotations

from typing import Any

import _providers_wire as wire
import anthropic
import openai
from _providers_rows import API_KEY, LOOKUP_SCHEMA, QUESTION, Delivered, Row, sync_and_async

_OPENAI_TOOLS = [{"type": "function", "function": {
    "name": wire.TOOL_NAME, "description": "Look the query up.", "parameters": LOOKUP_SCHEMA}}]
_ANTHROPIC_TOOLS = [{"name": wire.TOOL_NAME, "description": "Look the query up.",
                     "input_schema": LOOKUP_SCHEMA}]
_MESSAGES: Any = [{"role": "user", "content": QUESTION}]


def _openai_take(chunk: Any, out: Delivered) -> None:
    if chunk.choices:
        delta = chunk.choices[0].delta
        if delta.content:
            out.text.append(delta.content)
        if delta.tool_calls:
            piece = delta.tool_calls[0].function.arguments
            if piece:
                out.args.append(piece)


def _anthropic_take(event: Any, out: Delivered) -> None:
    if event.type == "content_block_delta":
        delta = event.delta
        if delta.type == "text_delta":
            out.text.append(delta.text)
        elif delta.type == "input_json_delta" and delta.partial_json:
            out.args.append(delta.partial_json)


def _openai_rows(port: int, kind: str, count: int) -> list[Row]:
    url = wire.base_url(port, wire.OPENAI, kind, count)
    client = openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0)
    aclient = openai.AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0)
    params: dict[str, Any] = {"model": wire.OPENAI_MODEL, "messages": _MESSAGES, "stream": True,
                              "stream_options": {"include_usage": True}}
    if kind == wire.TOOL:
        params["tools"] = _OPENAI_TOOLS

    def sync() -> Delivered:
        out = Delivered()
        for chunk in client.chat.completions.create(**params):
            _openai_take(chunk, out)
        return out

    async def run_async() -> Delivered:
        out = Delivered()
        async for chunk in await aclient.chat.completions.create(**params):
            _openai_take(chunk, out)
        return out

    return sync_and_async(wire.OPENAI, kind, "model", "openai SDK",
                          ("chat.completions.create(stream=True)", "AsyncOpenAI, same"),
                          sync, run_async)


def _anthropic_rows(port: int, kind: str, count: int) -> list[Row]:
    url = wire.base_url(port, wire.ANTHROPIC, kind, count)
    client = anthropic.Anthropic(base_url=url, api_key=API_KEY, max_retries=0)
    aclient = anthropic.AsyncAnthropic(base_url=url, api_key=API_KEY, max_retries=0)
    params: dict[str, Any] = {"model": wire.ANTHROPIC_MODEL, "messages": _MESSAGES,
                              "max_tokens": 64_000, "stream": True}
    if kind == wire.TOOL:
        params["tools"] = _ANTHROPIC_TOOLS

    def sync() -> Delivered:
        out = Delivered()
        for event in client.messages.create(**params):
            _anthropic_take(event, out)
        return out

    async def run_async() -> Delivered:
        out = Delivered()
        async for event in await aclient.messages.create(**params):
            _anthropic_take(event, out)
        return out

    return sync_and_async(wire.ANTHROPIC, kind, "model", "anthropic SDK",
                          ("messages.create(stream=True)", "AsyncAnthropic, same"),
                          sync, run_async)


def rows(port: int, wire_name: str, kind: str, count: int) -> list[Row]:
    if wire_name == wire.OPENAI:
        return _openai_rows(port, kind, count)
    return _anthropic_rows(port, kind, count)
