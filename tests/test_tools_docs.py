"""LangChain's Tools docs page, every Python example with only its imports changed: the model
replaced by a scripted one, or, where the example names a model (``ChatOpenAI(model=...)``,
``model="gpt-5.5"``), run as written against the loopback server of the ``server`` fixture
(tests/conftest.py). Each asserts what the page shows: the schema the model sees
(``tool_specs``), the tool's results, the printed output."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from rxagent import AgentState, UsageError, create_agent
from rxagent.chat_models import ChatOpenAI
from rxagent.chat_models._base import tool_specs
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, HumanMessage, ToolMessage
from rxagent.middleware import (
    AgentMiddleware,
    ModelRequest,
    ModelResponse,
    ToolCallRequest,
    wrap_model_call,
    wrap_tool_call,
)
from rxagent.store import InMemoryStore
from rxagent.testing import ScriptedChatModel
from rxagent.tools import InjectedState, ToolRuntime, tool
from rxagent.types import Command

from .chat_models.loopback import LoopbackServer
from .middleware.over_the_wire import calls, text


def calling(name: str, args: dict[str, Any], answer: str = "Done.") -> ScriptedChatModel:
    """Calls ``name`` once, then answers."""
    return ScriptedChatModel(
        [AIMessage("", tool_calls=[{"name": name, "args": args, "id": "c1"}]), answer])


def ask(content: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}]}


def tool_result(result: dict[str, Any]) -> ToolMessage:
    (message,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    return message


class CustomState(AgentState):
    user_name: str


@dataclass
class UserContext:
    user_id: str


class LanguageState(AgentState):
    preferred_language: str


# (The classes above are the examples' own, kept at module level: this file's
# ``from __future__ import annotations`` makes hints strings, resolved in the module.)


# -- Create tools -------------------------------------------------------------------------


def test_basic_tool_definition() -> None:
    @tool
    def search_database(query: str, limit: int = 10) -> str:
        """Search the customer database for records matching the query.

        Args:
            query: Search terms to look for
            limit: Maximum number of results to return
        """
        return f"Found {limit} results for '{query}'"

    assert tool_specs([search_database]) == [{
        "name": "search_database",
        "description": "Search the customer database for records matching the query.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Search terms to look for"},
                "limit": {"type": "integer", "default": 10,
                          "description": "Maximum number of results to return"},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    }]
    assert search_database.invoke({"query": "acme"}) == "Found 10 results for 'acme'"


def test_custom_tool_name_and_description() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        @tool("web_search")  # Custom name
        def search(query: str) -> str:
            """Search the web for information."""
            return f"Results for: {query}"

        print(search.name)  # web_search
    assert out.getvalue() == "web_search\n"

    @tool("calculator", description="Performs arithmetic calculations. Use this for any math problems.")  # noqa: E501 - as the docs write it
    def calc(expression: str) -> str:
        """Evaluate mathematical expressions."""
        return str(eval(expression))

    (spec,) = tool_specs([calc])
    assert (spec["name"], spec["description"]) == (
        "calculator", "Performs arithmetic calculations. Use this for any math problems.")
    assert calc.invoke({"expression": "6 * 7"}) == "42"


def test_pydantic_args_schema() -> None:
    class WeatherInput(BaseModel):
        """Input for weather queries."""
        location: str = Field(description="City name or coordinates")
        units: Literal["celsius", "fahrenheit"] = Field(
            default="celsius",
            description="Temperature unit preference"
        )
        include_forecast: bool = Field(
            default=False,
            description="Include 5-day forecast"
        )

    @tool(args_schema=WeatherInput)
    def get_weather(location: str, units: str = "celsius", include_forecast: bool = False) -> str:
        """Get current weather and optional forecast."""
        temp = 22 if units == "celsius" else 72
        result = f"Current weather in {location}: {temp} degrees {units[0].upper()}"
        if include_forecast:
            result += "\nNext 5 days: Sunny"
        return result

    (spec,) = tool_specs([get_weather])
    assert spec["description"] == "Get current weather and optional forecast."
    properties = spec["parameters"]["properties"]
    assert properties["units"]["enum"] == ["celsius", "fahrenheit"]
    assert properties["location"]["description"] == "City name or coordinates"
    assert spec["parameters"]["required"] == ["location"]
    assert get_weather.invoke({"location": "Oslo", "units": "fahrenheit",
                               "include_forecast": True}) == (
        "Current weather in Oslo: 72 degrees F\nNext 5 days: Sunny")


def test_json_schema_args_schema() -> None:
    weather_schema = {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "units": {"type": "string"},
            "include_forecast": {"type": "boolean"}
        },
        "required": ["location", "units", "include_forecast"]
    }

    @tool(args_schema=weather_schema)
    def get_weather(location: str, units: str = "celsius", include_forecast: bool = False) -> str:
        """Get current weather and optional forecast."""
        temp = 22 if units == "celsius" else 72
        result = f"Current weather in {location}: {temp} degrees {units[0].upper()}"
        if include_forecast:
            result += "\nNext 5 days: Sunny"
        return result

    # The model sees the JSON schema as written.
    assert tool_specs([get_weather]) == [{
        "name": "get_weather",
        "description": "Get current weather and optional forecast.",
        "parameters": weather_schema,
    }]
    assert get_weather.invoke({"location": "Oslo", "units": "celsius",
                               "include_forecast": False}) == (
        "Current weather in Oslo: 22 degrees C")


# -- Access context -----------------------------------------------------------------------


def test_state_access() -> None:
    @tool
    def get_last_user_message(runtime: ToolRuntime) -> str:
        """Get the most recent message from the user."""
        messages = runtime.state["messages"]

        # Find the last human message
        for message in reversed(messages):
            if isinstance(message, HumanMessage):
                return message.content  # type: ignore[return-value]

        return "No user messages found"

    # Access custom state fields
    @tool
    def get_user_preference(
        pref_name: str,
        runtime: ToolRuntime
    ) -> str:
        """Get a user preference value."""
        preferences = runtime.state.get("user_preferences", {})
        return preferences.get(pref_name, "Not set")  # type: ignore[no-any-return]

    # The runtime parameter is hidden from the model: it sees only pref_name.
    assert tool_specs([get_user_preference])[0]["parameters"]["properties"] == {
        "pref_name": {"type": "string"}}
    assert tool_specs([get_last_user_message])[0]["parameters"]["properties"] == {}

    class PreferenceState(AgentState):
        user_preferences: dict[str, str]

    agent = create_agent(calling("get_last_user_message", {}),
                         tools=[get_last_user_message])
    assert tool_result(agent.invoke(ask("Hello there"))).content == "Hello there"

    agent = create_agent(calling("get_user_preference", {"pref_name": "theme"}),
                         tools=[get_user_preference], state_schema=PreferenceState)
    result = agent.invoke({**ask("My theme?"), "user_preferences": {"theme": "dark"}})
    assert tool_result(result).content == "dark"


def test_update_state_with_a_command() -> None:
    @tool
    def set_user_name(new_name: str, runtime: ToolRuntime[None, CustomState]) -> Command:
        """Set the user's name in the conversation state."""
        return Command(
            update={
                "user_name": new_name,
                "messages": [
                    ToolMessage(
                        content=f"User name set to {new_name}.",
                        tool_call_id=runtime.tool_call_id,
                    )
                ],
            }
        )

    agent = create_agent(calling("set_user_name", {"new_name": "Ada"}), tools=[set_user_name],
                         state_schema=CustomState)
    result = agent.invoke(ask("Call me Ada"))
    assert result["user_name"] == "Ada"
    assert tool_result(result).content == "User name set to Ada."
    assert tool_result(result).tool_call_id == "c1"


def test_context_with_a_thread(server: LoopbackServer) -> None:
    server.add(calls(("get_account_info", {})), text("Your balance is $5000."))

    USER_DATABASE = {
        "user123": {
            "name": "Alice Johnson",
            "account_type": "Premium",
            "balance": 5000,
            "email": "alice@example.com",
        },
        "user456": {
            "name": "Bob Smith",
            "account_type": "Standard",
            "balance": 1200,
            "email": "bob@example.com",
        },
    }

    @tool
    def get_account_info(runtime: ToolRuntime[UserContext]) -> str:
        """Get the current user's account information."""
        user_id = runtime.context.user_id

        if user_id in USER_DATABASE:
            user = USER_DATABASE[user_id]
            return (
                f"Account holder: {user['name']}\n"
                f"Type: {user['account_type']}\n"
                f"Balance: ${user['balance']}"
            )
        return "User not found"

    model = ChatOpenAI(model="openai:gpt-5.4")
    agent = create_agent(
        model,
        tools=[get_account_info],
        context_schema=UserContext,
        system_prompt="You are a financial assistant.",
    )
    # A thread_id without a checkpointer is refused here, where LangGraph forgets the thread
    # silently (docs/langchain.md, the "thread_id without a checkpointer" row); the example
    # runs with one.
    with pytest.raises(UsageError, match="no checkpointer"):
        agent.invoke(ask("What's my current balance?"),
                     config={"configurable": {"thread_id": "t-1"}},
                     context=UserContext(user_id="user123"))
    agent = create_agent(
        model,
        tools=[get_account_info],
        context_schema=UserContext,
        system_prompt="You are a financial assistant.",
        checkpointer=InMemorySaver(),
    )

    # uuid7 (langchain_core.utils.uuid): docs/langchain.md, its row; any unique id serves.
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "What's my current balance?"}]},
        config={"configurable": {"thread_id": str(uuid.uuid4())}},
        context=UserContext(user_id="user123"),
    )
    assert tool_result(result).content == (
        "Account holder: Alice Johnson\nType: Premium\nBalance: $5000")
    assert result["messages"][-1].text == "Your balance is $5000."
    assert server.requests[0].json["messages"][0] == {
        "role": "system", "content": "You are a financial assistant."}


def test_long_term_memory(server: LoopbackServer) -> None:
    saved = {"name": "Foo", "age": 25, "email": "foo@langchain.dev"}
    server.add(calls(("save_user_info", {"user_id": "abc123", "user_info": saved})),
               text("Saved."),
               calls(("get_user_info", {"user_id": "abc123"})),
               text('Here is the user info for user with ID "abc123": Foo, 25.'))

    # Access memory
    @tool
    def get_user_info(user_id: str, runtime: ToolRuntime) -> str:
        """Look up user info."""
        store = runtime.store
        user_info = store.get(("users",), user_id)
        return str(user_info.value) if user_info else "Unknown user"

    # Update memory
    @tool
    def save_user_info(user_id: str, user_info: dict[str, Any], runtime: ToolRuntime) -> str:
        """Save user info."""
        store = runtime.store
        store.put(("users",), user_id, user_info)
        return "Successfully saved user info."

    model = ChatOpenAI(model="gpt-5.5")

    store = InMemoryStore()
    agent = create_agent(
        model,
        tools=[get_user_info, save_user_info],
        store=store
    )

    # First session: save user info
    first = agent.invoke({
        "messages": [{"role": "user", "content": "Save the following user: userid: abc123, name: Foo, age: 25, email: foo@langchain.dev"}]  # noqa: E501 - as the docs write it
    })

    # Second session: get user info
    second = agent.invoke({
        "messages": [{"role": "user", "content": "Get user info for user with id 'abc123'"}]
    })
    assert tool_result(first).content == "Successfully saved user info."
    assert store.get(("users",), "abc123").value == saved  # type: ignore[union-attr]
    assert tool_result(second).content == str(saved)
    assert server.requests[0].json["model"] == "gpt-5.5"


def test_stream_writer() -> None:
    @tool
    def get_weather(city: str, runtime: ToolRuntime) -> str:
        """Get weather for a given city."""
        writer = runtime.stream_writer

        # Stream custom updates as the tool executes
        writer(f"Looking up data for city: {city}")
        writer(f"Acquired data for city: {city}")

        return f"It's always sunny in {city}!"

    agent = create_agent(calling("get_weather", {"city": "SF"}), tools=[get_weather])
    updates = list(agent.stream(ask("Weather in SF?"), stream_mode="custom"))
    assert updates == ["Looking up data for city: SF", "Acquired data for city: SF"]


def test_execution_info() -> None:
    @tool
    def log_execution_context(runtime: ToolRuntime) -> str:
        """Log execution identity information."""
        info = runtime.execution_info
        print(f"Thread: {info.thread_id}, Run: {info.run_id}")
        print(f"Attempt: {info.node_attempt}")
        return "done"

    agent = create_agent(calling("log_execution_context", {}), tools=[log_execution_context],
                         checkpointer=InMemorySaver())
    run_id = uuid.uuid4()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = agent.invoke(ask("Log it"),
                              config={"configurable": {"thread_id": "t-1"}, "run_id": run_id})
    assert out.getvalue() == f"Thread: t-1, Run: {run_id}\nAttempt: 1\n"
    assert tool_result(result).content == "done"


def test_server_info_is_none_off_a_server() -> None:
    @tool
    def get_assistant_scoped_data(runtime: ToolRuntime) -> str:
        """Fetch data scoped to the current assistant."""
        server = runtime.server_info
        if server is not None:
            print(f"Assistant: {server.assistant_id}, Graph: {server.graph_id}")
            if server.user is not None:
                print(f"User: {server.user.identity}")
        return "done"

    agent = create_agent(calling("get_assistant_scoped_data", {}),
                         tools=[get_assistant_scoped_data])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = agent.invoke(ask("Scoped data?"))
    assert out.getvalue() == ""
    assert tool_result(result).content == "done"


def test_previous_and_recommended_injection_patterns() -> None:
    # Previous pattern
    @tool
    def summarize_before(state: InjectedState) -> str:
        """Summarize the conversation."""
        messages = state["messages"]
        return f"Conversation length: {len(messages)} messages."

    # Recommended pattern
    @tool
    def summarize(runtime: ToolRuntime) -> str:
        """Summarize the conversation."""
        messages = runtime.state["messages"]
        return f"Conversation length: {len(messages)} messages."

    for each in (summarize_before, summarize):
        agent = create_agent(calling(each.name, {}), tools=[each])
        assert tool_result(agent.invoke(ask("How long?"))).content == (
            "Conversation length: 2 messages.")
        assert tool_specs([each])[0]["parameters"]["properties"] == {}


# -- Tool execution -----------------------------------------------------------------------


def test_return_a_string() -> None:
    @tool
    def get_weather(city: str) -> str:
        """Get weather for a city."""
        return f"It is currently sunny in {city}."

    agent = create_agent(calling("get_weather", {"city": "Lima"}), tools=[get_weather])
    assert tool_result(agent.invoke(ask("Weather?"))).content == (
        "It is currently sunny in Lima.")


def test_return_an_object() -> None:
    @tool
    def get_weather_data(city: str) -> dict:  # type: ignore[type-arg]
        """Get structured weather data for a city."""
        return {
            "city": city,
            "temperature_c": 22,
            "conditions": "sunny",
        }

    model = calling("get_weather_data", {"city": "Lima"})
    agent = create_agent(model, tools=[get_weather_data])
    content = tool_result(agent.invoke(ask("Weather?"))).content
    # Serialized as JSON, which the model reads on its next call.
    assert json.loads(content) == {"city": "Lima", "temperature_c": 22, "conditions": "sunny"}
    assert model.calls[1].messages[-1].content == content


def test_return_a_command() -> None:
    @tool
    def set_language(language: str, runtime: ToolRuntime) -> Command:
        """Set the preferred response language."""
        return Command(update={
            "preferred_language": language,
            "messages": [
                ToolMessage(
                    content=f"Language set to {language}.",
                    tool_call_id=runtime.tool_call_id,
                )
            ],
        })

    agent = create_agent(calling("set_language", {"language": "French"}),
                         tools=[set_language], state_schema=LanguageState)
    result = agent.invoke(ask("Réponds en français"))
    assert result["preferred_language"] == "French"
    assert tool_result(result).content == "Language set to French."


def test_return_multimodal_content() -> None:
    @tool
    def capture_screenshot() -> list[dict]:  # type: ignore[type-arg]
        """Capture a screenshot of the current page."""
        return [
            {"type": "text", "text": "Screenshot of the current page:"},
            {"type": "image", "url": "https://example.com/page.png"},
        ]

    agent = create_agent(calling("capture_screenshot", {}), tools=[capture_screenshot])
    message = tool_result(agent.invoke(ask("Screenshot?")))
    assert message.content_blocks == [
        {"type": "text", "text": "Screenshot of the current page:"},
        {"type": "image", "url": "https://example.com/page.png"},
    ]


def test_return_directly(server: LoopbackServer) -> None:
    server.add(calls(("fetch_order_status", {"order_id": "12345"})))

    @tool(return_direct=True)
    def fetch_order_status(order_id: str) -> str:
        """Fetch the current status of a customer order."""
        # In production, query your order management system here
        return f"Order {order_id} is shipped and will arrive in 2 days."

    agent = create_agent(
        ChatOpenAI(model="gpt-4o-mini"),
        tools=[fetch_order_status],
    )

    result = agent.invoke({
        "messages": [{"role": "user", "content": "What is the status of order #12345?"}]
    })
    # The agent returns the tool output directly without another LLM call:
    # "Order 12345 is shipped and will arrive in 2 days."
    assert result["messages"][-1].content == "Order 12345 is shipped and will arrive in 2 days."
    assert len(server.requests) == 1


def test_return_a_command_with_return_direct() -> None:
    @tool(return_direct=True)
    def fetch_and_store_order(order_id: str, runtime: ToolRuntime) -> Command:
        """Fetch order status and store it in state."""
        status = f"Order {order_id} is shipped and will arrive in 2 days."
        return Command(
            update={
                "last_order_status": status,
                # Must include a ToolMessage so the message history stays valid
                "messages": [
                    ToolMessage(
                        content=status,
                        tool_call_id=runtime.tool_call_id,
                    )
                ],
            }
        )

    class OrderState(AgentState):
        last_order_status: str

    model = calling("fetch_and_store_order", {"order_id": "7"})
    agent = create_agent(model, tools=[fetch_and_store_order], state_schema=OrderState)
    result = agent.invoke(ask("Order 7?"))
    status = "Order 7 is shipped and will arrive in 2 days."
    assert result["last_order_status"] == status
    assert result["messages"][-1].content == status
    assert len(model.calls) == 1  # no model call after the tool


def test_error_handling(server: LoopbackServer) -> None:
    @wrap_tool_call
    def handle_tool_errors(
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage],
    ) -> ToolMessage:
        """Convert tool exceptions into ToolMessages the model can handle."""
        try:
            return handler(request)
        except Exception as e:
            return ToolMessage(
                content=f"Tool error: Please check your input and try again. ({e})",
                tool_call_id=request.tool_call["id"],
            )

    agent = create_agent(
        model="openai:gpt-5.4",
        tools=[],
        middleware=[handle_tool_errors],
    )
    server.add(text("Hello!"))
    assert agent.invoke(ask("Hi"))["messages"][-1].text == "Hello!"
    assert server.requests[0].json["model"] == "gpt-5.4"

    # The page's point, with a tool that fails: the model gets the error as the result.
    @tool
    def divide(a: int, b: int) -> str:
        """Divide a by b."""
        return str(a / b)

    agent = create_agent(model="openai:gpt-5.4", tools=[divide],
                         middleware=[handle_tool_errors])
    server.add(calls(("divide", {"a": 1, "b": 0})), text("You cannot divide by zero."))
    result = agent.invoke(ask("1 / 0?"))
    assert tool_result(result).content == (
        "Tool error: Please check your input and try again. (division by zero)")
    assert server.requests[2].json["messages"][-1]["content"] == tool_result(result).content


def test_state_injection() -> None:
    @tool
    def get_message_count(runtime: ToolRuntime) -> str:
        """Get the number of messages in the conversation."""
        messages = runtime.state["messages"]
        return f"There are {len(messages)} messages."

    agent = create_agent(calling("get_message_count", {}), tools=[get_message_count])
    assert tool_result(agent.invoke(ask("Count?"))).content == "There are 2 messages."


# -- Dynamic tool selection ---------------------------------------------------------------


def named_tools(*names: str) -> list[Any]:
    def make(name: str) -> Any:
        @tool(name)
        def each(query: str) -> str:
            """A tool of the example."""
            return f"{name}: {query}"
        return each
    return [make(name) for name in names]


def offered(server: LoopbackServer) -> list[list[str]]:
    return [[spec["function"]["name"] for spec in request.json.get("tools", [])]
            for request in server.requests]


def test_filtering_tools_by_state(server: LoopbackServer) -> None:
    public_search, private_search, advanced_search = named_tools(
        "public_search", "private_search", "advanced_search")

    @wrap_model_call
    def state_based_tools(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Filter tools based on conversation State."""
        # Read from State: check if user has authenticated
        state = request.state
        is_authenticated = state.get("authenticated", False)
        message_count = len(state["messages"])

        # Only enable sensitive tools after authentication
        if not is_authenticated:
            tools = [t for t in request.tools if t.name.startswith("public_")]
            request = request.override(tools=tools)
        elif message_count < 5:
            # Limit tools early in conversation
            tools = [t for t in request.tools if t.name != "advanced_search"]
            request = request.override(tools=tools)

        return handler(request)

    agent = create_agent(
        model="gpt-5.5",
        tools=[public_search, private_search, advanced_search],
        middleware=[state_based_tools]
    )

    class AuthState(AgentState):
        authenticated: bool

    server.add(text("Hi."), text("Hi."))
    agent.invoke(ask("Hello"))
    authed = create_agent(model="gpt-5.5", tools=[public_search, private_search, advanced_search],
                          middleware=[state_based_tools], state_schema=AuthState)
    authed.invoke({**ask("Hello"), "authenticated": True})
    assert offered(server) == [["public_search"], ["public_search", "private_search"]]


def test_filtering_tools_by_store(server: LoopbackServer) -> None:
    search_tool, analysis_tool, export_tool = named_tools(
        "search_tool", "analysis_tool", "export_tool")

    @dataclass
    class Context:
        user_id: str

    @wrap_model_call
    def store_based_tools(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Filter tools based on Store preferences."""
        user_id = request.runtime.context.user_id

        # Read from Store: get user's enabled features
        store = request.runtime.store
        feature_flags = store.get(("features",), user_id)

        if feature_flags:
            enabled_features = feature_flags.value.get("enabled_tools", [])
            # Only include tools that are enabled for this user
            tools = [t for t in request.tools if t.name in enabled_features]
            request = request.override(tools=tools)

        return handler(request)

    agent = create_agent(
        model="gpt-5.5",
        tools=[search_tool, analysis_tool, export_tool],
        middleware=[store_based_tools],
        context_schema=Context,
        store=InMemoryStore()
    )

    agent.store.put(("features",), "u1", {"enabled_tools": ["search_tool", "export_tool"]})
    server.add(text("Hi."), text("Hi."))
    agent.invoke(ask("Hello"), context=Context(user_id="u1"))
    agent.invoke(ask("Hello"), context=Context(user_id="u2"))
    assert offered(server) == [["search_tool", "export_tool"],
                               ["search_tool", "analysis_tool", "export_tool"]]


@pytest.mark.parametrize(("role", "expected"), [
    ("admin", ["read_data", "write_data", "delete_data"]),
    ("editor", ["read_data", "write_data"]),
    ("viewer", ["read_data"]),
])
def test_filtering_tools_by_context(server: LoopbackServer, role: str,
                                    expected: list[str]) -> None:
    read_data, write_data, delete_data = named_tools("read_data", "write_data", "delete_data")

    @dataclass
    class Context:
        user_role: str

    @wrap_model_call
    def context_based_tools(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Filter tools based on Runtime Context permissions."""
        # Read from Runtime Context: get user role
        if request.runtime is None or request.runtime.context is None:
            # If no context provided, default to viewer (most restrictive)
            user_role = "viewer"
        else:
            user_role = request.runtime.context.user_role

        if user_role == "admin":
            # Admins get all tools
            pass
        elif user_role == "editor":
            # Editors can't delete
            tools = [t for t in request.tools if t.name != "delete_data"]
            request = request.override(tools=tools)
        else:
            # Viewers get read-only tools
            tools = [t for t in request.tools if t.name.startswith("read_")]
            request = request.override(tools=tools)

        return handler(request)

    agent = create_agent(
        model="gpt-5.5",
        tools=[read_data, write_data, delete_data],
        middleware=[context_based_tools],
        context_schema=Context
    )

    server.add(text("Hi."))
    agent.invoke(ask("Hello"), context=Context(user_role=role))
    assert offered(server) == [expected]


def test_runtime_tool_registration(server: LoopbackServer) -> None:
    (get_weather,) = named_tools("get_weather")
    server.add(calls(("calculate_tip", {"bill_amount": 85, "tip_percentage": 20})),
               text("A 20% tip on $85 is $17.00, $102.00 in all."))

    # A tool that will be added dynamically at runtime
    @tool
    def calculate_tip(bill_amount: float, tip_percentage: float = 20.0) -> str:
        """Calculate the tip amount for a bill."""
        tip = bill_amount * (tip_percentage / 100)
        return f"Tip: ${tip:.2f}, Total: ${bill_amount + tip:.2f}"

    class DynamicToolMiddleware(AgentMiddleware):
        """Middleware that registers and handles dynamic tools."""

        def wrap_model_call(self, request: ModelRequest, handler):  # type: ignore[no-untyped-def]
            # Add dynamic tool to the request
            # This could be loaded from an MCP server, database, etc.
            updated = request.override(tools=[*request.tools, calculate_tip])
            return handler(updated)

        def wrap_tool_call(self, request: ToolCallRequest, handler):  # type: ignore[no-untyped-def]
            # Handle execution of the dynamic tool
            if request.tool_call["name"] == "calculate_tip":
                return handler(request.override(tool=calculate_tip))
            return handler(request)

    agent = create_agent(
        model="gpt-5.5",
        tools=[get_weather],  # Only static tools registered here
        middleware=[DynamicToolMiddleware()],
    )

    # The agent can now use both get_weather AND calculate_tip
    result = agent.invoke({
        "messages": [{"role": "user", "content": "Calculate a 20% tip on $85"}]
    })
    assert offered(server)[0] == ["get_weather", "calculate_tip"]
    assert tool_result(result).content == "Tip: $17.00, Total: $102.00"
