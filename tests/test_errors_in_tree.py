"""Every exception that leaves a public call is from rxagent's tree (issue 14, item 1)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import rxagent
from rxagent import InvalidMessageError, RxAgentError, UsageError, _exceptions, create_agent
from rxagent._bridges import to_async_iterator
from rxagent.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from rxagent.testing import ScriptedChatModel


def test_the_roots_are_one_set_of_classes_whichever_module_names_them() -> None:
    assert _exceptions.InvalidMessageError is rxagent.InvalidMessageError
    assert _exceptions.UsageError is rxagent.UsageError
    assert issubclass(InvalidMessageError, UsageError)
    assert issubclass(InvalidMessageError, ValueError)
    assert issubclass(_exceptions.ModelCallError, RxAgentError)


@pytest.mark.parametrize(
    "build",
    [
        lambda: AIMessage(content=5),  # type: ignore[arg-type]
        lambda: ToolMessage(content="x"),  # type: ignore[call-arg]
        lambda: HumanMessage("hi", colour="red"),
        lambda: AIMessageChunk(content="x", chunk_position="first"),  # type: ignore[arg-type]
        lambda: AIMessage(content="x", tool_calls=[{"name": 5, "args": {}}]),
        lambda: AIMessage.model_validate({"content": [1.5]}),
        lambda: ToolMessage.model_validate_json('{"content": "x"}'),
    ],
)
def test_a_message_built_with_bad_data_raises_invalid_message_error(build: Any) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        build()
    assert "not a valid" in str(caught.value)
    # Still a ValueError, as pydantic's ValidationError was, and the cause is kept.
    assert isinstance(caught.value, ValueError)
    assert caught.value.__cause__ is not None


def test_valid_messages_still_build() -> None:
    message = ToolMessage(content="x", tool_call_id="c1")
    assert message.tool_call_id == "c1"
    assert AIMessage.model_validate({"content": "hi"}).text == "hi"


def test_an_async_iterator_outside_an_event_loop_says_what_to_do() -> None:
    iterator = to_async_iterator(
        create_agent(ScriptedChatModel(["hi"])).observe({"messages": ["hi"]})
    )
    step = iterator.__anext__()
    with pytest.raises(UsageError, match=r"asyncio\.run"):
        step.send(None)  # driven by hand: no asyncio or trio loop is running


@pytest.mark.parametrize("tags", [5, "fast", [1, 2]])
def test_config_tags_that_are_no_list_of_str_are_a_usage_error(tags: Any) -> None:
    agent = create_agent(ScriptedChatModel(["hi"]))
    with pytest.raises(UsageError, match="tags"):
        agent.invoke({"messages": ["hi"]}, {"tags": tags})


def test_bad_arguments_to_a_tool_called_directly_are_invalid_tool_arguments() -> None:
    from pydantic import ValidationError

    from rxagent import InvalidToolArgumentsError
    from rxagent.tools import tool

    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    with pytest.raises(InvalidToolArgumentsError, match="'add'") as caught:
        add.invoke({"a": "one"})
    assert "a: " in str(caught.value) and "b: " in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value.__cause__, ValidationError)
    with pytest.raises(InvalidToolArgumentsError):
        anyio.run(add.ainvoke, {"a": 1, "c": 2})


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"tools": 5}, "list of tools"),
        ({"tools": "get_weather"}, "list of tools"),
        ({"system_prompt": 5}, "system_prompt"),
        ({"name": 5}, "name"),
    ],
)
def test_create_agent_with_bad_options_is_a_usage_error(options: Any, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        create_agent(ScriptedChatModel(["hi"]), **options)


def test_create_agent_takes_none_for_no_tools() -> None:
    agent = create_agent(ScriptedChatModel(["hi"]), None)
    assert agent.tools == []
