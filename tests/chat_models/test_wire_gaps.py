"""Smaller wire gaps, on loopback with the bytes the servers send: Groq's usage in ``x_groq``,
and invalid tool calls going back to each provider in a form it accepts."""

from __future__ import annotations

import pytest

from rxagent.chat_models import ChatAnthropic, ChatOpenAI
from rxagent.messages import AIMessage, HumanMessage, ToolMessage

from .loopback import Reply, serve
from .transcripts import (
    MESSAGE_STOP,
    anthropic_events,
    block_start,
    block_stop,
    json_delta,
    message_delta,
    message_start,
    openai_chunk,
    sse,
)

HI = [HumanMessage(content="Weather in SF?")]

# Groq streams OpenAI's format; the usage comes in the last chunk under x_groq (the first one
# carries x_groq with the request id only), and never as a top-level usage field.
GROQ = (
    'data: {"id":"chatcmpl-9f1c","object":"chat.completion.chunk","created":1756425601,'
    '"model":"llama-3.1-8b-instant","system_fingerprint":"fp_a4265e44d5","choices":[{"index":0,'
    '"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],'
    '"x_groq":{"id":"req_01k3vd5t5eexkb8j6ehqh0m3xw"}}\n\n'
    'data: {"id":"chatcmpl-9f1c","object":"chat.completion.chunk","created":1756425601,'
    '"model":"llama-3.1-8b-instant","system_fingerprint":"fp_a4265e44d5","choices":[{"index":0,'
    '"delta":{"content":"Sunny."},"logprobs":null,"finish_reason":null}]}\n\n'
    'data: {"id":"chatcmpl-9f1c","object":"chat.completion.chunk","created":1756425601,'
    '"model":"llama-3.1-8b-instant","system_fingerprint":"fp_a4265e44d5","choices":[{"index":0,'
    '"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":'
    '"req_01k3vd5t5eexkb8j6ehqh0m3xw","usage":{"queue_time":0.047,"prompt_tokens":41,'
    '"prompt_time":0.002,"completion_tokens":3,"completion_time":0.004,"total_tokens":44,'
    '"total_time":0.006}}}\n\n'
    "data: [DONE]\n\n"
)


@pytest.mark.anyio
async def test_groq_usage_in_x_groq_is_read() -> None:
    async with serve(Reply([GROQ], piece=7)) as server:
        model = ChatOpenAI("llama-3.1-8b-instant", api_key="k", base_url=server.url + "/v1")
        reply = await model.ainvoke(HI)
    assert reply.content == "Sunny."
    assert reply.usage_metadata == {"input_tokens": 41, "output_tokens": 3, "total_tokens": 44}


@pytest.mark.anyio
@pytest.mark.parametrize("model_class", [ChatOpenAI, ChatAnthropic])
async def test_an_invalid_call_that_never_named_its_tool_goes_back_with_a_name(
    model_class: type[ChatOpenAI] | type[ChatAnthropic],
) -> None:
    # A call whose name never arrived (a block start without one, fragments cut short): the
    # APIs want a non-empty name on every call, and the call must go back for the error result.
    reply = AIMessage(content="", invalid_tool_calls=[
        {"name": None, "args": '{"city": "S', "id": "call_1", "error": "not valid JSON"}
    ])
    answer = ToolMessage(content="Error: not valid JSON", tool_call_id="call_1", status="error")
    ok = (sse(openai_chunk({"content": "ok"})) if model_class is ChatOpenAI else
          anthropic_events(message_start(), message_delta("end_turn", 1), MESSAGE_STOP))
    async with serve(Reply([ok])) as server:
        base = server.url + "/v1" if model_class is ChatOpenAI else server.url
        await model_class("m", api_key="k", base_url=base).ainvoke([*HI, reply, answer])
    sent = server.requests[0].json["messages"][1]
    if model_class is ChatOpenAI:
        assert sent["tool_calls"] == [
            {"id": "call_1", "type": "function",
             "function": {"name": "unnamed_tool", "arguments": '{"city": "S'}}
        ]
    else:
        assert sent["content"][-1] == {
            "type": "tool_use", "id": "call_1", "name": "unnamed_tool", "input": {}
        }


@pytest.mark.anyio
async def test_an_invalid_anthropic_call_goes_back_with_its_name_an_object_and_its_text() -> None:
    body = anthropic_events(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        json_delta(0, '{"city": '),
        json_delta(0, '"San Fr'),
        block_stop(0),
        message_delta("max_tokens", 9),
        MESSAGE_STOP,
    )
    done = anthropic_events(message_start(), message_delta("end_turn", 1), MESSAGE_STOP)
    async with serve(Reply([body], piece=5), Reply([done])) as server:
        model = ChatAnthropic("m", api_key="k", base_url=server.url)
        reply = await model.ainvoke(HI)
        (bad,) = reply.invalid_tool_calls
        answer = ToolMessage(content="Error: not valid JSON", tool_call_id="toolu_1",
                             status="error")
        await model.ainvoke([*HI, reply, answer])
    assert bad["name"] == "get_weather"
    turn = server.requests[1].json["messages"][1]
    assert turn == {"role": "assistant", "content": [
        {"type": "text",
         "text": '(the arguments of call toolu_1, not valid JSON: {"city": "San Fr)'},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    ]}
