"""LangChain's Runtime docs' programs, with only their imports (and the model, a scripted one)
changed: the context, the store and the execution info reach tools and middleware."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import pytest

from rxagent import AgentState, create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage
from rxagent.middleware import ModelRequest, after_model, before_model, dynamic_prompt
from rxagent.runtime import Runtime
from rxagent.store import InMemoryStore
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.tools import ToolRuntime, tool


@dataclass
class Context:
    user_name: str


@dataclass
class UserContext:
    user_id: str


def calling(name: str) -> FunctionChatModel:
    """Calls the tool after each question, and answers after its result."""

    def reply(messages: Any, tools: Any) -> Any:
        if messages[-1].type == "human":
            return AIMessage(content="", tool_calls=[{"name": name, "args": {}, "id": "c1"}])
        return "Done."

    return FunctionChatModel(reply)


def test_the_context_reaches_a_tool_with_the_store() -> None:
    @tool
    def fetch_user_email_preferences(runtime: ToolRuntime[UserContext]) -> str:
        """Fetch the user's email preferences from the store."""
        user_id = runtime.context.user_id

        preferences: str = "The user prefers you to write a brief and polite email."
        if runtime.store:  # noqa: SIM102 - as the docs write it
            if memory := runtime.store.get(("users",), user_id):
                preferences = memory.value["preferences"]

        return preferences

    store = InMemoryStore()
    store.put(("users",), "u1", {"preferences": "Long emails, please."})
    agent = create_agent(calling("fetch_user_email_preferences"),
                         tools=[fetch_user_email_preferences], context_schema=UserContext,
                         store=store)
    result = agent.invoke({"messages": [("user", "write to Ann")]},
                          context=UserContext(user_id="u1"))
    assert result["messages"][2].content == "Long emails, please."
    # Without a store the tool falls back, as the docs' code does.
    plain = create_agent(calling("fetch_user_email_preferences"),
                         tools=[fetch_user_email_preferences], context_schema=UserContext)
    assert plain.invoke({"messages": [("user", "hi")]}, context=UserContext(user_id="u1"))[
        "messages"][2].content == "The user prefers you to write a brief and polite email."


def test_execution_info_and_server_info_inside_tools() -> None:
    printed = io.StringIO()

    @tool
    def context_aware_tool(runtime: ToolRuntime) -> str:
        """A tool that uses execution and server info."""
        # Access thread and run IDs
        info = runtime.execution_info
        print(f"Thread: {info.thread_id}, Run: {info.run_id}")

        # Access server info (only available on LangGraph Server)
        server = runtime.server_info
        if server is not None:
            print(f"Assistant: {server.assistant_id}")
            if server.user is not None:
                print(f"User: {server.user.identity}")

        return "done"

    agent = create_agent(calling("context_aware_tool"), tools=[context_aware_tool],
                         checkpointer=InMemorySaver())
    with contextlib.redirect_stdout(printed):
        agent.invoke({"messages": [("user", "go")]},
                     {"configurable": {"thread_id": "t1"}, "run_id": "r1"})
    assert printed.getvalue() == "Thread: t1, Run: r1\n"
    with contextlib.redirect_stdout(printed := io.StringIO()):
        agent.invoke({"messages": [("user", "go")]}, {"configurable": {
            "thread_id": "t2", "assistant_id": "a1", "graph_id": "agent"}})
    assert printed.getvalue() == "Thread: t2, Run: None\nAssistant: a1\n"


def test_the_runtime_inside_middleware() -> None:
    # Dynamic prompts
    @dynamic_prompt
    def dynamic_system_prompt(request: ModelRequest) -> str:
        user_name = request.runtime.context.user_name
        system_prompt = f"You are a helpful assistant. Address the user as {user_name}."
        return system_prompt

    # Before model hook
    @before_model
    def log_before_model(state: AgentState, runtime: Runtime[Context]) -> dict | None:
        print(f"Processing request for user: {runtime.context.user_name}")
        return None

    # After model hook
    @after_model
    def log_after_model(state: AgentState, runtime: Runtime[Context]) -> dict | None:
        print(f"Completed request for user: {runtime.context.user_name}")
        return None

    prompts: list[Any] = []
    model = FunctionChatModel(lambda messages, tools: prompts.append(messages) or "Hi John!")
    agent = create_agent(
        model=model,
        tools=[],
        middleware=[dynamic_system_prompt, log_before_model, log_after_model],
        context_schema=Context
    )

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        agent.invoke(
            {"messages": [{"role": "user", "content": "What's my name?"}]},
            context=Context(user_name="John Smith")
        )
    assert printed.getvalue().splitlines() == [
        "Processing request for user: John Smith", "Completed request for user: John Smith"]
    assert prompts[0][0].content == ("You are a helpful assistant. Address the user as "
                                     "John Smith.")


def test_execution_and_server_info_inside_middleware() -> None:
    @before_model
    def auth_gate(state: AgentState, runtime: Runtime) -> dict | None:
        """Block unauthenticated users when running on LangGraph Server."""
        server = runtime.server_info
        if server is not None and server.user is None:
            raise ValueError("Authentication required")
        print(f"Thread: {runtime.execution_info.thread_id}")
        return None

    agent = create_agent(ScriptedChatModel(["ok", "ok"]), middleware=[auth_gate],
                         checkpointer=InMemorySaver())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        agent.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t9"}})
    assert printed.getvalue() == "Thread: t9\n"
    with pytest.raises(ValueError, match="Authentication required"):
        agent.invoke({"messages": [("user", "hi")]}, {"configurable": {
            "thread_id": "t9", "assistant_id": "a1", "graph_id": "agent"}})
