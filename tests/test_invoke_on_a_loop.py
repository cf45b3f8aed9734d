"""A sync ``invoke()`` from a run's async code would block the run's loop: a ``UsageError``
that names ``await model.ainvoke(...)``; outside any run (a notebook cell) it still works
(issue 14, item 8)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rxagent import UsageError, create_agent
from rxagent.messages import AIMessage, ToolMessage
from rxagent.testing import ScriptedChatModel
from rxagent.tools import tool


def call(name: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": {}, "id": "c1"}])


def tool_result(agent: Any) -> ToolMessage:
    state = agent.invoke({"messages": ["Ask."]})
    return next(m for m in state["messages"] if isinstance(m, ToolMessage))


def test_invoke_in_an_async_tool_is_a_usage_error_naming_ainvoke() -> None:
    inner = ScriptedChatModel(["inner answer"])

    @tool
    async def ask_inner() -> str:
        """Asks another model, wrongly with the sync call."""
        return inner.invoke("q").text

    result = tool_result(create_agent(ScriptedChatModel([call("ask_inner"), "ok"]), [ask_inner]))
    assert result.status == "error"
    assert isinstance(result.artifact, UsageError)
    assert "await model.ainvoke(...)" in str(result.artifact)
    assert inner.calls == []  # the model was never called


def test_ainvoke_in_an_async_tool_works() -> None:
    inner = ScriptedChatModel(["inner answer"])

    @tool
    async def ask_inner() -> str:
        """Asks another model."""
        return (await inner.ainvoke("q")).text

    result = tool_result(create_agent(ScriptedChatModel([call("ask_inner"), "ok"]), [ask_inner]))
    assert (result.status, result.content) == ("success", "inner answer")


@pytest.mark.parametrize("thread", [False, True], ids=["in place", "in a thread"])
def test_invoke_in_a_sync_tool_still_works(thread: bool) -> None:
    inner = ScriptedChatModel(["inner answer"])

    @tool(thread=thread)
    def ask_inner() -> str:
        """Asks another model, blocking."""
        return inner.invoke("q").text

    result = tool_result(create_agent(ScriptedChatModel([call("ask_inner"), "ok"]), [ask_inner]))
    assert (result.status, result.content) == ("success", "inner answer")


def test_invoke_on_a_running_loop_outside_any_run_still_works() -> None:
    # A notebook cell: the thread runs a loop, but no run of ours is under way in it.
    inner = ScriptedChatModel(["cell answer"])

    async def cell() -> str:
        return inner.invoke("q").text

    assert asyncio.run(cell()) == "cell answer"


@pytest.mark.anyio
async def test_invoke_in_an_async_tool_is_a_usage_error_under_asyncio_and_trio() -> None:
    inner = ScriptedChatModel(["inner answer"])

    @tool
    async def ask_inner() -> str:
        """Asks another model, wrongly with the sync call."""
        return inner.invoke("q").text

    agent = create_agent(ScriptedChatModel([call("ask_inner"), "ok"]), [ask_inner])
    state = await agent.ainvoke({"messages": ["Ask."]})
    result = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert isinstance(result.artifact, UsageError)
    assert "await model.ainvoke(...)" in str(result.artifact)
