"""A tool's exception inside the ``wrap_tool_call`` chain: raised to the wrappers, as
LangChain's handler raises it, so the agents docs' error-handling middleware works; what no
wrapper handles is answered as without middleware (rxagent's tools answer their failures)."""

from __future__ import annotations

from typing import Any

import pytest

from rxagent import create_agent
from rxagent.messages import AIMessage, ToolMessage
from rxagent.middleware import wrap_tool_call
from rxagent.testing import FunctionChatModel

seen: list[str] = []


def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


def calling(args: dict[str, Any]) -> FunctionChatModel:
    def reply(messages: Any, tools: Any) -> Any:
        if isinstance(messages[-1], ToolMessage):
            return "done"
        return AIMessage(content="", tool_calls=[{"name": "divide", "args": args, "id": "c1"}])
    return FunctionChatModel(reply)


# The agents docs' example, as written.
@wrap_tool_call
def handle_tool_errors(request, handler):  # type: ignore[no-untyped-def]
    """Handle tool execution errors with custom messages."""
    try:
        return handler(request)
    except Exception as e:
        # Return a custom error message to the model
        return ToolMessage(
            content=f"Tool error: Please check your input and try again. ({str(e)})",  # noqa: RUF010 - as the docs write it
            tool_call_id=request.tool_call["id"]
        )


@wrap_tool_call
async def ahandle_tool_errors(request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except ZeroDivisionError as e:
        seen.append(type(e).__name__)
        return ToolMessage(content=f"Tool error: {e}", tool_call_id=request.tool_call["id"])


def answers(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(m.content), m.status) for m in result["messages"] if isinstance(m, ToolMessage)]


def test_the_docs_error_handler_sees_the_tools_exception() -> None:
    agent = create_agent(calling({"a": 1, "b": 0}), tools=[divide],
                         middleware=[handle_tool_errors])
    assert answers(agent.invoke({"messages": "1/0"})) == [
        ("Tool error: Please check your input and try again. (division by zero)", "success")]


@pytest.mark.anyio
async def test_an_async_handler_too_and_unhandled_failures_are_answered() -> None:
    seen.clear()
    agent = create_agent(calling({"a": 1, "b": 0}), tools=[divide],
                         middleware=[ahandle_tool_errors])
    assert answers(await agent.ainvoke({"messages": "1/0"})) == [
        ("Tool error: division by zero", "success")]
    assert seen == ["ZeroDivisionError"]
    docs = create_agent(calling({"a": 1, "b": 0}), tools=[divide],
                        middleware=[handle_tool_errors])  # a sync wrapper in an async run
    assert answers(await docs.ainvoke({"messages": "1/0"}))[0][0].startswith("Tool error: ")

    # Arguments the schema refuses are answered without raising, as LangChain's tool node
    # does; an exception the wrapper lets through is answered as without middleware.
    bad_args = create_agent(calling({"a": "x", "b": 1}), tools=[divide],
                            middleware=[ahandle_tool_errors])
    ((text, status),) = answers(await bad_args.ainvoke({"messages": "x/1"}))
    assert status == "error" and "divide" in text and seen == ["ZeroDivisionError"]

    @wrap_tool_call
    async def catches_nothing(request, handler):  # type: ignore[no-untyped-def]
        try:
            return await handler(request)
        except KeyError:
            raise AssertionError("not a KeyError") from None

    plain = create_agent(calling({"a": 1, "b": 0}), tools=[divide])
    wrapped = create_agent(calling({"a": 1, "b": 0}), tools=[divide],
                           middleware=[catches_nothing])
    expected = [("Error: ZeroDivisionError: division by zero", "error")]
    assert answers(await plain.ainvoke({"messages": "1/0"})) == expected
    assert answers(await wrapped.ainvoke({"messages": "1/0"})) == expected
