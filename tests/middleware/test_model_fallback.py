"""``ModelFallbackMiddleware``: the same programs under LangChain 1.5.2 and rxagent stream the
same steps and tokens (the failed models' too); cancelling during a fallback's call stops it
and calls no later model; its arguments."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import rxagent
from rxagent.chat_models import ChatOpenAI
from rxagent.messages import AIMessageChunk
from rxagent.middleware import AgentMiddleware, ModelFallbackMiddleware
from rxagent.testing import FunctionChatModel

from .failing import Fail, failing
from .test_parity import LIBS, QUESTION, Ids, prompts, stream, weather

NEVER = 10.0  # seconds: a wait no passing test sees end (a broken one does, then fails)
TOOL_CALL = [{"name": "weather", "args": {"city": "Paris"}, "id": "w1"}]


def with_fallbacks(name: str, scripts: list[list[Any]]) -> tuple[Any, list[Any]]:
    """An agent whose model follows ``scripts[0]`` and whose fallbacks the others."""
    lib = LIBS[name]
    models = [failing(name, script) for script in scripts]
    agent = lib.agents.create_agent(models[0], tools=[lib.base.tool(weather)],
                                    middleware=[lib.mw.ModelFallbackMiddleware(*models[1:])])
    return agent, models


def both(scripts: list[list[Any]], modes: list[str]) -> Any:
    results = {}
    for name in LIBS:
        agent, models = with_fallbacks(name, scripts)
        number = Ids()
        results[name] = (stream(agent, QUESTION, modes, number),
                         [prompts(m.seen, number) for m in models])
    ours, theirs = results["rxagent"], results["langchain"]
    assert [e for e in ours[0] if e[0] == "updates"] == \
        [e for e in theirs[0] if e[0] == "updates"]
    assert ours == theirs
    return ours


MODES = [["updates", "values"], ["updates", "messages"]]
DOWN = RuntimeError("primary down")


@pytest.mark.parametrize("modes", MODES)
def test_fallbacks_answer_in_turn_as_in_langchain(modes: list[str]) -> None:
    """The first model step: the primary fails mid-reply, the first fallback fails, the
    second answers; the next step: the primary answers."""
    events, seen = both([[Fail("Let me", DOWN), "It is sunny."],
                         [Fail("Checking", RuntimeError("first fallback down"))],
                         [TOOL_CALL]], modes)
    assert [len(prompts) for prompts in seen] == [2, 1, 1]
    if "messages" in modes:
        tokens = [data[0][1] for mode, data in events
                  if mode == "messages" and data[0][0] == "AIMessageChunk" and data[0][1]]
        assert tokens == ["Let ", "me", "Checking", "It ", "is ", "sunny."]


def test_when_every_model_fails_the_last_failure_is_raised_as_in_langchain() -> None:
    for name in LIBS:
        agent, models = with_fallbacks(name, [[Fail("", DOWN)], [Fail("", KeyError("a"))],
                                              [Fail("", ValueError("last one"))]])
        with pytest.raises(ValueError, match="last one"):
            list(agent.stream(QUESTION))
        assert [len(m.seen) for m in models] == [1, 1, 1], name


@pytest.mark.anyio
async def test_fallback_in_an_async_run() -> None:
    agent, models = with_fallbacks("rxagent", [[Fail("", DOWN)], ["Fallback here."]])
    result = await agent.ainvoke(QUESTION)
    assert result["messages"][-1].content == "Fallback here."
    assert [len(m.seen) for m in models] == [1, 1]


# -- cancelling ------------------------------------------------------------------------------


class Calls:
    """Models that count their calls: the first fails after a token, the others stream a
    token and wait until cancelled."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.cancelled: list[int] = []

    def model(self, number: int) -> FunctionChatModel:
        async def reply(messages: Any, tools: Any) -> AsyncIterator[AIMessageChunk]:
            self.started.append(number)
            yield AIMessageChunk(content=f"model {number} ")
            if number == 0:
                raise RuntimeError("primary down")
            try:
                with anyio.fail_after(NEVER):  # a broken cancellation fails, and falls back
                    await anyio.sleep_forever()
            finally:
                self.cancelled.append(number)

        return FunctionChatModel(reply)


class SyncFallback(ModelFallbackMiddleware):
    """Only the sync form: the run calls it in a worker thread, its handler blocking."""

    awrap_model_call = AgentMiddleware.awrap_model_call  # type: ignore[assignment]


def cancellable(calls: Calls, form: str) -> Any:
    kind = SyncFallback if form == "sync" else ModelFallbackMiddleware
    return rxagent.create_agent(calls.model(0), [], middleware=[
        kind(calls.model(1), calls.model(2))])


@pytest.mark.parametrize("form", ["async", "sync"])
def test_leaving_stream_during_a_fallback_stops_it(form: str) -> None:
    calls = Calls()
    parts = cancellable(calls, form).stream(QUESTION, stream_mode="messages")
    tokens = []
    for chunk, _ in parts:
        tokens.append(chunk.content)
        if chunk.content == "model 1 ":
            break
    parts.close()  # the sync iterator waits for its run to stop
    assert tokens == ["model 0 ", "model 1 "]  # the failed model's token streamed too
    assert calls.started == [0, 1]
    assert calls.cancelled == [1]


@pytest.mark.anyio
async def test_cancelling_astream_during_a_fallback_stops_it() -> None:
    calls = Calls()
    agent = cancellable(calls, "async")
    reached = anyio.Event()

    async def consume() -> None:
        async for chunk, _ in agent.astream(QUESTION, stream_mode="messages"):
            if chunk.content == "model 1 ":
                reached.set()
        pytest.fail("the stream ended without reaching the fallback")

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await reached.wait()
        group.cancel_scope.cancel()
    # Under asyncio the fallback's generator, stopped, is closed by the cycle collector only,
    # when the consumer's task was cancelled (the core's, with or without middleware).
    with anyio.fail_after(NEVER):
        while not calls.cancelled:
            gc.collect()
            await anyio.sleep(0.01)
    for _ in range(20):  # a later model would have been called by now
        await anyio.sleep(0)
    assert calls.started == [0, 1]
    assert calls.cancelled == [1]


# -- arguments ---------------------------------------------------------------------------------


def test_model_strings_are_resolved() -> None:
    fallback = ModelFallbackMiddleware("openai:gpt-4o-mini", FunctionChatModel(lambda m, t: "x"))
    assert isinstance(fallback.models[0], ChatOpenAI)
    assert isinstance(fallback.models[1], FunctionChatModel)


def test_bad_fallbacks_are_refused() -> None:
    with pytest.raises(rxagent.ModelSpecError):
        ModelFallbackMiddleware("nobody:knows-this-model")
    with pytest.raises(ValueError):  # as LangChain's init_chat_model raises
        ModelFallbackMiddleware("nobody:knows-this-model")
    with pytest.raises(rxagent.UsageError, match="chat model or a model string"):
        ModelFallbackMiddleware(42)  # type: ignore[arg-type]
