"""A store on an agent: LangChain's long-term memory docs' programs, with only their imports
(and the model, a scripted one) changed, and every way a tool or hook reaches the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

import rxagent
from rxagent import RunnableConfig, create_agent, get_store
from rxagent.messages import AIMessage
from rxagent.middleware import before_model
from rxagent.store import BaseStore, InMemoryStore
from rxagent.store.sqlite import SqliteStore
from rxagent.testing import ScriptedChatModel
from rxagent.tools import InjectedState, InjectedStore, ToolRuntime


def calling(name: str, args: dict[str, Any]) -> ScriptedChatModel:
    call = AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": "c1"}])
    return ScriptedChatModel([call, "Done."])


class UserInfo(TypedDict):  # the docs' (at module level there too)
    name: str


def test_read_long_term_memory_in_tools() -> None:
    # The docs' program, as written there.
    store = InMemoryStore()

    store.put(
        ("users",),
        "user_123",
        {
            "name": "John Smith",
            "language": "English",
        }
    )

    def get_user_info(config: RunnableConfig) -> str:
        """Look up user info."""
        # Same as that provided to `create_agent`
        store = get_store()
        user_id = config["configurable"].get("user_id")
        user_info = store.get(("users",), user_id)
        return str(user_info.value) if user_info else "Unknown user"

    agent = create_agent(
        model=calling("get_user_info", {}),
        tools=[get_user_info],
        store=store
    )

    # Run the agent
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "look up user information"}]},
        config={"configurable": {"user_id": "user_123"}}
    )
    assert result["messages"][2].content == "{'name': 'John Smith', 'language': 'English'}"
    # The model never sees the config parameter.
    assert agent.tools[0].tool_spec()["parameters"]["properties"] == {}


def test_write_long_term_memory_from_tools(tmp_path: Path) -> None:
    # The docs' program, on a store in a SQLite file.
    store = SqliteStore(tmp_path / "memory.sqlite")

    def save_user_info(user_info: UserInfo, config: RunnableConfig) -> str:
        """Save user info."""
        # Same as that provided to `create_agent`
        store = get_store()
        user_id = config["configurable"].get("user_id")
        store.put(("users",), user_id, user_info)
        return "Successfully saved user info."

    agent = create_agent(
        model=calling("save_user_info", {"user_info": {"name": "John Smith"}}),
        tools=[save_user_info],
        store=store
    )

    # Run the agent
    agent.invoke(
        {"messages": [{"role": "user", "content": "My name is John Smith"}]},
        config={"configurable": {"user_id": "user_123"}}
    )

    # You can access the store directly to get the value
    assert store.get(("users",), "user_123").value == {"name": "John Smith"}  # type: ignore[union-attr]
    store.close()
    with SqliteStore(tmp_path / "memory.sqlite") as reopened:  # it is in the file
        assert reopened.get(("users",), "user_123").value == {"name": "John Smith"}  # type: ignore[union-attr]


def test_tools_reach_the_store_and_state_through_their_parameters() -> None:
    store = InMemoryStore()
    store.put(("prefs",), "ann", {"color": "blue"})
    got: dict[str, Any] = {}

    def lookup(
        who: str,
        runtime: ToolRuntime,
        kept: Annotated[BaseStore, InjectedStore()],
        state: Annotated[dict[str, Any], InjectedState],
        messages: Annotated[list[Any], InjectedState("messages")],
    ) -> str:
        """Look a preference up."""
        got.update(same_store=runtime.store is kept is store,
                   from_state=len(state["messages"]), from_key=len(messages))
        item = kept.get(("prefs",), who)
        return item.value["color"] if item else "?"

    agent = create_agent(calling("lookup", {"who": "ann"}), [lookup], store=store)
    assert list(agent.tools[0].tool_spec()["parameters"]["properties"]) == ["who"]
    result = agent.invoke({"messages": [("user", "ann's color?")]})
    assert result["messages"][2].content == "blue"
    assert got == {"same_store": True, "from_state": 2, "from_key": 2}


@pytest.mark.anyio
async def test_hooks_reach_the_store_through_the_runtime() -> None:
    store = InMemoryStore()
    store.put(("memories",), "ann", {"fact": "likes tea"})

    @before_model
    async def remember(state: Any, runtime: Any) -> dict[str, Any]:
        item = await runtime.store.aget(("memories",), "ann")
        return {"messages": [("system", f"Remember: {item.value['fact']}")]}

    seen: list[Any] = []

    def reply(messages: Any, tools: Any) -> str:
        seen.extend(m.content for m in messages)
        return "ok"

    from rxagent.testing import FunctionChatModel

    agent = create_agent(FunctionChatModel(reply), middleware=[remember], store=store)
    await agent.ainvoke({"messages": [("user", "hi")]})
    assert seen == ["hi", "Remember: likes tea"]


def test_get_store_outside_a_run_is_a_usage_error() -> None:
    with pytest.raises(rxagent.UsageError, match="inside an agent's run"):
        get_store()
    assert create_agent(ScriptedChatModel(["x"])).store is None
