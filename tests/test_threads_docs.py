"""Programs of LangGraph's human-in-the-loop and short-term memory docs that need no middleware,
with only their imports (and the model, a scripted one) changed."""

from __future__ import annotations

from typing import Any

from rxagent import create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage
from rxagent.testing import ScriptedChatModel
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
