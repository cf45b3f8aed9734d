"""rxagent's rows: ``ChatOpenAI`` / ``ChatAnthropic`` with ``base_url=``, alone and in an agent.

Model level: ``model.stream(...)`` iterated with ``for`` (sync) and ``model.astream(...)`` with
``async for``. Agent level: ``create_agent(model, [lookup]).stream(..., stream_mode="messages")``
and ``astream``. Each model keeps its pooled client (one per event loop) across runs, as an
application's model would.
"""

from __future__ import annotations

from typing import Any

import _providers_wire as wire
from _providers_rows import API_KEY, QUESTION, Delivered, Row, lookup, sync_and_async

import rxagent
from rxagent.chat_models import ChatAnthropic, ChatOpenAI
from rxagent.messages import AIMessageChunk

LIBRARY = "rxagent"


def _model(port: int, wire_name: str, kind: str, count: int) -> Any:
    url = wire.base_url(port, wire_name, kind, count)
    if wire_name == wire.OPENAI:
        return ChatOpenAI(wire.OPENAI_MODEL, base_url=url, api_key=API_KEY, max_retries=0)
    return ChatAnthropic(wire.ANTHROPIC_MODEL, base_url=url, api_key=API_KEY, max_retries=0)


def _take(chunk: Any, out: Delivered) -> None:
    text = chunk.content
    if text:
        out.text.append(text)  # a str: anything else fails the check, as it should
    for call in chunk.tool_call_chunks:
        if call["args"]:
            out.args.append(call["args"])


def rows(port: int, wire_name: str, kind: str, count: int) -> list[Row]:
    model = _model(port, wire_name, kind, count)
    tools = [lookup] if kind == wire.TOOL else None
    agent = rxagent.create_agent(model, [lookup])
    question = [QUESTION]
    run_input = {"messages": [QUESTION]}

    def model_sync() -> Delivered:
        out = Delivered()
        for chunk in model.stream(question, tools=tools):
            _take(chunk, out)
        return out

    async def model_async() -> Delivered:
        out = Delivered()
        async for chunk in model.astream(question, tools=tools):
            _take(chunk, out)
        return out

    def agent_sync() -> Delivered:
        out = Delivered()
        for chunk, _metadata in agent.stream(run_input, stream_mode="messages"):
            if isinstance(chunk, AIMessageChunk):
                _take(chunk, out)
        return out

    async def agent_async() -> Delivered:
        out = Delivered()
        async for chunk, _metadata in agent.astream(run_input, stream_mode="messages"):
            if isinstance(chunk, AIMessageChunk):
                _take(chunk, out)
        return out

    return [
        *sync_and_async(wire_name, kind, "model", LIBRARY, ("model.stream", "model.astream"),
                        model_sync, model_async),
        *sync_and_async(wire_name, kind, "agent", LIBRARY,
                        ("create_agent.stream(messages)", "create_agent.astream(messages)"),
                        agent_sync, agent_async),
    ]
