"""LangChain's Runnable methods on chat models: batch, bind, with_config, with_retry,
with_fallbacks, and a call's ``config``; over loopback where a request is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from rxagent import (
    APIStatusError,
    RateLimitError,
    StreamProtocolError,
    UsageError,
    create_agent,
)
from rxagent._bridges import to_async_iterator
from rxagent._demand import Demand
from rxagent.chat_models import BaseChatModel, ChatAnthropic, ChatOpenAI
from rxagent.messages import AIMessageChunk, BaseMessage
from rxagent.testing import ScriptedChatModel

from .loopback import Reply, serve, serve_in_thread
from .transcripts import OPENAI_TEXT, OPENAI_TEXT_ANSWER, openai_chunk, sse

HI = [{"role": "user", "content": "Hi"}]


def openai(url: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI("gpt-5-nano", base_url=url + "/v1", api_key="sk-test", max_retries=0,
                      **kwargs)


def status(code: int) -> Reply:
    return Reply(['{"error": {"message": "nope", "type": "x"}}'], status=code,
                 content_type="application/json")


class Echo(BaseChatModel):
    """Answers each call with its last message's text, after a pause; counts the calls
    under way at once, and fails on the texts in ``fail``."""

    provider = "echo"

    def __init__(self, fail: set[str] = frozenset(), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(model_name="echo", **kwargs)
        self.fail = fail
        self.running = 0
        self.peak = 0
        self.calls: list[dict[str, Any]] = []

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[Any],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        text = str(messages[-1].content)
        self.calls.append(kwargs)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await anyio.sleep(0.01)
        finally:
            self.running -= 1
        if text in self.fail:
            raise StreamProtocolError(f"failed on {text}")
        emit(AIMessageChunk(content=text, chunk_position="last"))


# -- batch -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_abatch_keeps_the_order_and_honours_max_concurrency() -> None:
    model = Echo()
    inputs = [str(n) for n in range(6)]
    replies = await model.abatch(inputs, config={"max_concurrency": 2})
    assert [r.text for r in replies] == inputs
    assert model.peak == 2


@pytest.mark.anyio
async def test_abatch_runs_all_at_once_without_a_limit() -> None:
    model = Echo()
    await model.abatch([str(n) for n in range(5)])
    assert model.peak == 5


@pytest.mark.anyio
async def test_abatch_raises_the_first_failure_or_returns_it() -> None:
    model = Echo(fail={"b"})
    with pytest.raises(StreamProtocolError, match="failed on b"):
        await model.abatch(["a", "b", "c"])
    replies = await model.abatch(["a", "b", "c"], return_exceptions=True)
    assert replies[0].text == "a" and replies[2].text == "c"  # type: ignore[union-attr]
    assert isinstance(replies[1], StreamProtocolError)


def test_batch_and_batch_as_completed_from_sync_code() -> None:
    model = Echo()
    assert [r.text for r in model.batch(["x", "y"], config={"max_concurrency": 1})] == ["x", "y"]
    assert model.peak == 1
    done = sorted(model.batch_as_completed(["p", "q", "r"]))
    assert [(i, r.text) for i, r in done] == [(0, "p"), (1, "q"), (2, "r")]  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_abatch_as_completed_gives_each_index() -> None:
    pairs = [pair async for pair in Echo().abatch_as_completed(["a", "b"])]
    assert sorted((i, r.text) for i, r in pairs) == [(0, "a"), (1, "b")]  # type: ignore[union-attr]


def test_batch_over_http_with_one_config_per_input() -> None:
    with serve_in_thread(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as (server, _):
        replies = openai(server.url).batch(["a", "b"], config=[{"tags": ["x"]}, {}])
    assert [r.text for r in replies] == [OPENAI_TEXT_ANSWER] * 2
    assert len(server.requests) == 2
    with pytest.raises(UsageError, match="2 configs for 3 inputs"):
        Echo().batch(["a", "b", "c"], config=[{}, {}])


# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["no_such_key", "recursion"])
def test_a_config_key_a_model_call_cannot_honour_is_named(key: str) -> None:
    with pytest.raises(UsageError, match=key):
        Echo().invoke("hi", config={key: [object()]})


def test_with_config_refuses_callbacks_rather_than_dropping_them() -> None:
    with pytest.raises(UsageError, match="callbacks"):
        Echo().with_config(callbacks=[object()])


def test_config_tags_and_metadata_reach_the_stream_metadata_in_a_run() -> None:
    model = ScriptedChatModel(["Sunny."])
    agent = create_agent(model.with_config(tags=["mine"], metadata={"user_id": "123"}))
    parts = list(agent.stream({"messages": HI}, stream_mode="messages"))
    metadata = parts[0][1]
    assert "mine" in metadata["tags"] and metadata["user_id"] == "123"
    assert metadata["langgraph_node"] == "model"  # the run's own keys are kept


# -- bind ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_bind_sends_its_parameters_and_still_streams() -> None:
    async with serve(Reply([OPENAI_TEXT], piece=3)) as server:
        model = openai(server.url).bind(temperature=0, stop=["\n"])
        chunks = [c async for c in to_async_iterator(model.stream(HI))]
    body = server.requests[0].json
    assert body["temperature"] == 0 and body["stop"] == ["\n"]
    assert len(chunks) > 2 and chunks[-1].chunk_position == "last"


@pytest.mark.anyio
async def test_stop_goes_to_stop_sequences_for_anthropic() -> None:
    async with serve(status(400)) as server:
        model = ChatAnthropic("claude-sonnet-4-5", base_url=server.url, api_key="k",
                              max_retries=0)
        with pytest.raises(APIStatusError):
            await model.ainvoke(HI, stop=["END"])
    body = server.requests[0].json
    assert body["stop_sequences"] == ["END"] and "stop" not in body


@pytest.mark.anyio
async def test_stop_none_sends_no_stop() -> None:
    async with serve(Reply([OPENAI_TEXT])) as server:
        await openai(server.url).ainvoke(HI, stop=None)
    assert "stop" not in server.requests[0].json


def test_a_bound_model_goes_to_create_agent_and_streams_in_the_run() -> None:
    answer = sse(*[openai_chunk({"content": w}) for w in ["Sun", "ny"]],
                 openai_chunk(finish="stop"))
    with serve_in_thread(Reply([answer])) as (server, _):
        agent = create_agent(openai(server.url).bind(temperature=0))
        tokens = [m.text for m, _ in agent.stream({"messages": HI}, stream_mode="messages")]
    assert tokens[:2] == ["Sun", "ny"]
    assert server.requests[0].json["temperature"] == 0


def test_a_call_overrides_what_bind_fixed_and_attributes_reach_the_model() -> None:
    model = Echo()
    bound = model.bind(temperature=0, top_p=1)
    bound.invoke("hi", temperature=1)
    assert model.calls == [{"temperature": 1, "top_p": 1}]
    assert bound.fail == set() and bound.model_name == "echo"  # read from the wrapped model


# -- with_retry ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_with_retry_makes_the_call_again() -> None:
    async with serve(status(429), status(429), Reply([OPENAI_TEXT])) as server:
        model = openai(server.url).with_retry(stop_after_attempt=3,
                                              wait_exponential_jitter=False)
        reply = await model.ainvoke(HI)
    assert reply.text == OPENAI_TEXT_ANSWER and len(server.requests) == 3


@pytest.mark.anyio
async def test_with_retry_gives_up_after_its_attempts_and_on_other_errors() -> None:
    async with serve(status(429), status(429)) as server:
        model = openai(server.url).with_retry(stop_after_attempt=2,
                                              wait_exponential_jitter=False)
        with pytest.raises(RateLimitError):
            await model.ainvoke(HI)
    assert len(server.requests) == 2
    async with serve(status(400), Reply([OPENAI_TEXT])) as server:
        model = openai(server.url).with_retry(retry_if_exception_type=(RateLimitError,),
                                              wait_exponential_jitter=False)
        with pytest.raises(APIStatusError):
            await model.ainvoke(HI)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_a_retried_stream_starts_again_only_before_its_first_chunk() -> None:
    async with serve(status(503), Reply([OPENAI_TEXT], piece=4)) as server:
        model = openai(server.url).with_retry(wait_exponential_jitter=False)
        chunks = [c async for c in to_async_iterator(model.stream(HI))]
    assert "".join(c.text for c in chunks) == OPENAI_TEXT_ANSWER
    broken = sse(openai_chunk({"content": "Hal"}), done=False) + sse(
        {"error": {"message": "boom", "type": "invalid_request_error"}}, done=False)
    async with serve(Reply([broken]), Reply([OPENAI_TEXT])) as server:
        model = openai(server.url).with_retry(wait_exponential_jitter=False)
        seen: list[str] = []
        with pytest.raises(StreamProtocolError) as caught:
            async for chunk in to_async_iterator(model.stream(HI)):
                seen.append(chunk.text)
    assert seen == ["Hal"] and len(server.requests) == 1
    assert caught.value.partial is not None and caught.value.partial.text == "Hal"


def test_with_retry_refuses_a_wrong_attempt_count() -> None:
    with pytest.raises(UsageError, match="stop_after_attempt"):
        Echo().with_retry(stop_after_attempt=0)


# -- with_fallbacks --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_with_fallbacks_moves_on_to_the_next_model() -> None:
    async with serve(status(500)) as bad, serve(Reply([OPENAI_TEXT], piece=2)) as good:
        model = openai(bad.url).with_fallbacks([openai(good.url)])
        chunks = [c async for c in to_async_iterator(model.stream(HI))]
        reply_server_count = len(good.requests)
    assert "".join(c.text for c in chunks) == OPENAI_TEXT_ANSWER
    assert reply_server_count == 1


@pytest.mark.anyio
async def test_with_fallbacks_raises_the_first_error_when_all_fail() -> None:
    first, second = Echo(fail={"x"}), Echo(fail={"x"})
    with pytest.raises(StreamProtocolError, match="failed on x"):
        await first.with_fallbacks([second]).ainvoke("x")
    assert len(first.calls) == len(second.calls) == 1
    only_usage = first.with_fallbacks([second], exceptions_to_handle=(UsageError,))
    with pytest.raises(StreamProtocolError):
        await only_usage.ainvoke("x")
    assert len(second.calls) == 1  # not tried: the error is not one to handle


def test_with_fallbacks_refuses_exception_key() -> None:
    with pytest.raises(UsageError, match="exception_key"):
        Echo().with_fallbacks([Echo()], exception_key="error")


def test_wrappers_compose() -> None:
    inner = Echo(fail={"x"})
    spare = Echo()
    model = inner.bind(top_k=1).with_retry(stop_after_attempt=2, wait_exponential_jitter=False)
    model = model.with_fallbacks([spare.bind(top_k=2)])
    assert model.invoke("x").text == "x"
    assert inner.calls == [{"top_k": 1}] * 2 and spare.calls == [{"top_k": 2}]


def test_with_retry_waits_as_tenacity_s_exponential_jitter() -> None:
    model = Echo().with_retry(exponential_jitter_params={"initial": 0.5, "max": 1.5,
                                                         "jitter": 0})
    assert [model._wait(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]
    assert Echo().with_retry(wait_exponential_jitter=False)._wait(3) == 0.0
    with pytest.raises(UsageError, match="no_such"):
        Echo().with_retry(exponential_jitter_params={"no_such": 1})  # type: ignore[typeddict-unknown-key]


@pytest.mark.anyio
async def test_abatch_over_http_on_either_loop() -> None:
    async with serve(Reply([OPENAI_TEXT], piece=5), Reply([OPENAI_TEXT], piece=5)) as server:
        replies = await openai(server.url).abatch(["a", "b"], config={"max_concurrency": 1})
    assert [r.text for r in replies] == [OPENAI_TEXT_ANSWER] * 2
    assert sorted(r.json["messages"][0]["content"] for r in server.requests) == ["a", "b"]
