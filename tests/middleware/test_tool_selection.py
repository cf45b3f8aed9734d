"""LLMToolSelectorMiddleware: as LangChain's on the same programs, and its errors."""

from __future__ import annotations

from typing import Any

import pytest

import rxagent
import rxagent.middleware as rx_middleware
from rxagent.messages import AIMessage
from rxagent.testing import FunctionChatModel, ScriptedChatModel

from .test_parity import LIBS, QUESTION, Ids, SeenLc, model, prompts, stream, weather


def note(text: str) -> str:
    """Keep a note."""
    return f"noted: {text}"


def lookup(host: str) -> str:
    """Look up a host."""
    return f"{host} is up"


class ToolsLc(SeenLc):
    """LangChain's fake, also keeping the names of the tools each call was bound to."""

    bound: list[Any] = []  # noqa: RUF012 - a pydantic field: each model gets its own copy

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound.append(sorted(t["title"] if isinstance(t, dict) and "title" in t
                                 else getattr(t, "name", None) or t.get("name")
                                 for t in tools))
        return self


def traced(name: str, replies: list[Any]) -> Any:
    """A fake model of ``name``'s kind keeping its prompts (``seen``) and tool names
    (``bound``)."""
    if name == "langchain":
        return ToolsLc(replies=list(replies), seen=[], bound=[])
    fake = model(name, replies)
    bound: list[Any] = []
    inner = fake.fn

    def reply(messages: Any, tools: Any) -> Any:
        bound.append(sorted(t["name"] for t in tools))
        return inner(messages, tools)

    fake.fn = reply
    fake.bound = bound
    return fake


def choose(*names: str) -> list[Any]:
    return [{"name": "ToolSelectionResponse", "args": {"tools": list(names)}, "id": "s1"}]


MAIN = [[{"name": "weather", "args": {"city": "Paris"}, "id": "w1"}], "It is sunny."]
PROGRAMS: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "max one, note always": (dict(max_tools=1, always_include=["note"]),
                             [choose("weather", "lookup"), choose("lookup", "weather")]),
    "a malformed answer, then a good one": (dict(), ["no idea", choose("weather"),
                                                     choose("weather", "weather")]),
    "malformed twice, fall back to all": (dict(max_tools=1, on_parsing_failure="all"),
                                          ["?", "?", choose("lookup")]),
    "malformed, no retry, fall back to a list": (
        dict(max_retries=0, on_parsing_failure=["weather"]), ["?", "?"]),
    "malformed, a function decides": (
        dict(max_retries=0, on_parsing_failure=lambda answer: ["note"]), ["?", "?"]),
}


def selecting(name: str, program: str) -> tuple[Any, Any, Any]:
    lib = LIBS[name]
    options, selections = PROGRAMS[program]
    selector = traced(name, selections)
    fake = traced(name, MAIN)
    agent = lib.agents.create_agent(
        fake, tools=[lib.base.tool(weather), lib.base.tool(note), lib.base.tool(lookup)],
        middleware=[lib.mw.LLMToolSelectorMiddleware(model=selector, **options)])
    return agent, fake, selector


@pytest.mark.parametrize("program", list(PROGRAMS))
@pytest.mark.parametrize("modes", [["updates", "values"], ["updates", "messages"]])
def test_tool_selection_as_in_langchain(modes: list[str], program: str) -> None:
    results = {}
    for name in LIBS:
        agent, fake, selector = selecting(name, program)
        number = Ids()
        results[name] = (stream(agent, QUESTION, modes, number), prompts(fake.seen, number),
                         instructed(prompts(selector.seen, number)), fake.bound)
    assert results["rxagent"] == results["langchain"]


def instructed(prompts: list[Any]) -> list[Any]:
    """The selection prompts with the instructions' wording left out (ours is our own) but
    whether they mention a limit kept."""
    return [[(kind, "limit" if kind == "SystemMessage" and "1" in text else
              "no limit" if kind == "SystemMessage" else text) for kind, text in call]
            for call in prompts]


def test_the_agents_own_model_selects_by_default() -> None:
    results = {}
    for name, lib in LIBS.items():
        fake = traced(name, [choose("note"), *MAIN[:1], choose("note"), MAIN[1]])
        agent = lib.agents.create_agent(
            fake, tools=[lib.base.tool(weather), lib.base.tool(note)],
            middleware=[lib.mw.LLMToolSelectorMiddleware()])
        number = Ids()
        results[name] = (stream(agent, QUESTION, ["updates", "values"], number),
                         instructed(prompts(fake.seen, number)), fake.bound)
    assert results["rxagent"] == results["langchain"]


def selector(*answers: Any) -> ScriptedChatModel:
    return ScriptedChatModel([AIMessage(content="", tool_calls=a) if isinstance(a, list)
                              else a for a in answers])


def test_an_unknown_choice_is_an_error() -> None:
    agent = rxagent.create_agent(ScriptedChatModel(["ok"]), tools=[weather, note], middleware=[
        rx_middleware.LLMToolSelectorMiddleware(model=selector(choose("weather", "nope")))])
    with pytest.raises(rx_middleware.ToolSelectionError, match="invalid tools: \\['nope'\\]"):
        agent.invoke(QUESTION)
    assert issubclass(rx_middleware.ToolSelectionError, ValueError)


def test_malformed_answers_after_the_retries_are_an_error() -> None:
    agent = rxagent.create_agent(ScriptedChatModel(["ok"]), tools=[weather, note], middleware=[
        rx_middleware.LLMToolSelectorMiddleware(model=selector("?", "??"))])
    with pytest.raises(rx_middleware.ToolSelectionError, match="after 1 retries"):
        agent.invoke(QUESTION)


def test_always_include_must_name_a_tool() -> None:
    agent = rxagent.create_agent(ScriptedChatModel(["ok"]), tools=[weather], middleware=[
        rx_middleware.LLMToolSelectorMiddleware(model=selector(), always_include=["nope"])])
    with pytest.raises(rxagent.UsageError, match="nope"):
        agent.invoke(QUESTION)


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"max_tools": 0}])
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(rxagent.UsageError):
        rx_middleware.LLMToolSelectorMiddleware(**kwargs)


def test_no_tools_to_choose_makes_no_selection_call() -> None:
    chooser = selector()
    agent = rxagent.create_agent(ScriptedChatModel(["ok"]), tools=[weather], middleware=[
        rx_middleware.LLMToolSelectorMiddleware(model=chooser, always_include=["weather"])])
    agent.invoke(QUESTION)
    assert chooser.calls == []


@pytest.mark.anyio
async def test_async_runs_offer_the_chosen_tools() -> None:
    offered: list[Any] = []

    def main(messages: Any, tools: Any) -> str:
        offered.append([t["name"] for t in tools])
        return "ok"

    chooser = selector(choose("note"))
    agent = rxagent.create_agent(FunctionChatModel(main), tools=[weather, note], middleware=[
        rx_middleware.LLMToolSelectorMiddleware(model=chooser)])
    parts = [p async for p in agent.astream(QUESTION, stream_mode="messages")]
    assert offered == [["note"]]
    assert [p[0].content for p in parts if p[0].content] == ["ok"]
    assert chooser.calls[0].tools[0]["name"] == "ToolSelectionResponse"


def test_the_sync_form_selects_too() -> None:
    from rxagent.messages import HumanMessage
    from rxagent.middleware import ModelRequest, ModelResponse
    from rxagent.tools import tool

    tools = [tool(weather), tool(note)]
    middleware = rx_middleware.LLMToolSelectorMiddleware(model=selector(choose("note")))
    given: list[Any] = []

    def handler(request: Any) -> Any:
        given.append([t.name for t in request.tools])
        return ModelResponse(result=[AIMessage(content="ok")])

    request = ModelRequest(model=ScriptedChatModel([]), tools=list(tools),
                           messages=[HumanMessage(content="hi")])
    middleware.wrap_model_call(request, handler)
    assert given == [["note"]]
