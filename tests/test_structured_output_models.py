"""``model.with_structured_output`` and ``model.bind_tools`` (LangChain's Models docs), and the
structured answer streaming as it forms, over both wire formats on loopback, with the JSON cut
at awkward places: inside a string, inside an escape, between a key and its colon."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from rxagent import StructuredOutputValidationError, create_agent, to_async_iterator
from rxagent.chat_models import ChatAnthropic, ChatOpenAI
from rxagent.messages import AIMessage, AIMessageChunk
from rxagent.operators import partial_structured
from rxagent.structured_output import ProviderStrategy, ToolStrategy
from rxagent.testing import ScriptedChatModel

from .chat_models.loopback import Reply, serve
from .chat_models.transcripts import (
    MESSAGE_STOP,
    USAGE,
    anthropic_events,
    block_start,
    block_stop,
    json_delta,
    message_delta,
    message_start,
    openai_call,
    openai_chunk,
    sse,
    text_delta,
)


class Movie(BaseModel):
    """A movie with details."""
    title: str = Field(..., description="The title of the movie")
    year: int = Field(..., description="The year the movie was released")
    director: str = Field(..., description="The director of the movie")
    rating: float = Field(..., description="The movie's rating out of 10")


INCEPTION = {"title": "Inception \"Dream\" \\ é", "year": 2010, "director": "Christopher Nolan",
             "rating": 8.8}
ANSWER = json.dumps(INCEPTION)
# The awkward places: inside a string, inside an escape (\" and \\ and \u00e9), between a key
# and its colon, inside a number, then one byte at a time to the end.
CUTS = [ANSWER.index("Incep") + 3, ANSWER.index('\\"') + 1, ANSWER.index('\\\\') + 1,
        ANSWER.index("\\u00e9") + 3, ANSWER.index('"year"') + 6, ANSWER.index("2010") + 2,
        ANSWER.index("8.8") + 1]


def pieces(text: str = ANSWER) -> list[str]:
    bounds = [0, *sorted(CUTS), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b]]


# -- LangChain's Models docs -----------------------------------------------------------------


def test_with_structured_output_the_docs_example() -> None:
    model = ScriptedChatModel([AIMessage(content="", tool_calls=[
        {"name": "Movie", "args": INCEPTION, "id": "c1"}])])
    model_with_structure = model.with_structured_output(Movie)
    response = model_with_structure.invoke("Provide details about the movie Inception")
    assert response == Movie(**INCEPTION)
    assert model.calls[0].kwargs == {"tool_choice": "Movie"}
    assert [t["name"] for t in model.calls[0].tools] == ["Movie"]


def test_include_raw_gives_the_reply_and_the_parsing_error() -> None:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "Movie", "args": INCEPTION, "id": "c1"}]),
        AIMessage(content="", tool_calls=[{"name": "Movie", "args": {"title": "x"}, "id": "c2"}]),
    ])
    structured = model.with_structured_output(Movie, include_raw=True)
    good = structured.invoke("Inception")
    assert good["parsed"] == Movie(**INCEPTION) and good["parsing_error"] is None
    assert isinstance(good["raw"], AIMessage)
    bad = structured.invoke("Inception")
    assert bad["parsed"] is None
    assert isinstance(bad["parsing_error"], StructuredOutputValidationError)


def test_a_typed_dict_or_json_schema_answers_with_a_dict() -> None:
    class MovieDict(TypedDict):
        """A movie."""
        title: str
        year: int

    for schema in (MovieDict, {"title": "MovieDict", "type": "object", "properties": {
            "title": {"type": "string"}, "year": {"type": "integer"}}}):
        model = ScriptedChatModel([AIMessage(content="", tool_calls=[
            {"name": "MovieDict", "args": {"title": "Up", "year": 2009}, "id": "c"}])])
        assert model.with_structured_output(schema).invoke("Up") == {"title": "Up", "year": 2009}


def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It's sunny in {location}."


def test_bind_tools_with_tool_choice() -> None:
    model = ScriptedChatModel([AIMessage(content="", tool_calls=[
        {"name": "get_weather", "args": {"location": "Boston"}, "id": "c"}])])
    model_with_tools = model.bind_tools([get_weather], tool_choice="any")
    response = model_with_tools.invoke("What's the weather like in Boston?")
    for tool_call in response.tool_calls:
        assert tool_call["name"] == "get_weather"
        assert tool_call["args"] == {"location": "Boston"}
    assert model.calls[0].kwargs == {"tool_choice": "any"}
    assert [t["name"] for t in model.calls[0].tools] == ["get_weather"]


# -- the request bodies, as LangChain's providers send them --------------------------------


def openai_text(parts: list[str]) -> str:
    return sse(openai_chunk({"role": "assistant", "content": ""}),
               *(openai_chunk({"content": p}) for p in parts),
               openai_chunk(finish="stop"), openai_chunk(usage=USAGE, choices=False))


def openai_tool(parts: list[str], name: str = "Movie") -> str:
    return sse(openai_chunk({"role": "assistant", "content": None, "tool_calls": [
        openai_call(0, id="call_1", name=name, args="")]}),
        *(openai_chunk({"tool_calls": [openai_call(0, args=p)]}) for p in parts),
        openai_chunk(finish="tool_calls"), openai_chunk(usage=USAGE, choices=False))


def anthropic_text(parts: list[str]) -> str:
    return anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""}),
                            *(text_delta(0, p) for p in parts), block_stop(0),
                            message_delta("end_turn", 12), MESSAGE_STOP)


def anthropic_tool(parts: list[str], name: str = "Movie") -> str:
    return anthropic_events(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}),
        *(json_delta(0, p) for p in parts), block_stop(0), message_delta("tool_use", 12),
        MESSAGE_STOP)


def openai_model(url: str) -> ChatOpenAI:
    return ChatOpenAI("gpt-4o-mini", base_url=url + "/v1", api_key="sk-test")


def anthropic_model(url: str) -> ChatAnthropic:
    return ChatAnthropic("claude-sonnet-4-5-20250929", base_url=url, api_key="sk-ant-test")


WIRES: dict[str, tuple[Any, Any, Any]] = {
    # name: (model, native reply, tool reply)
    "openai": (openai_model, openai_text, openai_tool),
    "anthropic": (anthropic_model, anthropic_text, anthropic_tool),
}


async def partials(structured: Any) -> list[Any]:
    with anyio.fail_after(10):
        return [p async for p in to_async_iterator(structured.stream("Inception"))]


def check_partials(seen: list[Any]) -> None:
    """Each partial object grows from the one before; the last is the whole answer."""
    assert seen[-1] == Movie(**INCEPTION)
    titles = [p.title for p in seen[:-1] if p.title is not None]
    assert titles and all(INCEPTION["title"].startswith(t) for t in titles)
    assert len(set(titles)) > 3  # the title grew inside its string
    # A number cut in two is never shown half: 20 of 2010 never appears.
    assert {p.year for p in seen[:-1]} <= {None, 2010}
    assert {p.rating for p in seen[:-1]} <= {None, 8.8}


@pytest.mark.anyio
@pytest.mark.parametrize("wire", list(WIRES))
@pytest.mark.parametrize("piece", [1, None], ids=["1-byte", "whole-events"])
async def test_the_native_answer_streams_as_it_forms(wire: str, piece: int | None) -> None:
    make, native, _ = WIRES[wire]
    async with serve(Reply([native(pieces())], piece=piece)) as server:
        seen = await partials(make(server.url).with_structured_output(Movie,
                                                                      method="json_schema"))
    check_partials(seen)
    body = server.requests[0].json
    if wire == "openai":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == "Movie"
    else:
        assert body["output_config"]["format"]["type"] == "json_schema"
        assert body["output_config"]["format"]["schema"]["additionalProperties"] is False
        assert "response_format" not in body


@pytest.mark.anyio
@pytest.mark.parametrize("wire", list(WIRES))
@pytest.mark.parametrize("piece", [1, None], ids=["1-byte", "whole-events"])
async def test_the_tool_answer_streams_as_it_forms(wire: str, piece: int | None) -> None:
    make, _, tool = WIRES[wire]
    async with serve(Reply([tool(pieces())], piece=piece)) as server:
        seen = await partials(make(server.url).with_structured_output(
            Movie, method="function_calling"))
    check_partials(seen)
    body = server.requests[0].json
    assert body["tool_choice"] == ({"type": "function", "function": {"name": "Movie"}}
                                   if wire == "openai" else {"type": "tool", "name": "Movie"})


@pytest.mark.anyio
@pytest.mark.parametrize("wire", list(WIRES))
async def test_an_agent_run_streams_its_answer_through_the_operator(wire: str) -> None:
    make, native, tool = WIRES[wire]
    for fmt, reply in ((ToolStrategy(Movie), tool), (ProviderStrategy(Movie), native)):
        async with serve(Reply([reply(pieces())], piece=1)) as server:
            agent = create_agent(make(server.url), [], response_format=fmt)
            with anyio.fail_after(10):
                seen = [p async for p in to_async_iterator(
                    agent.observe({"messages": ["Inception"]}).pipe(partial_structured(Movie)))]
        check_partials(seen)
        body = server.requests[0].json
        if isinstance(fmt, ToolStrategy):
            assert body["tool_choice"] == ("required" if wire == "openai" else {"type": "any"})
        elif wire == "openai":
            assert body["response_format"]["json_schema"]["strict"] is False
        else:
            assert body["output_config"]["format"]["type"] == "json_schema"


@pytest.mark.anyio
async def test_a_stream_that_ends_without_a_whole_answer_fails() -> None:
    async with serve(Reply([openai_text(['{"title": "x"'])])) as server:
        structured = openai_model(server.url).with_structured_output(Movie)
        with pytest.raises(StructuredOutputValidationError):
            await partials(structured)


def test_the_operator_reads_a_models_chunks_too() -> None:
    chunks = [AIMessageChunk(content=p, id="m") for p in pieces()]
    chunks.append(AIMessageChunk(content="", id="m", chunk_position="last"))
    import reactivex

    seen: list[Any] = []
    reactivex.from_iterable(chunks).pipe(partial_structured(Movie)).subscribe(seen.append)
    check_partials(seen)
