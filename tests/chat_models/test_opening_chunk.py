"""The empty chunk a streamed reply opens with, as LangChain's providers stream one: from
OpenAI's role-only first delta (not when the first delta holds a token or a tool call) and
from Anthropic's ``message_start``. It is handed over once per call, and is no start of the
reply: a failure after it is still retried, and it is no part of an error's partial reply."""

from __future__ import annotations

import anyio
import pytest

from rxagent import StreamProtocolError
from rxagent._bridges import to_async_iterator
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, RetryPolicy
from rxagent.messages import AIMessageChunk

from .loopback import Reply, serve
from .transcripts import (
    ANTHROPIC_MODEL,
    MESSAGE_STOP,
    anthropic_events,
    block_start,
    message_delta,
    message_start,
    openai_call,
    openai_chunk,
    sse,
    text_delta,
)

HI = [{"role": "user", "content": "Hi"}]
FAST = RetryPolicy(initial=0.001, maximum=0.002)


def openai(url: str) -> ChatOpenAI:
    model = ChatOpenAI("gpt-5-nano", base_url=url + "/v1", api_key="sk-test")
    model.retry_policy = FAST
    return model


async def chunks_of(model: ChatOpenAI | ChatAnthropic) -> list[AIMessageChunk]:
    with anyio.fail_after(10):
        return [chunk async for chunk in to_async_iterator(model.stream(HI))]


@pytest.mark.anyio
@pytest.mark.parametrize(("first", "opens"), [
    ({"role": "assistant", "content": ""}, True),
    ({"role": "assistant"}, True),
    ({"role": "assistant", "content": "Hi"}, False),
    ({"role": "assistant", "content": None,
      "tool_calls": [openai_call(0, id="call_1", name="f", args="")]}, False),
], ids=["role-and-empty-text", "role-only", "role-and-token", "role-and-call"])
async def test_openai_opens_only_with_an_empty_first_delta(
    first: dict[str, object], opens: bool
) -> None:
    body = sse(openai_chunk(first), openai_chunk({"content": "!"}), openai_chunk(finish="stop"))
    async with serve(Reply([body], piece=3)) as server:
        chunks = await chunks_of(openai(server.url))
    opening = chunks[0]
    empty = opening.content == "" and not opening.tool_call_chunks
    assert empty is opens
    if opens:
        assert opening.response_metadata == {"model_provider": "openai"}
        assert opening.chunk_position is None and opening.id == chunks[1].id


@pytest.mark.anyio
async def test_a_retried_reply_opens_once_and_the_opening_is_no_start() -> None:
    head = sse(openai_chunk({"role": "assistant", "content": ""}), done=False)
    failed = head + sse({"error": {"message": "busy", "type": "server_error"}}, done=False)
    answer = sse(openai_chunk({"role": "assistant", "content": ""}),
                 openai_chunk({"content": "Hi"}), openai_chunk(finish="stop"))
    async with serve(Reply([failed]), Reply([answer])) as server:
        chunks = await chunks_of(openai(server.url))
    assert len(server.requests) == 2  # retried: the opening did not start the reply
    assert [c.content for c in chunks] == ["", "Hi", ""]


@pytest.mark.anyio
async def test_the_opening_is_no_part_of_the_partial_reply() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": ""}), openai_chunk({"content": "Ha"}),
               {"error": {"message": "bad", "type": "invalid_request_error"}}, done=False)
    async with serve(Reply([body])) as server:
        with pytest.raises(StreamProtocolError) as caught:
            await openai(server.url).ainvoke(HI)
    partial = caught.value.partial
    assert partial is not None and partial.content == "Ha"
    assert partial.response_metadata == {}


@pytest.mark.anyio
async def test_anthropic_opens_with_message_start() -> None:
    body = anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""}),
                            text_delta(0, "Hi"), message_delta("end_turn", 2), MESSAGE_STOP)
    async with serve(Reply([body], piece=5)) as server:
        model = ChatAnthropic(ANTHROPIC_MODEL, base_url=server.url, api_key="sk-ant-test")
        chunks = await chunks_of(model)
    assert [c.content for c in chunks] == ["", "Hi", ""]
    assert chunks[0].response_metadata == {"model_provider": "anthropic"}
    assert chunks[-1].chunk_position == "last"
