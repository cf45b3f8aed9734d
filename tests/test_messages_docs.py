"""LangChain's Messages docs page, every Python example with only its imports changed; the
examples that name a model (``init_chat_model("gpt-5-nano")``) run as written against the
loopback server of the ``server`` fixture (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from rxagent.chat_models import init_chat_model
from rxagent.chat_models._base import tool_specs
from rxagent.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_from_dict,
    messages_to_dict,
)

from .chat_models.loopback import LoopbackServer, Reply
from .chat_models.transcripts import openai_chunk, sse
from .middleware.over_the_wire import calls, text


def sent(server: LoopbackServer, index: int = -1) -> list[dict[str, Any]]:
    """The messages request ``index`` sent, as OpenAI's wire format has them."""
    messages: list[dict[str, Any]] = server.requests[index].json["messages"]
    return messages


def test_basic_usage(server: LoopbackServer) -> None:
    server.add(text("I'm well, thanks!"))

    model = init_chat_model("gpt-5-nano")

    system_msg = SystemMessage("You are a helpful assistant.")
    human_msg = HumanMessage("Hello, how are you?")

    # Use with chat models
    messages = [system_msg, human_msg]
    response = model.invoke(messages)  # Returns AIMessage

    assert isinstance(response, AIMessage)
    assert response.text == "I'm well, thanks!"
    assert server.requests[0].json["model"] == "gpt-5-nano"
    assert sent(server) == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello, how are you?"},
    ]


def test_text_message_and_dict_prompts(server: LoopbackServer) -> None:
    server.add(text("Petals drift."), text("Petals drift."), text("Petals drift."))
    model = init_chat_model("gpt-5-nano")

    # Text prompts
    response = model.invoke("Write a haiku about spring")
    assert response.text == "Petals drift."

    # Message prompts
    messages: list[Any] = [
        SystemMessage("You are a poetry expert"),
        HumanMessage("Write a haiku about spring"),
        AIMessage("Cherry blossoms bloom...")
    ]
    response = model.invoke(messages)

    # Dictionary format
    messages = [
        {"role": "system", "content": "You are a poetry expert"},
        {"role": "user", "content": "Write a haiku about spring"},
        {"role": "assistant", "content": "Cherry blossoms bloom..."}
    ]
    response = model.invoke(messages)

    assert sent(server, 0) == [{"role": "user", "content": "Write a haiku about spring"}]
    # The message objects and the dicts send the same.
    assert sent(server, 1) == sent(server, 2)
    assert [m["role"] for m in sent(server, 1)] == ["system", "user", "assistant"]
    assert sent(server, 2)[2]["content"] == "Cherry blossoms bloom..."


def test_system_messages(server: LoopbackServer) -> None:
    server.add(text("Use FastAPI."), text("Use FastAPI."))
    model = init_chat_model("gpt-5-nano")

    # Basic instructions
    system_msg = SystemMessage("You are a helpful coding assistant.")

    messages = [
        system_msg,
        HumanMessage("How do I create a REST API?")
    ]
    response = model.invoke(messages)

    # Detailed persona
    system_msg = SystemMessage("""
You are a senior Python developer with expertise in web frameworks.
Always provide code examples and explain your reasoning.
Be concise but thorough in your explanations.
""")

    messages = [
        system_msg,
        HumanMessage("How do I create a REST API?")
    ]
    response = model.invoke(messages)

    assert response.text == "Use FastAPI."
    assert sent(server, 0)[0] == {"role": "system",
                                  "content": "You are a helpful coding assistant."}
    assert sent(server, 1)[0]["content"].startswith("\nYou are a senior Python developer")


def test_human_messages_and_their_metadata(server: LoopbackServer) -> None:
    server.add(text("A field of AI."), text("A field of AI."))
    model = init_chat_model("gpt-5-nano")

    # Message object
    response = model.invoke([
      HumanMessage("What is machine learning?")
    ])
    # String shortcut
    # Using a string is a shortcut for a single HumanMessage
    response = model.invoke("What is machine learning?")

    assert sent(server, 0) == sent(server, 1)
    assert response.text == "A field of AI."

    # Add metadata
    human_msg = HumanMessage(
        content="Hello!",
        name="alice",  # Optional: identify different users
        id="msg_123",  # Optional: unique identifier for tracing
    )
    assert (human_msg.content, human_msg.name, human_msg.id) == ("Hello!", "alice", "msg_123")


def test_ai_messages(server: LoopbackServer) -> None:
    server.add(text("AI is..."), text("4"))
    model = init_chat_model("gpt-5-nano")

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = model.invoke("Explain AI")
        print(type(response))  # <class 'langchain.messages.AIMessage'>
    # Differs only in the module's name (docs/langchain.md, "type(message) prints").
    assert out.getvalue() == "<class 'rxagent._messages.AIMessage'>\n"
    assert isinstance(response, AIMessage)

    # Create an AI message manually (e.g., for conversation history)
    ai_msg = AIMessage("I'd be happy to help you with that question!")

    # Add to conversation history
    messages = [
        SystemMessage("You are a helpful assistant"),
        HumanMessage("Can you help me?"),
        ai_msg,  # Insert as if it came from the model
        HumanMessage("Great! What's 2+2?")
    ]

    response = model.invoke(messages)

    assert response.text == "4"
    assert sent(server)[2] == {"role": "assistant",
                               "content": "I'd be happy to help you with that question!"}
    # The attributes the page lists.
    assert response.content == "4"
    assert response.content_blocks == [{"type": "text", "text": "4"}]
    assert response.tool_calls == []
    assert response.id
    assert response.response_metadata["model_name"]


def test_tool_calls(server: LoopbackServer) -> None:
    server.add(calls(("get_weather", {"location": "Paris"})))

    model = init_chat_model("gpt-5-nano")

    def get_weather(location: str) -> str:
        """Get the weather at a location."""
        ...

    model_with_tools = model.bind_tools([get_weather])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = model_with_tools.invoke("What's the weather in Paris?")

        for tool_call in response.tool_calls:
            print(f"Tool: {tool_call['name']}")
            print(f"Args: {tool_call['args']}")
            print(f"ID: {tool_call['id']}")

    assert out.getvalue() == (
        "Tool: get_weather\nArgs: {'location': 'Paris'}\nID: call_0_get_weather\n"
    )
    # The plain function reached the model as a tool, its docstring the description.
    assert [spec["function"] for spec in server.requests[0].json["tools"]] == (
        tool_specs([get_weather]))
    assert tool_specs([get_weather])[0]["description"] == "Get the weather at a location."


def test_token_usage(server: LoopbackServer) -> None:
    usage = {"prompt_tokens": 8, "completion_tokens": 304, "total_tokens": 312,
             "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
             "completion_tokens_details": {"audio_tokens": 0, "reasoning_tokens": 256}}
    server.add(Reply([sse(openai_chunk({"role": "assistant", "content": "Hi!"}),
                          openai_chunk(finish="stop"),
                          openai_chunk(usage=usage, choices=False))]))

    model = init_chat_model("gpt-5-nano")

    response = model.invoke("Hello!")
    assert response.usage_metadata == {
        "input_tokens": 8,
        "output_tokens": 304,
        "total_tokens": 312,
        "input_token_details": {"audio": 0, "cache_read": 0},
        "output_token_details": {"audio": 0, "reasoning": 256},
    }


def test_streaming_and_chunks(server: LoopbackServer) -> None:
    server.add(text("Hello there, friend!"))
    model = init_chat_model("gpt-5-nano")

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        chunks = []
        full_message = None
        for chunk in model.stream("Hi"):
            chunks.append(chunk)
            print(chunk.text)
            full_message = chunk if full_message is None else full_message + chunk

    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert isinstance(full_message, AIMessageChunk)
    assert full_message.text == "Hello there, friend!"
    assert "".join(out.getvalue().splitlines()) == "Hello there, friend!"


def test_tool_message(server: LoopbackServer) -> None:
    server.add(text("It's sunny and 72°F in San Francisco."))
    model = init_chat_model("gpt-5-nano")

    # After a model makes a tool call
    # (Here, we demonstrate manually creating the messages for brevity)
    ai_message = AIMessage(
        content=[],
        tool_calls=[{
            "name": "get_weather",
            "args": {"location": "San Francisco"},
            "id": "call_123"
        }]
    )

    # Execute tool and create result message
    weather_result = "Sunny, 72°F"
    tool_message = ToolMessage(
        content=weather_result,
        tool_call_id="call_123"  # Must match the call ID
    )

    # Continue conversation
    messages = [
        HumanMessage("What's the weather in San Francisco?"),
        ai_message,  # Model's tool call
        tool_message,  # Tool execution result
    ]
    response = model.invoke(messages)  # Model processes the result

    assert response.text == "It's sunny and 72°F in San Francisco."
    call, result = sent(server)[1:]
    assert call["tool_calls"][0]["id"] == "call_123"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {
        "location": "San Francisco"}
    assert result == {"role": "tool", "tool_call_id": "call_123", "content": "Sunny, 72°F"}


def test_tool_message_artifact(server: LoopbackServer) -> None:
    server.add(text("A Tale of Two Cities."))
    # Sent to model
    message_content = "It was the best of times, it was the worst of times."

    # Artifact available downstream
    artifact = {"document_id": "doc_123", "page": 0}

    tool_message = ToolMessage(
        content=message_content,
        tool_call_id="call_123",
        name="search_books",
        artifact=artifact,
    )

    assert tool_message.artifact == {"document_id": "doc_123", "page": 0}
    assert tool_message.name == "search_books"
    # The artifact is not sent to the model.
    call = AIMessage("", tool_calls=[{"name": "search_books", "args": {}, "id": "call_123"}])
    init_chat_model("gpt-5-nano").invoke([HumanMessage("Which book?"), call, tool_message])
    assert "doc_123" not in json.dumps(sent(server))
    assert sent(server)[-1]["content"] == message_content


def test_message_content_three_ways() -> None:
    # String content
    human_message = HumanMessage("Hello, how are you?")
    assert human_message.content == "Hello, how are you?"

    # Provider-native format (e.g., OpenAI)
    human_message = HumanMessage(content=[
        {"type": "text", "text": "Hello, how are you?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/image.jpg"}}
    ])
    assert human_message.text == "Hello, how are you?"

    # List of standard content blocks
    human_message = HumanMessage(content_blocks=[
        {"type": "text", "text": "Hello, how are you?"},
        {"type": "image", "url": "https://example.com/image.jpg"},
    ])
    # As the page's tip says: content_blocks populate content.
    assert human_message.content == [
        {"type": "text", "text": "Hello, how are you?"},
        {"type": "image", "url": "https://example.com/image.jpg"},
    ]
    assert human_message.content_blocks == human_message.content


def test_standard_content_blocks_anthropic() -> None:
    message = AIMessage(
        content=[
            {"type": "thinking", "thinking": "...", "signature": "WaUjzkyp..."},
            {"type": "text", "text": "..."},
        ],
        response_metadata={"model_provider": "anthropic"}
    )
    assert str(message.content_blocks) == (
        "[{'type': 'reasoning', 'reasoning': '...', 'extras': {'signature': 'WaUjzkyp...'}}, "
        "{'type': 'text', 'text': '...'}]"
    )


def test_standard_content_blocks_openai() -> None:
    message = AIMessage(
        content=[
            {
                "type": "reasoning",
                "id": "rs_abc123",
                "summary": [
                    {"type": "summary_text", "text": "summary 1"},
                    {"type": "summary_text", "text": "summary 2"},
                ],
            },
            {"type": "text", "text": "...", "id": "msg_abc123"},
        ],
        response_metadata={"model_provider": "openai"}
    )
    assert str(message.content_blocks) == (
        "[{'type': 'reasoning', 'id': 'rs_abc123', 'reasoning': 'summary 1'}, "
        "{'type': 'reasoning', 'id': 'rs_abc123', 'reasoning': 'summary 2'}, "
        "{'type': 'text', 'text': '...', 'id': 'msg_abc123'}]"
    )


# Left out: `init_chat_model("gpt-5-nano", output_version="v1")` (docs/langchain.md, the
# `output_version` row: content is kept as the provider sent it).


def test_multimodal_image_inputs_reach_the_model(server: LoopbackServer) -> None:
    server.add(text("A cat."), text("A cat."))
    model = init_chat_model("gpt-5-nano")
    # From URL
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the content of this image."},
            {"type": "image", "url": "https://example.com/path/to/image.jpg"},
        ]
    }
    model.invoke([message])

    # From base64 data
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the content of this image."},
            {
                "type": "image",
                "base64": "AAAAIGZ0eXBtcDQyAAAAAGlzb21tcDQyAAACAGlzb2...",
                "mime_type": "image/jpeg",
            },
        ]
    }
    model.invoke([message])

    prompt = {"type": "text", "text": "Describe the content of this image."}
    assert sent(server, 0)[0]["content"] == [
        prompt, {"type": "image_url", "image_url": {"url": "https://example.com/path/to/image.jpg"}}]
    assert sent(server, 1)[0]["content"] == [prompt, {"type": "image_url", "image_url": {
        "url": "data:image/jpeg;base64,AAAAIGZ0eXBtcDQyAAAAAGlzb21tcDQyAAACAGlzb2..."}}]


def test_multimodal_documents_audio_and_video(server: LoopbackServer) -> None:
    model = init_chat_model("gpt-5-nano")

    def parts(message: dict[str, Any]) -> Any:
        server.add(text("Seen."))
        model.invoke([message])
        return sent(server)[0]["content"][1]

    # From provider-managed File ID (an image): Chat Completions has no part for it
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the content of this image."},
            {"type": "image", "file_id": "file-abc123"},
        ]
    }
    assert parts(message) == {"type": "image", "file_id": "file-abc123"}

    # PDF document input, from URL: no Chat Completions part either (docs/langchain.md, the
    # "standard blocks a provider has no part for" row)
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the content of this document."},
            {"type": "file", "url": "https://example.com/path/to/document.pdf"},
        ]
    }
    assert parts(message) == {"type": "file", "url": "https://example.com/path/to/document.pdf"}

    # From base64 data
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the content of this document."},
            {
                "type": "file",
                "base64": "AAAAIGZ0eXBtcDQyAAAAAGlzb21tcDQyAAACAGlzb2...",
                "mime_type": "application/pdf",
            },
        ]
    }
    assert parts(message) == {"type": "file", "file": {
        "file_data": "data:application/pdf;base64,AAAAIGZ0eXBtcDQyAAAAAGlzb21tcDQyAAACAGlzb2..."}}

    # From provider-managed File ID
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the content of this document."},
            {"type": "file", "file_id": "file-abc123"},
        ]
    }
    assert parts(message) == {"type": "file", "file": {"file_id": "file-abc123"}}

    # Audio input, from base64 data
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the content of this audio."},
            {
                "type": "audio",
                "base64": "AAAAIGZ0eXBtcDQyAAAAAGlzb21tcDQyAAACAGlzb2...",
                "mime_type": "audio/wav",
            },
        ]
    }
    assert parts(message) == {"type": "input_audio", "input_audio": {
        "data": "AAAAIGZ0eXBtcDQyAAAAAGlzb21tcDQyAAACAGlzb2...", "format": "wav"}}

    # Audio and video by file id, and video inline: Chat Completions has no part for them
    # (the same row); they reach it as written.
    for block in ({"type": "audio", "file_id": "file-abc123"},
                  {"type": "video", "base64": "AAAAIGZ0eXBtcDQyAAAAAGlzb21tcDQyAAACAGlzb2...",
                   "mime_type": "video/mp4"},
                  {"type": "video", "file_id": "file-abc123"}):
        message = {"role": "user", "content": [
            {"type": "text", "text": "Describe the content of this media."}, block]}
        assert parts(message) == block


def test_serialization() -> None:
    # langchain_core.load's dumpd/load: rxagent's are messages_to_dict/messages_from_dict
    # (docs/langchain.md, the `langchain_core.load` row).
    message = HumanMessage("What is the capital of France?")

    # Serialize to a plain dict
    serialized = messages_to_dict([message])[0]

    # Deserialize back to a message object
    restored = messages_from_dict([serialized])[0]
    assert json.loads(json.dumps(serialized))["data"]["content"] == (
        "What is the capital of France?")
    assert restored == message
