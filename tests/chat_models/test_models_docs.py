"""The examples of LangChain's Models page (``src/oss/langchain/models.mdx``), run with only their
imports changed, against loopback servers speaking OpenAI's and Anthropic's wire formats.

``model`` is what the page's provider tabs make (``init_chat_model("gpt-...")``), reading
OPENAI_BASE_URL and OPENAI_API_KEY. Left out, each for a reason docs/langchain.md gives:
``bind_tools``/``with_structured_output`` (tested with structured output), ``astream_events``
and ``config={"callbacks": ...}`` (callbacks and events), ``model.profile`` (tests of its
own, ``test_profiles.py``), configurable models (``test_configurable.py``), ``openai_proxy``,
and image output; the rate limiter's behaviour is tested in ``tests/test_rate_limiters.py``.
Where an example prints a provider's made-up reply, the test checks what the reply sent over
the wire makes instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from rxagent.chat_models import init_chat_model

from .loopback import LoopbackServer, Reply, serve_in_thread
from .transcripts import (
    MESSAGE_STOP,
    OPENAI_TEXT,
    OPENAI_TEXT_ANSWER,
    USAGE,
    anthropic_events,
    block_start,
    block_stop,
    message_delta,
    message_start,
    openai_chunk,
    sse,
    text_delta,
)

SKY_WORDS = ["The", " sky", " is", " typically", " blue", "."]
SKY = sse(
    openai_chunk({"role": "assistant", "content": ""}),
    *[openai_chunk({"content": word}) for word in SKY_WORDS],
    openai_chunk(finish="stop"),
    openai_chunk(choices=False, usage=USAGE),
)
REASONING = sse(
    openai_chunk({"role": "assistant", "content": ""}),
    openai_chunk({"reasoning_content": "Parrots mimic"}),
    openai_chunk({"reasoning_content": " sounds."}),
    openai_chunk({"content": "To bond."}),
    openai_chunk(finish="stop"),
)


def logprob(token: str, value: float) -> dict[str, Any]:
    return {"token": token, "logprob": value, "bytes": list(token.encode()), "top_logprobs": []}


LOGPROBS = sse(
    openai_chunk({"role": "assistant", "content": ""}),
    *[
        {**openai_chunk({"content": token}),
         "choices": [{"index": 0, "delta": {"content": token},
                      "logprobs": {"content": [logprob(token, value)], "refusal": None},
                      "finish_reason": None}]}
        for token, value in [("To", -0.25), (" talk", -0.5)]
    ],
    openai_chunk(finish="stop"),
)
CLAUDE = anthropic_events(
    message_start(),
    block_start(0, {"type": "text", "text": ""}),
    text_delta(0, "Hello"),
    block_stop(0),
    message_delta("end_turn", 3),
    MESSAGE_STOP,
)


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """A server for ``init_chat_model("gpt-...")``; each test adds the replies it needs."""
    with serve_in_thread() as (server, _):
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield server


def text_replies(server: LoopbackServer, count: int, body: str = OPENAI_TEXT) -> None:
    server.add(*[Reply([body], piece=7) for _ in range(count)])


# -- basic usage, parameters ------------------------------------------------------------------


def test_initialize_a_model(openai_server: LoopbackServer) -> None:
    text_replies(openai_server, 1)
    model = init_chat_model("gpt-5.5")
    response = model.invoke("Why do parrots talk?")
    assert response.text == OPENAI_TEXT_ANSWER
    assert openai_server.requests[0].json["messages"] == [
        {"role": "user", "content": "Why do parrots talk?"}]


def test_initialize_using_model_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_in_thread(Reply([CLAUDE], piece=5)) as (server, _):
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        model = init_chat_model(
            "claude-sonnet-4-6",
            # Kwargs passed to the model:
            temperature=0.7,
            timeout=30,
            max_tokens=1000,
            max_retries=6,  # Default; increase for unreliable networks
        )
        assert model.invoke("Hi").text == "Hello"
    body = server.requests[0].json
    assert (body["model"], body["temperature"], body["max_tokens"]) == (
        "claude-sonnet-4-6", 0.7, 1000)


def test_connection_resilience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "google-test")
    model = init_chat_model(
        "google_genai:gemini-3.5-flash",
        max_retries=10,  # Increase for unreliable networks (default: 6)
        timeout=120,  # Seconds; increase for slow connections
    )
    assert model.max_retries == 10 and model.timeouts.first_token == 120


# -- invocation -------------------------------------------------------------------------------


def test_invoke_a_single_message(openai_server: LoopbackServer,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    text_replies(openai_server, 1)
    model = init_chat_model("gpt-5.5")
    response = model.invoke("Why do parrots have colorful feathers?")
    print(response)
    assert OPENAI_TEXT_ANSWER in capsys.readouterr().out


def test_invoke_a_conversation_as_dicts_and_as_messages(openai_server: LoopbackServer) -> None:
    text_replies(openai_server, 2)
    model = init_chat_model("gpt-5.5")
    conversation: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant that translates English to French."},  # noqa: E501
        {"role": "user", "content": "Translate: I love programming."},
        {"role": "assistant", "content": "J'adore la programmation."},
        {"role": "user", "content": "Translate: I love building applications."}
    ]

    response = model.invoke(conversation)
    print(response)  # AIMessage("J'adore créer des applications.")

    from rxagent.messages import AIMessage, HumanMessage, SystemMessage

    conversation = [
        SystemMessage("You are a helpful assistant that translates English to French."),
        HumanMessage("Translate: I love programming."),
        AIMessage("J'adore la programmation."),
        HumanMessage("Translate: I love building applications.")
    ]

    response = model.invoke(conversation)
    print(response)  # AIMessage("J'adore créer des applications.")
    first, second = (request.json["messages"] for request in openai_server.requests)
    assert first == second and [m["role"] for m in first] == [
        "system", "user", "assistant", "user"]


def test_stream_text(openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    openai_server.add(Reply([SKY], piece=7))
    model = init_chat_model("gpt-5.5")
    for chunk in model.stream("Why do parrots have colorful feathers?"):
        print(chunk.text, end="|", flush=True)
    # The reply opens with an empty chunk and closes with one, as langchain-openai's does.
    assert capsys.readouterr().out == "|" + "|".join(SKY_WORDS) + "||"
    assert openai_server.requests[0].json["stream"] is True


def test_stream_tool_calls_reasoning_and_other_content(
    openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    openai_server.add(Reply([REASONING], piece=7))
    model = init_chat_model("gpt-5.5")
    for chunk in model.stream("What color is the sky?"):
        for block in chunk.content_blocks:
            if block["type"] == "reasoning" and (reasoning := block.get("reasoning")):
                print(f"Reasoning: {reasoning}")
            elif block["type"] == "tool_call_chunk":
                print(f"Tool call chunk: {block}")
            elif block["type"] == "text":
                print(block["text"])
            else:
                ...
    assert capsys.readouterr().out.splitlines() == [
        "Reasoning: Parrots mimic", "Reasoning:  sounds.", "To bond."]


def test_construct_an_ai_message_from_chunks(
    openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    openai_server.add(Reply([SKY], piece=7))
    model = init_chat_model("gpt-5.5")
    full = None  # None | AIMessageChunk
    for chunk in model.stream("What color is the sky?"):
        full = chunk if full is None else full + chunk
        print(full.text)

    # The
    # The sky
    # The sky is
    # The sky is typically
    # The sky is typically blue
    # ...

    print(full.content_blocks)  # type: ignore[union-attr]
    # [{"type": "text", "text": "The sky is typically blue..."}]
    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == ["", "The", "The sky", "The sky is", "The sky is typically",
                         "The sky is typically blue"]
    assert lines[-1] == str([{"type": "text", "text": "The sky is typically blue."}])


def test_batch(openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    text_replies(openai_server, 3)
    model = init_chat_model("gpt-5.5")
    responses = model.batch([
        "Why do parrots have colorful feathers?",
        "How do airplanes fly?",
        "What is quantum computing?"
    ])
    for response in responses:
        print(response)
    assert capsys.readouterr().out.count(OPENAI_TEXT_ANSWER) == 3
    asked = sorted(r.json["messages"][0]["content"] for r in openai_server.requests)
    assert asked == ["How do airplanes fly?", "What is quantum computing?",
                     "Why do parrots have colorful feathers?"]


def test_yield_batch_responses_upon_completion(
    openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    text_replies(openai_server, 3)
    model = init_chat_model("gpt-5.5")
    for response in model.batch_as_completed([
        "Why do parrots have colorful feathers?",
        "How do airplanes fly?",
        "What is quantum computing?"
    ]):
        print(response)
    printed = capsys.readouterr().out
    assert printed.count(OPENAI_TEXT_ANSWER) == 3
    assert {printed.count(f"({n}, AIMessage(") for n in range(3)} == {1}


def test_batch_with_max_concurrency(openai_server: LoopbackServer) -> None:
    list_of_inputs = ["a", "b", "c", "d", "e", "f"]
    text_replies(openai_server, len(list_of_inputs))
    model = init_chat_model("gpt-5.5")
    replies = model.batch(
        list_of_inputs,
        config={
            'max_concurrency': 5,  # Limit to 5 parallel calls
        }
    )
    assert [r.text for r in replies] == [OPENAI_TEXT_ANSWER] * 6


# -- advanced topics --------------------------------------------------------------------------


def test_reasoning(openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    openai_server.add(Reply([REASONING], piece=7), Reply([REASONING], piece=7))
    model = init_chat_model("gpt-5.5")
    for chunk in model.stream("Why do parrots have colorful feathers?"):
        reasoning_steps = [r for r in chunk.content_blocks if r["type"] == "reasoning"]
        print(reasoning_steps if reasoning_steps else chunk.text)

    response = model.invoke("Why do parrots have colorful feathers?")
    reasoning_steps = [b for b in response.content_blocks if b["type"] == "reasoning"]
    print(" ".join(step["reasoning"] for step in reasoning_steps))
    lines = capsys.readouterr().out.splitlines()
    assert "To bond." in lines and lines[-1] == "Parrots mimic sounds."


def test_custom_base_url() -> None:
    with serve_in_thread(Reply([OPENAI_TEXT])) as (server, _):
        BASE_URL = server.url + "/v1"
        model = init_chat_model(
            model="MODEL_NAME",
            model_provider="openai",
            base_url=BASE_URL,
            api_key="YOUR_API_KEY",
        )
        assert model.invoke("Hi").text == OPENAI_TEXT_ANSWER
    assert server.requests[0].headers["authorization"] == "Bearer YOUR_API_KEY"


def test_log_probabilities(openai_server: LoopbackServer,
                           capsys: pytest.CaptureFixture[str]) -> None:
    openai_server.add(Reply([LOGPROBS], piece=7))
    model = init_chat_model(
        model="gpt-5.5",
        model_provider="openai"
    ).bind(logprobs=True)

    response = model.invoke("Why do parrots talk?")
    print(response.response_metadata["logprobs"])
    assert openai_server.requests[0].json["logprobs"] is True
    assert response.response_metadata["logprobs"] == {
        "content": [logprob("To", -0.25), logprob(" talk", -0.5)], "refusal": None}
    assert "'logprob': -0.25" in capsys.readouterr().out


def test_invocation_with_config(openai_server: LoopbackServer) -> None:
    text_replies(openai_server, 1)
    model = init_chat_model("gpt-5.5")
    response = model.invoke(
        "Tell me a joke",
        config={
            "run_name": "joke_generation",      # Custom name for this run
            "tags": ["humor", "demo"],          # Tags for categorization
            "metadata": {"user_id": "123"},     # Custom metadata
            # "callbacks": [my_callback_handler]: left out, see the module doc
        }
    )
    assert response.text == OPENAI_TEXT_ANSWER
    body = openai_server.requests[0].json
    assert not {"config", "run_name", "tags", "metadata"} & set(body)  # none reached the body


def test_rate_limiting(openai_server: LoopbackServer) -> None:
    from rxagent.rate_limiters import InMemoryRateLimiter

    rate_limiter = InMemoryRateLimiter(
        requests_per_second=0.1,  # 1 request every 10s
        check_every_n_seconds=0.1,  # Check every 100ms whether allowed to make a request
        max_bucket_size=10,  # Controls the maximum burst size.
    )

    model = init_chat_model(
        model="gpt-5.5",
        model_provider="openai",
        rate_limiter=rate_limiter  # [!code highlight]
    )
    # (Calling it would wait the limiter's first ten seconds: its calls are tested there.)
    assert model.rate_limiter is rate_limiter  # type: ignore[attr-defined]
    assert not rate_limiter.acquire(blocking=False)  # the bucket starts empty


def test_dynamic_model_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_in_thread(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as (server, _):
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        tools: list[Any] = []

        from rxagent import create_agent
        from rxagent.chat_models import ChatOpenAI
        from rxagent.middleware import ModelRequest, ModelResponse, wrap_model_call

        basic_model = ChatOpenAI(model="gpt-5.4-mini")
        advanced_model = ChatOpenAI(model="gpt-5.5")

        @wrap_model_call
        def dynamic_model_selection(request: ModelRequest, handler) -> ModelResponse:  # type: ignore[no-untyped-def, type-arg]
            """Choose model based on conversation complexity."""
            message_count = len(request.state["messages"])

            if message_count > 10:  # noqa: SIM108 - the docs' code, as written
                # Use an advanced model for longer conversations
                model = advanced_model
            else:
                model = basic_model

            return handler(request.override(model=model))  # type: ignore[no-any-return]

        agent = create_agent(
            model=basic_model,  # Default model
            tools=tools,
            middleware=[dynamic_model_selection]
        )
        agent.invoke({"messages": [{"role": "user", "content": "Hi"}]})
        long = [{"role": "user", "content": str(n)} for n in range(11)]
        agent.invoke({"messages": long})
    models = [request.json["model"] for request in server.requests]
    assert models == ["gpt-5.4-mini", "gpt-5.5"]
    assert json.dumps(models)  # both calls crossed the wire
