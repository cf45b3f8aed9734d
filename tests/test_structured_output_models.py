"""``model.with_structured_output`` and ``model.bind_tools`` (LangChain's Models docs), and the
structured answer streaming as it forms, over both wire formats on loopback, with the JSON cut
at awkward places: inside a string, inside an escape, between a key and its colon."""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Any

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
    return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b]]


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


# -- LangChain's Models docs over OpenAI's wire: tool calling and structured output ----------

from rxagent.tools import tool  # noqa: E402

from .chat_models.loopback import serve_in_thread  # noqa: E402


def calls_reply(*calls: tuple[str, str, list[str]]) -> Reply:
    """An OpenAI reply calling tools, each ``(id, name, argument pieces)``."""
    events = [openai_chunk({"role": "assistant", "content": None})]
    for index, (call_id, name, parts) in enumerate(calls):
        events.append(openai_chunk({"tool_calls": [openai_call(index, id=call_id, name=name,
                                                               args="")]}))
        events += [openai_chunk({"tool_calls": [openai_call(index, args=p)]}) for p in parts]
    events += [openai_chunk(finish="tool_calls"), openai_chunk(usage=USAGE, choices=False)]
    return Reply([sse(*events)])


BOSTON = ("call_1", "get_weather", ['{"lo', "catio", 'n": "B', "osto", 'n"}'])
TOKYO = ("call_2", "get_weather", ['{"lo', "catio", 'n": "T', "okyo", '"}'])


def test_the_models_docs_tool_calling_examples() -> None:
    @tool
    def get_weather(location: str) -> str:
        """Get the weather at a location."""
        return f"It's sunny in {location}."

    text = Reply([openai_text(["The current weather in Boston is 72°F and sunny."])])
    with serve_in_thread(calls_reply(BOSTON), calls_reply(BOSTON), text,
                         calls_reply(BOSTON, TOKYO), calls_reply(BOSTON),
                         calls_reply(BOSTON, TOKYO), calls_reply(BOSTON)) as (server, _):
        model = ChatOpenAI("gpt-5-nano", base_url=server.url + "/v1", api_key="sk-test")

        model_with_tools = model.bind_tools([get_weather])

        response = model_with_tools.invoke("What's the weather like in Boston?")
        assert [(c["name"], c["args"]) for c in response.tool_calls] == [
            ("get_weather", {"location": "Boston"})]

        # Tool execution loop
        messages: list[Any] = [{"role": "user", "content": "What's the weather in Boston?"}]
        ai_msg = model_with_tools.invoke(messages)
        messages.append(ai_msg)
        for tool_call in ai_msg.tool_calls:
            tool_result = get_weather.invoke(tool_call)
            messages.append(tool_result)
        final_response = model_with_tools.invoke(messages)
        assert final_response.text == "The current weather in Boston is 72°F and sunny."
        sent = server.requests[2].json["messages"]
        assert sent[-1] == {"role": "tool", "content": "It's sunny in Boston.",
                            "tool_call_id": "call_1"}

        # Forcing tool calls, parallel tool calls turned off
        model_with_tools = model.bind_tools([get_weather], tool_choice="any",
                                            parallel_tool_calls=False)
        response = model_with_tools.invoke("What's the weather in Boston and Tokyo?")
        assert [c["args"]["location"] for c in response.tool_calls] == ["Boston", "Tokyo"]
        assert server.requests[3].json["tool_choice"] == "required"
        assert server.requests[3].json["parallel_tool_calls"] is False
        model_with_tools = model.bind_tools([get_weather], tool_choice="get_weather")
        model_with_tools.invoke("What's the weather in Boston?")
        assert server.requests[4].json["tool_choice"] == {
            "type": "function", "function": {"name": "get_weather"}}

        # Streaming tool calls
        model_with_tools = model.bind_tools([get_weather])
        printed = []
        for chunk in model_with_tools.stream("What's the weather in Boston and Tokyo?"):
            for tool_chunk in chunk.tool_call_chunks:
                if name := tool_chunk.get("name"):
                    printed.append(f"Tool: {name}")
                if id_ := tool_chunk.get("id"):
                    printed.append(f"ID: {id_}")
                if args := tool_chunk.get("args"):
                    printed.append(f"Args: {args}")
        assert printed == ["Tool: get_weather", "ID: call_1", "Args: {\"lo", "Args: catio",
                           "Args: n\": \"B", "Args: osto", "Args: n\"}",
                           "Tool: get_weather", "ID: call_2", "Args: {\"lo", "Args: catio",
                           "Args: n\": \"T", "Args: okyo", "Args: \"}"]

        # Accumulate tool calls
        gathered = None
        for chunk in model_with_tools.stream("What's the weather in Boston?"):
            gathered = chunk if gathered is None else gathered + chunk
        assert gathered is not None
        assert gathered.tool_calls[0]["args"] == {"location": "Boston"}


class MovieDict(TypedDict):
    """A movie with details."""
    title: Annotated[str, ..., "The title of the movie"]
    year: Annotated[int, ..., "The year the movie was released"]
    director: Annotated[str, ..., "The director of the movie"]
    rating: Annotated[float, ..., "The movie's rating out of 10"]


def test_the_models_docs_structured_output_examples() -> None:
    json_schema = {
        "title": "Movie",
        "description": "A movie with details",
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "The title of the movie"},
            "year": {"type": "integer", "description": "The year the movie was released"},
            "director": {"type": "string", "description": "The director of the movie"},
            "rating": {"type": "number", "description": "The movie's rating out of 10"},
        },
        "required": ["title", "year", "director", "rating"]
    }
    answer = Reply([openai_text(pieces())])
    with serve_in_thread(answer, answer, answer, answer) as (server, _):
        model = ChatOpenAI("gpt-5-nano", base_url=server.url + "/v1", api_key="sk-test")

        model_with_structure = model.with_structured_output(Movie)
        response = model_with_structure.invoke("Provide details about the movie Inception")
        assert response == Movie(**INCEPTION)
        assert server.requests[0].json["response_format"]["json_schema"]["name"] == "Movie"

        model_with_structure = model.with_structured_output(MovieDict)
        assert model_with_structure.invoke("Inception") == INCEPTION

        model_with_structure = model.with_structured_output(
            json_schema,
            method="json_schema",
        )
        assert model_with_structure.invoke("Inception") == INCEPTION
        assert server.requests[2].json["response_format"]["json_schema"]["schema"] == (
            json_schema)

        model_with_structure = model.with_structured_output(Movie, include_raw=True)
        response = model_with_structure.invoke("Provide details about the movie Inception")
        assert set(response) == {"raw", "parsed", "parsing_error"}
        assert response["parsed"] == Movie(**INCEPTION)
        assert response["parsing_error"] is None


# -- stream(stream_mode="partial_output"): the agent's answer as it forms --------------------


@pytest.mark.anyio
@pytest.mark.parametrize("wire", list(WIRES))
async def test_the_partial_output_mode_over_both_wires(wire: str) -> None:
    make, native, tool = WIRES[wire]
    for fmt, reply in ((ToolStrategy(Movie), tool), (ProviderStrategy(Movie), native)):
        async with serve(Reply([reply(pieces())], piece=1)) as server:
            agent = create_agent(make(server.url), [], response_format=fmt)
            with anyio.fail_after(10):
                seen = [p async for p in agent.astream({"messages": ["Inception"]},
                                                       stream_mode="partial_output")]
        check_partials(seen)


def test_the_partial_output_mode_beside_others_and_after_a_tool_round() -> None:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"location": "x"},
                                           "id": "c0"}]),
        AIMessage(content="", tool_calls=[{"name": "Movie", "args": INCEPTION, "id": "c1"}]),
    ])
    agent = create_agent(model, [get_weather], response_format=ToolStrategy(Movie))
    out = list(agent.stream({"messages": ["Inception"]},
                            stream_mode=["updates", "partial_output"]))
    modes = [mode for mode, _ in out]
    assert modes[:2] == ["updates", "updates"]  # the tool round gives no partial answer
    partial = [p for mode, p in out if mode == "partial_output"]
    check_partials(partial)
    assert modes[-1] == "updates"  # the model step's update comes after its answer formed


def test_the_partial_output_mode_needs_a_response_format() -> None:
    from rxagent import UsageError

    with pytest.raises(UsageError, match="response_format"):
        create_agent(ScriptedChatModel(["hi"])).stream({"messages": ["hi"]},
                                                       stream_mode="partial_output")


class Complaint(BaseModel):
    """A complaint."""
    issue: str
    severity: int


def test_a_union_streams_the_member_the_model_chose() -> None:
    complaint = {"issue": 'late "again"', "severity": 3}
    text = json.dumps(complaint)
    model = ScriptedChatModel([AIMessage(content="", tool_calls=[
        {"name": "Complaint", "args": complaint, "id": "c1"}])])
    agent = create_agent(model, [], response_format=ToolStrategy(Movie | Complaint))
    seen = list(agent.stream({"messages": ["x"]}, stream_mode="partial_output"))
    assert seen[-1] == Complaint(**complaint)
    assert {type(p).__name__ for p in seen[:-1]} == {"PartialComplaint"}
    import reactivex

    chunks = [AIMessageChunk(content="", id="m", tool_call_chunks=[
        {"name": "Complaint", "args": "", "id": "c", "index": 0}])]
    chunks += [AIMessageChunk(content="", id="m", tool_call_chunks=[{"args": ch, "index": 0}])
               for ch in text]
    chunks.append(AIMessageChunk(content="", id="m", chunk_position="last"))
    out: list[Any] = []
    reactivex.from_iterable(chunks).pipe(partial_structured(Movie | Complaint)).subscribe(
        out.append)
    assert out[-1] == Complaint(**complaint)
    assert all(type(p).__name__ in ("PartialComplaint", "Complaint") for p in out)
