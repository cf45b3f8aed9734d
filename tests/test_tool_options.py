"""LangChain's tool options: ``args_schema``, ``return_direct``,
``response_format="content_and_artifact"``, ``InjectedToolCallId`` and a tool that returns
``Command(update=...)``, under an agent and, for the state keys, on a thread."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

import rxagent
from rxagent import create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, ToolMessage
from rxagent.store import InMemoryStore
from rxagent.testing import ScriptedChatModel
from rxagent.tools import InjectedState, InjectedStore, InjectedToolCallId, tool
from rxagent.types import Command

CONFIG = {"configurable": {"thread_id": "1"}}


def calling(name: str, args: dict[str, Any], call_id: str = "c1") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


class Search(BaseModel):
    """What to search for."""

    query: str = Field(description="the words to look for")
    limit: int = Field(default=3, ge=1, description="at most this many")


def test_args_schema_describes_and_checks_the_arguments() -> None:
    @tool(args_schema=Search)
    def search(query: str, limit: int = 3) -> str:
        """Search the web."""
        return f"{limit} results for {query}"

    spec = search.tool_spec()
    assert spec["parameters"]["properties"]["query"]["description"] == "the words to look for"
    assert spec["parameters"]["required"] == ["query"]
    assert search.invoke({"query": "rx", "limit": 2}) == "2 results for rx"
    with pytest.raises(rxagent.InvalidToolArgumentsError, match="limit"):
        search.invoke({"query": "rx", "limit": 0})
    with pytest.raises(rxagent.ToolDefinitionError, match=r"\['query'\]"):
        tool("bad", args_schema=Search)(lambda limit: "x")
    with pytest.raises(rxagent.ToolDefinitionError, match="pydantic model"):
        tool("bad", args_schema=dict)(lambda query: "x")  # type: ignore[arg-type]


def test_return_direct_ends_the_run_with_the_tools_result() -> None:
    @tool(return_direct=True)
    def answer(text: str) -> str:
        """Answer the user directly."""
        return text.upper()

    model = ScriptedChatModel([calling("answer", {"text": "done"}), "never asked"])
    agent = create_agent(model, [answer])
    final = agent.invoke({"messages": [("user", "go")]})
    assert [m.type for m in final["messages"]] == ["human", "ai", "tool"]
    assert final["messages"][-1].content == "DONE"
    assert model.remaining == 1  # the model was not called after the tool
    again = create_agent(ScriptedChatModel([calling("answer", {"text": "x"})]), [answer])
    steps = [next(iter(u)) for u in again.stream({"messages": [("user", "go")]},
                                                 stream_mode="updates")]
    assert steps == ["model", "tools"]


def test_content_and_artifact_keeps_the_artifact_from_the_model() -> None:
    @tool(response_format="content_and_artifact")
    def fetch(n: int) -> tuple[str, list[int]]:
        """Fetch numbers."""
        return f"{n} numbers", list(range(n))

    model = ScriptedChatModel([calling("fetch", {"n": 3}), "ok"])
    final = create_agent(model, [fetch]).invoke({"messages": [("user", "go")]})
    result = final["messages"][2]
    assert isinstance(result, ToolMessage)
    assert result.content == "3 numbers" and result.artifact == [0, 1, 2]
    # The model sees the content only.
    assert [m.content for m in model.calls[1].messages if isinstance(m, ToolMessage)] == [
        "3 numbers"]

    @tool(response_format="content_and_artifact")
    def wrong() -> str:
        """Forget the artifact."""
        return "just text"

    bad = create_agent(ScriptedChatModel([calling("wrong", {}), "ok"]), [wrong]).invoke(
        {"messages": [("user", "go")]})["messages"][2]
    assert bad.status == "error" and "(content, artifact)" in bad.content


class Profile(rxagent.AgentState):
    user_name: str


def test_a_tool_updates_the_state_with_a_command() -> None:
    @tool
    def remember_name(name: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
        """Remember the user's name."""
        return Command(update={
            "user_name": name,
            "messages": [ToolMessage(content=f"noted {name}", tool_call_id=tool_call_id)],
        })

    assert "tool_call_id" not in remember_name.tool_spec()["parameters"]["properties"]
    model = ScriptedChatModel([calling("remember_name", {"name": "Ann"}, "call_7"),
                               "Hi Ann", "Still Ann"])
    agent = create_agent(model, [remember_name], state_schema=Profile,
                         checkpointer=InMemorySaver())
    updates = list(agent.stream({"messages": [("user", "I'm Ann")]}, CONFIG,
                                stream_mode="updates"))
    tools_update = updates[1]["tools"]
    assert tools_update["user_name"] == "Ann"
    assert tools_update["messages"][0].tool_call_id == "call_7"
    assert agent.get_state(CONFIG).values["user_name"] == "Ann"
    final = agent.invoke({"messages": [("user", "who am I?")]}, CONFIG)
    assert final["user_name"] == "Ann" and final["messages"][-1].text == "Still Ann"


def test_a_command_that_does_not_answer_its_call_is_the_tools_error() -> None:
    @tool
    def sloppy() -> Command:
        """Update without answering."""
        return Command(update={"messages": []})

    final = create_agent(ScriptedChatModel([calling("sloppy", {}), "ok"]), [sloppy]).invoke(
        {"messages": [("user", "go")]})
    assert final["messages"][2].status == "error"
    assert "without answering its call" in final["messages"][2].content


def test_a_json_schema_args_schema_is_shown_as_written_and_the_call_still_checked() -> None:
    schema = {"type": "object", "properties": {"query": {"type": "string"}},
              "required": ["query"]}

    @tool(args_schema=schema)
    def search(query: str) -> str:
        """Search."""
        return query

    schema["properties"]["query"]["type"] = "number"  # the tool kept its own copy
    assert search.tool_spec()["parameters"] == {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
    assert search.invoke({"query": "q"}) == "q"
    with pytest.raises(rxagent.InvalidToolArgumentsError):
        search.invoke({"query": "q", "page": 2})


def test_a_json_schema_args_schema_must_describe_an_object() -> None:
    with pytest.raises(rxagent.ToolDefinitionError, match="JSON schema of an object"):
        tool("search", args_schema={"type": "string"})(lambda query: query)


def test_a_list_of_content_blocks_stays_the_tool_messages_content() -> None:
    blocks = [{"type": "text", "text": "Screenshot:"}, {"type": "image", "url": "https://x/p.png"}]

    @tool
    def shoot() -> list[dict[str, str]]:
        """Shoot."""
        return blocks

    @tool
    def rows() -> list[dict[str, int]]:
        """Rows."""
        return [{"id": 1}]

    model = ScriptedChatModel([AIMessage("", tool_calls=[
        {"name": "shoot", "args": {}, "id": "c1"}, {"name": "rows", "args": {}, "id": "c2"}]),
        "Done."])
    result = create_agent(model, tools=[shoot, rows]).invoke(
        {"messages": [{"role": "user", "content": "go"}]})
    contents = {m.tool_call_id: m.content for m in result["messages"]
                if isinstance(m, ToolMessage)}
    assert contents == {"c1": blocks, "c2": '[{"id": 1}]'}  # other lists stay JSON text


def test_the_bare_injection_markers_as_hints() -> None:
    @tool
    def count(state: InjectedState, store: InjectedStore) -> str:
        """Count."""
        return f"{len(state['messages'])} {store.get(('k',), 'v').value['n']}"

    assert count.tool_spec()["parameters"]["properties"] == {}
    store = InMemoryStore()
    store.put(("k",), "v", {"n": 7})
    model = ScriptedChatModel([calling("count", {}), "Done."])
    result = create_agent(model, tools=[count], store=store).invoke(
        {"messages": [{"role": "user", "content": "go"}]})
    assert result["messages"][2].content == "2 7"
