"""TodoListMiddleware: as LangChain's on the same programs, and under async runs."""

from __future__ import annotations

from typing import Any

import pytest

import rxagent
import rxagent.middleware as rx_middleware
from rxagent.testing import ScriptedChatModel

from .test_parity import LIBS, QUESTION, Ids, model, prompts, stream, weather

PLAN = [{"content": "Look up Paris", "status": "in_progress"},
        {"content": "Answer", "status": "pending"}]
ONE_CALL = [[{"name": "write_todos", "args": {"todos": PLAN}, "id": "t1"}], "Planned."]
TWO_CALLS = [[{"name": "write_todos", "args": {"todos": PLAN}, "id": "t1"},
              {"name": "write_todos", "args": {"todos": PLAN[:1]}, "id": "t2"}], "Sorry."]


def planning(name: str, replies: list[Any], system_prompt: str | None) -> tuple[Any, Any]:
    lib = LIBS[name]
    fake = model(name, replies)
    agent = lib.agents.create_agent(
        fake, tools=[lib.base.tool(weather)], system_prompt=system_prompt,
        middleware=[lib.mw.TodoListMiddleware(system_prompt="Plan with write_todos.",
                                              tool_description="Write the plan.")])
    return agent, fake


@pytest.mark.parametrize("system_prompt", [None, "Be brief."])
@pytest.mark.parametrize("replies", [ONE_CALL, TWO_CALLS], ids=["one call", "two calls"])
@pytest.mark.parametrize("modes", [["updates", "values"], ["updates", "messages"]])
def test_todo_list_streams_as_in_langchain(modes: list[str], replies: list[Any],
                                           system_prompt: str | None) -> None:
    results = {}
    for name in LIBS:
        agent, fake = planning(name, replies, system_prompt)
        number = Ids()
        results[name] = (stream(agent, QUESTION, modes, number), prompts(fake.seen, number))
    assert results["rxagent"] == results["langchain"]


def test_the_tool_as_the_model_sees_it() -> None:
    from langchain.agents.middleware import TodoListMiddleware as LcTodo
    from langchain_core.utils.function_calling import convert_to_openai_tool

    ours = rx_middleware.TodoListMiddleware(tool_description="Write the plan.").tools[0]
    theirs = convert_to_openai_tool(LcTodo(tool_description="Write the plan.").tools[0])
    spec = ours.tool_spec()
    assert spec["name"] == theirs["function"]["name"] == "write_todos"
    assert spec["description"] == theirs["function"]["description"]
    parameters = spec["parameters"]
    assert parameters["required"] == ["todos"]
    item = parameters["$defs"]["Todo"]  # LangChain inlines it; the same schema either way
    assert parameters["properties"]["todos"]["items"] == {"$ref": "#/$defs/Todo"}
    assert item["properties"] == theirs["function"]["parameters"]["properties"]["todos"][
        "items"]["properties"]
    assert "description" not in parameters


def test_a_bad_status_is_an_error_the_model_sees() -> None:
    agent = rxagent.create_agent(
        ScriptedChatModel([rxagent.messages.AIMessage(content="", tool_calls=[
            {"name": "write_todos", "args": {"todos": [{"content": "x", "status": "done"}]},
             "id": "t1"}]), "ok"]),
        middleware=[rx_middleware.TodoListMiddleware()])
    result = agent.invoke(QUESTION)
    assert result["messages"][2].status == "error"
    assert "todos" not in result


@pytest.mark.anyio
async def test_async_runs_keep_the_list() -> None:
    agent = rxagent.create_agent(
        ScriptedChatModel([rxagent.messages.AIMessage(content="", tool_calls=[
            {"name": "write_todos", "args": {"todos": PLAN}, "id": "t1"}]), "Done."]),
        middleware=[rx_middleware.TodoListMiddleware()])
    final = [v async for v in agent.astream(QUESTION, stream_mode="values")][-1]
    assert final["todos"] == PLAN
    assert final["messages"][2].content == f"Updated todo list to {PLAN}"


def test_the_sync_forms() -> None:
    from rxagent.messages import AIMessage, SystemMessage
    from rxagent.middleware import ModelRequest, ModelResponse

    middleware = rx_middleware.TodoListMiddleware(system_prompt="Plan.")
    given: list[Any] = []

    def handler(request: Any) -> Any:
        given.append(request.system_message.content)
        return ModelResponse(result=[AIMessage(content="ok")])

    middleware.wrap_model_call(ModelRequest(model=ScriptedChatModel([]), messages=[],
                                            system_message=SystemMessage(content="Hi.")),
                               handler)
    assert given == [[{"type": "text", "text": "Hi."}, {"type": "text", "text": "\n\nPlan."}]]
    reply = AIMessage(content="", tool_calls=TWO_CALLS[0])
    update = middleware.after_model({"messages": [reply]}, None)  # type: ignore[arg-type]
    assert update is not None
    assert [(m.tool_call_id, m.status) for m in update["messages"]] == [("t1", "error"),
                                                                        ("t2", "error")]
