"""Tools' schemas are built once per function (issue 14, item 4): a second agent with the same
functions reuses what the first derived; what is per tool (its learned placement) is not
shared."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from rxagent import ToolDefinitionError, _tools, create_agent
from rxagent.testing import ScriptedChatModel
from rxagent.tools import BaseTool, tool


def get_weather(city: str) -> str:
    """Get weather for a given city.

    Args:
        city: the city.
    """
    return f"It's always sunny in {city}!"


def add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


async def search(query: str, limit: int = 3) -> list[str]:
    """Search the web."""
    return [query] * limit


@pytest.fixture
def models_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every pydantic model the tools module builds, in order."""
    built: list[str] = []
    real = _tools.create_model

    def counting(name: str, /, **kwargs: Any) -> Any:
        built.append(name)
        return real(name, **kwargs)

    monkeypatch.setattr(_tools, "create_model", counting)
    _tools._DERIVED.clear()
    return built


def test_a_second_agent_with_the_same_functions_builds_no_model(models_built: list[str]) -> None:
    first = create_agent(ScriptedChatModel(["hi"]), [get_weather, add, search])
    assert models_built == ["get_weather", "add", "search"]
    second = create_agent(ScriptedChatModel(["hi"]), [get_weather, add, search])
    assert models_built == ["get_weather", "add", "search"]
    assert [t.args_schema for t in second.tools] == [t.args_schema for t in first.tools]
    assert second.tool_specs == first.tool_specs
    # Each spec is still a copy of its own.
    second.tool_specs[0]["parameters"]["properties"].clear()
    assert first.tool_specs[0]["parameters"]["properties"]
    assert second.tools[0].tool_spec() == first.tools[0].tool_spec()


def test_what_is_per_tool_is_not_shared(models_built: list[str]) -> None:
    quick, threaded = BaseTool(add), BaseTool(add, thread=True)
    assert models_built == ["add"]
    assert quick._placement is not threaded._placement
    assert (quick.thread, threaded.thread) == (None, True)
    assert quick.invoke({"a": 1}) == 3 and threaded.invoke({"a": 1, "b": 5}) == 6


def test_a_name_or_description_of_its_own_derives_anew(models_built: list[str]) -> None:
    plain = BaseTool(add)
    renamed = tool("plus")(add)
    described = tool(description="Sum them.")(add)
    assert models_built == ["add", "plus", "add"]
    assert (plain.name, renamed.name, described.name) == ("add", "plus", "add")
    assert (plain.description, described.description) == ("Add two numbers.", "Sum them.")
    assert tool("plus")(add).args_schema is renamed.args_schema
    assert models_built == ["add", "plus", "add"]


def test_a_function_changed_after_its_first_tool_is_derived_again(
    models_built: list[str],
) -> None:
    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    assert BaseTool(shout).description == "Shout."
    shout.__doc__ = "Shout louder."
    assert BaseTool(shout).description == "Shout louder."
    shout.__defaults__ = ("hey",)
    assert "required" not in BaseTool(shout).tool_spec()["parameters"]
    assert models_built == ["shout", "shout", "shout"]


def test_agents_as_tools_share_one_schema(models_built: list[str]) -> None:
    first = create_agent(ScriptedChatModel(["a"]), name="first").as_tool()
    second = create_agent(ScriptedChatModel(["b"]), name="second").as_tool()
    assert models_built == ["first", "second"]  # one per name: the name is the model's title
    again = create_agent(ScriptedChatModel(["c"]), name="first").as_tool()
    assert models_built == ["first", "second"]
    assert again.args_schema is first.args_schema
    assert again.tool_spec() == first.tool_spec()
    assert second.tool_spec()["parameters"] == first.tool_spec()["parameters"]


def test_methods_made_anew_each_time_share_their_functions_entry(
    models_built: list[str],
) -> None:
    class Greeter:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        def greet(self, who: str) -> str:
            """Greet someone."""
            return f"{self.greeting}, {who}"

    hello, hi = BaseTool(Greeter("Hello").greet), BaseTool(Greeter("Hi").greet)
    assert models_built == ["greet"]
    assert (hello.invoke({"who": "Ann"}), hi.invoke({"who": "Bo"})) == ("Hello, Ann", "Hi, Bo")


def test_a_definition_error_is_raised_every_time(models_built: list[str]) -> None:
    def broken(x: NoSuchType) -> str:  # type: ignore[name-defined]  # noqa: F821
        return ""

    for _ in range(2):
        with pytest.raises(ToolDefinitionError, match="NoSuchType"):
            BaseTool(broken)


def test_the_entry_goes_with_its_function(models_built: list[str]) -> None:
    def temporary(x: int) -> int:
        return x

    BaseTool(temporary)
    assert len(_tools._DERIVED) == 1
    del temporary
    gc.collect()
    assert len(_tools._DERIVED) == 0
