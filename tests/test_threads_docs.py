"""Programs of LangGraph's human-in-the-loop and short-term memory docs that need no middleware,
with only their imports (and the model, a scripted one) changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rxagent import AgentState, create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, ToolMessage
from rxagent.testing import ScriptedChatModel
from rxagent.tools import ToolRuntime, tool
from rxagent.types import Command, interrupt


def booking_model() -> ScriptedChatModel:
    call = AIMessage(content="", tool_calls=[
        {"name": "book_hotel", "args": {"hotel_name": "McKittrick hotel"}, "id": "call_1"}])
    return ScriptedChatModel([call, "Your stay is booked."])


def test_review_a_tool_call_with_interrupt_in_the_tool() -> None:
    # The docs' "interrupt inside a tool" example, as written there.
    def book_hotel(hotel_name: str):  # type: ignore[no-untyped-def]
        """Book a hotel"""
        response = interrupt(
            f"Trying to call `book_hotel` with args {{'hotel_name': {hotel_name}}}. "
            "Please approve or suggest edits."
        )
        if response["type"] == "accept":
            pass
        elif response["type"] == "edit":
            hotel_name = response["args"]["hotel_name"]
        else:
            raise ValueError(f"Unknown response type: {response['type']}")
        return f"Successfully booked a stay at {hotel_name}."

    def run(answer: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        checkpointer = InMemorySaver()
        agent = create_agent(model=booking_model(), tools=[book_hotel],
                             checkpointer=checkpointer)
        config = {"configurable": {"thread_id": "1"}}
        first = list(agent.stream(
            {"messages": [{"role": "user", "content": "book a stay at McKittrick hotel"}]},
            config,
        ))
        second = list(agent.stream(Command(resume=answer), config))
        return first, second

    first, second = run({"type": "accept"})
    assert [list(chunk) for chunk in first] == [["model"], ["__interrupt__"]]
    assert "Please approve or suggest edits." in first[-1]["__interrupt__"][0].value
    assert [list(chunk) for chunk in second] == [["tools"], ["model"]]
    assert second[0]["tools"]["messages"][0].content == (
        "Successfully booked a stay at McKittrick hotel.")
    _, edited = run({"type": "edit", "args": {"hotel_name": "McKittrick Hotel"}})
    assert edited[0]["tools"]["messages"][0].content == (
        "Successfully booked a stay at McKittrick Hotel.")


def test_short_term_memory_the_first_example() -> None:
    def get_user_info() -> str:
        """Look up user info."""
        return "Bob, who likes the sea."

    agent = create_agent(
        ScriptedChatModel(["Hi Bob!", "You are Bob."]),
        tools=[get_user_info],
        checkpointer=InMemorySaver(),
    )
    agent.invoke(
        {"messages": [{"role": "user", "content": "Hi! My name is Bob."}]},
        {"configurable": {"thread_id": "1"}},
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "What's my name?"}]},
        {"configurable": {"thread_id": "1"}},
    )
    assert [m.text for m in result["messages"]] == [
        "Hi! My name is Bob.", "Hi Bob!", "What's my name?", "You are Bob."]



# The short-term memory docs' programs with ToolRuntime (module-level, as in the docs: a tool's
# hints are read from its module).


class UserIdState(AgentState):
    user_id: str


@tool
def get_user_info(runtime: ToolRuntime) -> str:
    """Look up user info."""
    user_id = runtime.state["user_id"]
    return "User is John Smith" if user_id == "user_123" else "Unknown user"


def test_read_short_term_memory_in_a_tool() -> None:
    assert get_user_info.tool_spec()["parameters"]["properties"] == {}
    call = AIMessage(content="", tool_calls=[{"name": "get_user_info", "args": {}, "id": "c1"}])
    agent = create_agent(
        model=ScriptedChatModel([call, "You are John Smith."]),
        tools=[get_user_info],
        state_schema=UserIdState,
    )
    result = agent.invoke({
        "messages": "look up user information",
        "user_id": "user_123",
    })
    assert result["messages"][2].content == "User is John Smith"
    assert result["messages"][-1].content == "You are John Smith."


class UserNameState(AgentState):
    user_name: str


@dataclass
class CustomContext:
    user_id: str


@tool
def update_user_info(runtime: ToolRuntime[CustomContext, UserNameState]) -> Command:
    """Look up and update user info."""
    user_id = runtime.context.user_id
    name = "John Smith" if user_id == "user_123" else "Unknown user"
    return Command(update={
        "user_name": name,
        # update the message history
        "messages": [
            ToolMessage(
                "Successfully looked up user information",
                tool_call_id=runtime.tool_call_id,
            )
        ],
    })


@tool
def greet(runtime: ToolRuntime[CustomContext, UserNameState]) -> str | Command:
    """Use this to greet the user once you found their info."""
    user_name = runtime.state.get("user_name", None)
    if user_name is None:
        return Command(update={
            "messages": [
                ToolMessage(
                    "Please call the 'update_user_info' tool it will get and update the "
                    "user's name.",
                    tool_call_id=runtime.tool_call_id,
                )
            ]
        })
    return f"Hello {user_name}!"


def test_write_short_term_memory_from_tools() -> None:
    script = [
        AIMessage(content="", tool_calls=[{"name": "update_user_info", "args": {}, "id": "u"}]),
        AIMessage(content="", tool_calls=[{"name": "greet", "args": {}, "id": "g"}]),
        "Greeted.",
    ]
    agent = create_agent(
        model=ScriptedChatModel(script),
        tools=[update_user_info, greet],
        state_schema=UserNameState,
        context_schema=CustomContext,
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "greet the user"}]},
        context=CustomContext(user_id="user_123"),
    )
    assert result["user_name"] == "John Smith"
    assert [m.content for m in result["messages"][2::2]] == [
        "Successfully looked up user information", "Hello John Smith!"]
    # Before the name is known, greet asks for it, through a Command of its own.
    early = create_agent(
        ScriptedChatModel([script[1], "ok"]), [update_user_info, greet],
        state_schema=UserNameState, context_schema=CustomContext,
    ).invoke({"messages": "greet"}, context=CustomContext(user_id="x"))
    assert early["messages"][2].content.startswith("Please call the 'update_user_info' tool")
