"""LangChain's rows: ``ChatOpenAI`` / ``ChatAnthropic`` alone, and in LangChain's
``create_agent`` (a LangGraph graph) streaming ``stream_mode="messages"``.

``langchain_openai`` and ``langchain_anthropic`` stand on the official SDKs, so their rows
show what LangChain adds on top of the SDK rows. Text is read with ``chunk.text``, which is
the text whatever shape ``content`` takes (Anthropic's chunks carry content blocks when
tools are bound).
"""

from __future__ import annotations

from typing import Any

import _providers_wire as wire
from _providers_rows import API_KEY, QUESTION, Delivered, Row, lookup, sync_and_async
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI

LIBRARY = "langchain"


def _model(port: int, wire_name: str, kind: str, count: int) -> Any:
    url = wire.base_url(port, wire_name, kind, count)
    if wire_name == wire.OPENAI:
        return ChatOpenAI(model=wire.OPENAI_MODEL, base_url=url, api_key=API_KEY,
                          max_retries=0, stream_usage=True)
    return ChatAnthropic(model=wire.ANTHROPIC_MODEL, base_url=url, api_key=API_KEY,
                         max_retries=0, max_tokens=64_000)


def _take(chunk: Any, out: Delivered) -> None:
    text = chunk.text
    if text:
        out.text.append(text)
    for call in chunk.tool_call_chunks:
        if call["args"]:
            out.args.append(call["args"])


def rows(port: int, wire_name: str, kind: str, count: int) -> list[Row]:
    model = _model(port, wire_name, kind, count)
    bound = model.bind_tools([lookup]) if kind == wire.TOOL else model
    agent = create_agent(model, [lookup])
    question = [("user", QUESTION)]
    run_input = {"messages": [("user", QUESTION)]}

    def model_sync() -> Delivered:
        out = Delivered()
        for chunk in bound.stream(question):
            _take(chunk, out)
        return out

    async def model_async() -> Delivered:
        out = Delivered()
        async for chunk in bound.astream(question):
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
