"""PydanticAI's side, through its own test model, ``pydantic_ai.models.function.FunctionModel``.

PydanticAI has no ``stream_mode``; the closest APIs are used and named in ``API``:

- ``messages`` and time to first token: ``run_stream`` (async) / ``run_stream_sync`` (sync) with
  ``stream_text(delta=True, debounce_by=None)``. ``debounce_by=None`` matters: its default
  (0.1 s) would merge tokens into groups and hide the per-token cost;
- ``updates``: ``agent.iter()``, iterating the graph's nodes (one per model call or tool round),
  which is async only; the model is then called without streaming (``FunctionModel``'s
  ``function``), as LangChain's is when no ``messages`` consumer is attached;
- ``custom``: no equivalent (PydanticAI has no writer for tools), so n/a.

The model's ``stream_function`` is an async generator that yields one string per token without
suspending (as an in-memory model does); the concurrency workload's suspends once per token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

from _common import (
    FINAL_ANSWER,
    QUESTION,
    TOOL_NAME,
    Metrics,
    Runner,
    check_events,
    check_text,
    round_metrics,
)
from pydantic_ai import Agent, ModelRequestNode, UsageLimits
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

NAME = "pydantic-ai"
VERSION = f"pydantic-ai-slim {version('pydantic-ai-slim')}"
API = {
    "messages-sync": "run_stream_sync() + stream_text(delta=True, debounce_by=None)",
    "messages-async": "run_stream() + stream_text(delta=True, debounce_by=None)",
    "updates-async": "iter(): async for node in run (non-streamed model calls)",
    "ttft-sync": "run_stream_sync() + stream_text(delta=True, debounce_by=None)",
    "ttft-async": "run_stream() + stream_text(delta=True, debounce_by=None)",
    "concurrency": "run_stream() + stream_text(delta=True, debounce_by=None) x N, asyncio.gather",
}
NOT_AVAILABLE = {
    "updates-sync": "no sync node iterator",
    "custom-sync": "no custom stream / writer",
    "custom-async": "no custom stream / writer",
}


def _text_agent(tokens: list[str], *, suspend: bool = False) -> Agent[None, str]:
    async def reply(messages: list[Any], info: AgentInfo) -> AsyncIterator[str]:
        for token in tokens:
            if suspend:
                await asyncio.sleep(0)
            yield token

    return Agent(FunctionModel(stream_function=reply), name="bench")


# -- messages ----------------------------------------------------------------------------------


def messages_sync(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    def run() -> Metrics:
        delivered = chars = 0
        start = time.perf_counter()
        with agent.run_stream_sync(QUESTION) as result:
            for text in result.stream_text(delta=True, debounce_by=None):
                if text:
                    delivered += 1
                    chars += len(text)
        elapsed = time.perf_counter() - start
        check_text(NAME, delivered, chars, tokens)
        return {"seconds": elapsed}

    return run


def messages_async(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    async def main() -> Metrics:
        delivered = chars = 0
        start = time.perf_counter()
        async with agent.run_stream(QUESTION) as result:
            async for text in result.stream_text(delta=True, debounce_by=None):
                if text:
                    delivered += 1
                    chars += len(text)
        elapsed = time.perf_counter() - start
        check_text(NAME, delivered, chars, tokens)
        return {"seconds": elapsed}

    return lambda: asyncio.run(main())


# -- updates: sequential tool rounds -----------------------------------------------------------


def ping(i: int) -> str:
    """Answer with the round number."""
    return str(i)


def _rounds_done(messages: list[Any]) -> int:
    last = messages[-1]
    if isinstance(last, ModelRequest):
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                return int(str(part.content)) + 1
    return 0


def updates_async(rounds: int) -> Runner:
    def reply(messages: list[Any], info: AgentInfo) -> ModelResponse:
        done = _rounds_done(messages)
        if done < rounds:
            call = ToolCallPart(TOOL_NAME, {"i": done}, tool_call_id=f"call_{done}")
            return ModelResponse(parts=[call])
        return ModelResponse(parts=[TextPart(FINAL_ANSWER)])

    async def reply_async(messages: list[Any], info: AgentInfo) -> ModelResponse:
        return reply(messages, info)

    agent = Agent(FunctionModel(reply_async), tools=[ping], name="bench")
    limits = UsageLimits(request_limit=None)

    async def main() -> Metrics:
        stamps: list[float] = []
        model_nodes = 0
        start = time.perf_counter()
        async with agent.iter(QUESTION, usage_limits=limits) as run:
            async for node in run:
                # Nodes are yielded before they run: a model request node after the first one
                # means a tool round has just finished.
                if isinstance(node, ModelRequestNode):
                    model_nodes += 1
                    if model_nodes > 1:
                        stamps.append(time.perf_counter())
            output = run.result.output if run.result is not None else None
        check_events(f"{NAME} tool rounds", len(stamps), rounds)
        if output != FINAL_ANSWER:
            raise AssertionError(f"{NAME}: the run did not end with the final answer: {output!r}")
        return round_metrics(stamps, start, rounds)

    return lambda: asyncio.run(main())


# -- time to first token -----------------------------------------------------------------------


def ttft_sync(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    def run() -> Metrics:
        first = None
        start = time.perf_counter()
        with agent.run_stream_sync(QUESTION) as result:
            for text in result.stream_text(delta=True, debounce_by=None):
                if text:
                    first = time.perf_counter() - start
                    break
        if first is None:
            raise AssertionError(f"{NAME}: no text token arrived")
        return {"seconds": first}

    return run


def ttft_async(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    async def main() -> Metrics:
        first = None
        start = time.perf_counter()
        async with agent.run_stream(QUESTION) as result:
            async for text in result.stream_text(delta=True, debounce_by=None):
                if text:
                    first = time.perf_counter() - start
                    break
        if first is None:
            raise AssertionError(f"{NAME}: no text token arrived")
        return {"seconds": first}

    return lambda: asyncio.run(main())


# -- concurrency -------------------------------------------------------------------------------


def concurrent_run(tokens: list[str]) -> Any:
    """One run of the concurrency workload; see ``_with_rxagent.concurrent_run``."""
    agent = _text_agent(tokens, suspend=True)

    async def one() -> int:
        delivered = chars = 0
        async with agent.run_stream(QUESTION) as result:
            async for text in result.stream_text(delta=True, debounce_by=None):
                if text:
                    delivered += 1
                    chars += len(text)
        check_text(NAME, delivered, chars, tokens)
        return chars

    return one
