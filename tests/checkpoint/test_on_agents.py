"""Each saver under an agent: a conversation with a tool, an interrupt and its resume, read back
through a second saver object on the same store (what another process sees), on asyncio and trio
as well as from sync code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxagent import create_agent
from rxagent.checkpoint import BaseCheckpointSaver, InMemorySaver
from rxagent.checkpoint.redis import RedisSaver
from rxagent.checkpoint.sqlite import SqliteSaver
from rxagent.messages import AIMessage
from rxagent.testing import ScriptedChatModel
from rxagent.tools import tool
from rxagent.types import Command, interrupt

SAVERS = ["sqlite", "redis"]


@pytest.fixture
def two_savers(request: pytest.FixtureRequest, tmp_path: Path
               ) -> Iterator[tuple[BaseCheckpointSaver, BaseCheckpointSaver]]:
    """Two saver objects on one store: the second is another process's view of it."""
    if request.param == "sqlite":
        with SqliteSaver(tmp_path / "threads.db") as first, \
                SqliteSaver(tmp_path / "threads.db") as second:
            yield first, second
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"test-{uuid.uuid4()}:"
        with RedisSaver(url, prefix=prefix) as first, RedisSaver(url, prefix=prefix) as second:
            yield first, second


def booking(saver: BaseCheckpointSaver) -> tuple[Any, list[str]]:
    booked: list[str] = []

    @tool
    def book(hotel: str) -> str:
        """Book a hotel."""
        if interrupt({"confirm": hotel}) == "yes":
            booked.append(hotel)
        return f"booked {hotel}"

    @tool
    def weather(city: str) -> str:
        """The weather."""
        return f"sunny in {city}"

    calls = AIMessage(content="", tool_calls=[
        {"name": "weather", "args": {"city": "Paris"}, "id": "w1"},
        {"name": "book", "args": {"hotel": "Ritz"}, "id": "b1"},
    ])
    agent = create_agent(ScriptedChatModel(["Hello Ann.", calls, "Done, Ann."]),
                         [weather, book], checkpointer=saver)
    return agent, booked


CONFIG = {"configurable": {"thread_id": "ann"}}


@pytest.mark.parametrize("two_savers", SAVERS, indirect=True)
def test_a_conversation_with_an_interrupt_on_a_real_store(
    two_savers: tuple[BaseCheckpointSaver, BaseCheckpointSaver]
) -> None:
    first, second = two_savers
    agent, booked = booking(first)
    agent.invoke({"messages": [("user", "I'm Ann")]}, CONFIG)
    stopped = agent.invoke({"messages": [("user", "Weather, then book the Ritz")]}, CONFIG)
    assert [i.value for i in stopped["__interrupt__"]] == [{"confirm": "Ritz"}]
    # Another saver object sees the same thread, pending interrupt and finished call included.
    reader, _ = booking(second)
    state = reader.get_state(CONFIG)
    assert state.next == ("tools",) and [i.value for i in state.interrupts] == [
        {"confirm": "Ritz"}]
    assert [t.result["messages"][0].content for t in state.tasks if t.result] == [
        "sunny in Paris"]
    final = agent.invoke(Command(resume="yes"), CONFIG)
    assert booked == ["Ritz"]
    assert [m.type for m in final["messages"]] == [
        "human", "ai", "human", "ai", "tool", "tool", "ai"]
    assert [m.text for m in reader.get_state(CONFIG).values["messages"]] == [
        m.text for m in final["messages"]]
    history = list(reader.get_state_history(CONFIG))
    assert [h.metadata["step"] for h in history] == list(range(6, -2, -1))


@pytest.mark.anyio
@pytest.mark.parametrize("two_savers", SAVERS, indirect=True)
async def test_the_async_forms_on_a_real_store(
    two_savers: tuple[BaseCheckpointSaver, BaseCheckpointSaver]
) -> None:
    first, second = two_savers
    agent, booked = booking(first)
    await agent.ainvoke({"messages": [("user", "I'm Ann")]}, CONFIG)
    updates = [u async for u in agent.astream(
        {"messages": [("user", "Book")]}, CONFIG, stream_mode="updates", durability="sync")]
    assert "__interrupt__" in updates[-1]
    reader, _ = booking(second)
    assert (await reader.aget_state(CONFIG)).next == ("tools",)
    await agent.ainvoke(Command(resume="no"), CONFIG)
    assert booked == []
    history = [h async for h in reader.aget_state_history(CONFIG, limit=3)]
    assert len(history) == 3 and history[0].next == ()


def test_the_in_memory_saver_is_the_reference() -> None:
    agent, booked = booking(InMemorySaver())
    agent.invoke({"messages": [("user", "I'm Ann")]}, CONFIG)
    agent.invoke({"messages": [("user", "Book")]}, CONFIG)
    agent.invoke(Command(resume="yes"), CONFIG)
    assert booked == ["Ritz"]
