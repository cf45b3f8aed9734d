"""LangChain's context engineering page, its Python examples run with only their imports
changed: model context (system prompts, messages, tools, the model, the response format), tool
context (tools reading and writing the state, the store and the runtime context) and life-cycle
context (summarization). Examples naming a model string run as written against the loopback
server of the ``server`` fixture, which records each request; the others get a function model
that records its prompts. What the docs leave undefined (``public_search``...) is defined here,
and ``tools=[...]`` is ``tools=[]``. Where an example streams steps, they are compared with
LangChain's for the same program and scripted model (docs/middleware.md lists the
differences)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NotRequired

import langchain.agents.middleware as lc_middleware
import pytest
from langchain.agents import create_agent as lc_create_agent
from langchain.agents.structured_output import ProviderStrategy as LcProviderStrategy
from langchain.tools import ToolRuntime as LcToolRuntime
from langchain.tools import tool as lc_tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.types import Command as LcCommand
from pydantic import BaseModel, Field

import rxagent.messages as rx_messages
from rxagent import AgentState, InvalidUpdateError, create_agent
from rxagent.chat_models import init_chat_model
from rxagent.middleware import (
    ModelRequest,
    ModelResponse,
    SummarizationMiddleware,
    dynamic_prompt,
    wrap_model_call,
)
from rxagent.store import InMemoryStore
from rxagent.testing import FunctionChatModel
from rxagent.tools import ToolRuntime, tool
from rxagent.types import Command

from ..chat_models.loopback import LoopbackServer
from ..test_langgraph_parity import ChatFake
from ..test_threads_parity import Ids
from .over_the_wire import calls, claude_text, sent_models, text
from .test_parity import LIBS, QUESTION, prompts, stream
from .test_parity import model as parity_model


def recording() -> tuple[FunctionChatModel, list[list[Any]]]:
    prompts: list[list[Any]] = []

    def reply(messages: Any, tools: Any) -> str:
        prompts.append([(m.type, m.content) for m in messages])
        return "ok"

    return FunctionChatModel(reply), prompts


@dataclass
class StoreContext:
    user_id: str


@dataclass
class RoleContext:
    user_role: str
    deployment_env: str


def test_system_prompts_from_the_state_the_store_and_the_context() -> None:
    @dynamic_prompt
    def state_aware_prompt(request: ModelRequest) -> str:
        # request.messages is a shortcut for request.state["messages"]
        message_count = len(request.messages)

        base = "You are a helpful assistant."

        if message_count > 10:
            base += "\nThis is a long conversation - be extra concise."

        return base

    @dynamic_prompt
    def store_aware_prompt(request: ModelRequest) -> str:
        user_id = request.runtime.context.user_id

        # Read from Store: get user preferences
        store = request.runtime.store
        user_prefs = store.get(("preferences",), user_id)

        base = "You are a helpful assistant."

        if user_prefs:
            style = user_prefs.value.get("communication_style", "balanced")
            base += f"\nUser prefers {style} responses."

        return base

    @dynamic_prompt
    def context_aware_prompt(request: ModelRequest) -> str:
        # Read from Runtime Context: user role and environment
        user_role = request.runtime.context.user_role
        env = request.runtime.context.deployment_env

        base = "You are a helpful assistant."

        if user_role == "admin":
            base += "\nYou have admin access. You can perform all operations."
        elif user_role == "viewer":
            base += "\nYou have read-only access. Guide users to read operations only."

        if env == "production":
            base += "\nBe extra careful with any data modifications."

        return base

    model, prompts = recording()
    long_talk = {"messages": [("user", f"message {n}") for n in range(11)]}
    create_agent(model=model, tools=[], middleware=[state_aware_prompt]).invoke(long_talk)
    assert prompts[-1][0] == ("system", "You are a helpful assistant.\nThis is a long "
                                        "conversation - be extra concise.")

    store = InMemoryStore()
    store.put(("preferences",), "u1", {"communication_style": "terse"})
    agent = create_agent(model=model, tools=[], middleware=[store_aware_prompt],
                         context_schema=StoreContext, store=store)
    agent.invoke({"messages": [("user", "hi")]}, context=StoreContext(user_id="u1"))
    assert prompts[-1][0] == ("system", "You are a helpful assistant.\nUser prefers terse "
                                        "responses.")

    agent = create_agent(model=model, tools=[], middleware=[context_aware_prompt],
                         context_schema=RoleContext)
    agent.invoke({"messages": [("user", "hi")]},
                 context=RoleContext(user_role="viewer", deployment_env="production"))
    assert prompts[-1][0] == ("system", "You are a helpful assistant.\nYou have read-only "
                                        "access. Guide users to read operations only.\nBe "
                                        "extra careful with any data modifications.")


class FilesState(AgentState):
    uploaded_files: NotRequired[list[dict[str, str]]]


def test_messages_injected_from_the_state_and_the_store() -> None:
    @wrap_model_call(state_schema=FilesState)
    def inject_file_context(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Inject context about files user has uploaded this session."""
        # Read from State: get uploaded files metadata
        uploaded_files = request.state.get("uploaded_files", [])

        if uploaded_files:
            # Build context about available files
            file_descriptions = []
            for file in uploaded_files:
                file_descriptions.append(
                    f"- {file['name']} ({file['type']}): {file['summary']}"
                )

            file_context = f"""Files you have access to in this conversation:
{chr(10).join(file_descriptions)}

Reference these files when answering questions."""

            # Inject file context before recent messages
            messages = [
                *request.messages,
                {"role": "user", "content": file_context},
            ]
            request = request.override(messages=messages)

        return handler(request)

    @wrap_model_call
    def inject_writing_style(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Inject user's email writing style from Store."""
        user_id = request.runtime.context.user_id

        # Read from Store: get user's writing style examples
        store = request.runtime.store
        writing_style = store.get(("writing_style",), user_id)

        if writing_style:
            style = writing_style.value
            # Build style guide from stored examples
            style_context = f"""Your writing style:
- Tone: {style.get('tone', 'professional')}
- Typical greeting: "{style.get('greeting', 'Hi')}"
- Typical sign-off: "{style.get('sign_off', 'Best')}"
- Example email you've written:
{style.get('example_email', '')}"""

            # Append at end - models pay more attention to final messages
            messages = [
                *request.messages,
                {"role": "user", "content": style_context}
            ]
            request = request.override(messages=messages)

        return handler(request)

    model, prompts = recording()
    agent = create_agent(model=model, tools=[], middleware=[inject_file_context])
    result = agent.invoke({"messages": [("user", "what is in q3.pdf?")], "uploaded_files": [
        {"name": "q3.pdf", "type": "pdf", "summary": "Q3 numbers"}]})
    assert prompts[-1][-1] == ("human", "Files you have access to in this conversation:\n"
                                        "- q3.pdf (pdf): Q3 numbers\n\nReference these files "
                                        "when answering questions.")
    assert len(result["messages"]) == 2  # the injected message is the call's, not the state's

    store = InMemoryStore()
    store.put(("writing_style",), "u1", {"tone": "warm", "greeting": "Hello"})
    agent = create_agent(model=model, tools=[], middleware=[inject_writing_style],
                         context_schema=StoreContext, store=store)
    agent.invoke({"messages": [("user", "draft an email")]}, context=StoreContext(user_id="u1"))
    assert prompts[-1][-1][1].startswith("Your writing style:\n- Tone: warm\n- Typical "
                                         'greeting: "Hello"')



@dataclass
class ComplianceContext:
    user_jurisdiction: str
    industry: str
    compliance_frameworks: list[str]


def test_messages_injected_from_the_runtime_context(server: LoopbackServer) -> None:
    @wrap_model_call
    def inject_compliance_rules(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Inject compliance constraints from Runtime Context."""
        # Read from Runtime Context: get compliance requirements
        jurisdiction = request.runtime.context.user_jurisdiction
        industry = request.runtime.context.industry
        frameworks = request.runtime.context.compliance_frameworks

        # Build compliance constraints
        rules = []
        if "GDPR" in frameworks:
            rules.append("- Must obtain explicit consent before processing personal data")
            rules.append("- Users have right to data deletion")
        if "HIPAA" in frameworks:
            rules.append("- Cannot share patient health information without authorization")
            rules.append("- Must use secure, encrypted communication")
        if industry == "finance":
            rules.append("- Cannot provide financial advice without proper disclaimers")

        if rules:
            compliance_context = f"""Compliance requirements for {jurisdiction}:
{chr(10).join(rules)}"""

            # Append at end - models pay more attention to final messages
            messages = [
                *request.messages,
                {"role": "user", "content": compliance_context}
            ]
            request = request.override(messages=messages)

        return handler(request)

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[],
        middleware=[inject_compliance_rules],
        context_schema=ComplianceContext
    )
    server.add(text("ok"), text("ok"))
    result = agent.invoke({"messages": [("user", "can I invest?")]}, context=ComplianceContext(
        user_jurisdiction="EU", industry="finance", compliance_frameworks=["GDPR"]))
    agent.invoke({"messages": [("user", "hi")]}, context=ComplianceContext(
        user_jurisdiction="US", industry="retail", compliance_frameworks=[]))
    assert server.requests[0].json["messages"][-1] == {
        "role": "user", "content": "Compliance requirements for EU:\n- Must obtain explicit "
        "consent before processing personal data\n- Users have right to data deletion\n- "
        "Cannot provide financial advice without proper disclaimers"}
    assert [m["content"] for m in server.requests[1].json["messages"]] == ["hi"]  # no rules
    assert [m.content for m in result["messages"]] == ["can I invest?", "ok"]  # transient

# --- Model context: Tools ----------------------------------------------------------------------
# These examples name a model string ("openai:gpt-4o"): they run as written against the
# loopback server of the ``server`` fixture, which records what each request offered.


def offered(server: LoopbackServer, index: int = -1) -> list[str]:
    """The names of the tools request ``index`` offered the model."""
    return [spec["function"]["name"] for spec in server.requests[index].json.get("tools", [])]


def public_search(query: str) -> str:
    """Search public documents."""
    return "public results"


def private_search(query: str) -> str:
    """Search private documents."""
    return "private results"


def advanced_search(query: str) -> str:
    """Search with filters."""
    return "advanced results"


def test_a_tool_defined_with_parse_docstring_describes_itself_and_its_arguments() -> None:
    @tool(parse_docstring=True)
    def search_orders(
        user_id: str,
        status: str,
        limit: int = 10
    ) -> str:
        """Search for user orders by status.

        Use this when the user asks about order history or wants to check
        order status. Always filter by the provided status.

        Args:
            user_id: Unique identifier for the user
            status: Order status: 'pending', 'shipped', or 'delivered'
            limit: Maximum number of results to return
        """
        # Implementation here
        pass

    # As LangChain's @tool(parse_docstring=True) offers the same function, but for two
    # details (docs/middleware.md): rxagent keeps the paragraph break LangChain's parser
    # turns into a space, and closes the object (additionalProperties false).
    theirs = convert_to_openai_tool(lc_tool(parse_docstring=True)(search_orders.func))
    ours = search_orders.tool_spec()
    assert ours["name"] == theirs["function"]["name"] == "search_orders"
    assert ours["description"] == theirs["function"]["description"].replace(
        "status. Use", "status.\n\nUse")
    assert ours["parameters"] == {**theirs["function"]["parameters"],
                                  "additionalProperties": False}
    assert ours["parameters"]["properties"]["status"]["description"] == (
        "Order status: 'pending', 'shipped', or 'delivered'")



def test_parse_docstring_false_describes_the_tool_by_its_whole_docstring() -> None:
    def lookup(key: str) -> str:
        """Look a key up.

        Args:
            key: the key
        """
        return key

    theirs = lc_tool(parse_docstring=False)(lookup).description
    ours = tool(parse_docstring=False)(lookup)
    assert ours.description == inspect.cleandoc(theirs) == (
        "Look a key up.\n\nArgs:\n    key: the key")
    assert tool(lookup).description == "Look a key up."

def test_tools_chosen_from_the_state(server: LoopbackServer) -> None:
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
        model="openai:gpt-4o",
        tools=[public_search, private_search, advanced_search],
        middleware=[state_based_tools]
    )
    server.add(calls(("public_search", {"query": "refunds"})), text("Found it."))
    result = agent.invoke({"messages": [("user", "find the refund policy")]})
    assert result["messages"][-1].content == "Found it."
    # Neither call was offered more than the public tool: nothing in the state says
    # "authenticated" (the agent's state has no such key, as LangChain's has none).
    assert [offered(server, 0), offered(server, 1)] == [["public_search"]] * 2
    assert sent_models(server) == ["gpt-4o", "gpt-4o"]

    # Given in the input, the key is refused, where LangChain drops it without a word (and so
    # still offers only the public tool); docs/middleware.md.
    with pytest.raises(InvalidUpdateError, match=r"\['authenticated'\]"):
        agent.invoke({"messages": [("user", "hi")], "authenticated": True})

    # Declared in the agent's state, it opens the other tools: all but the advanced one
    # early in the conversation, all of them from the fifth message on.
    class AuthState(AgentState):
        authenticated: NotRequired[bool]

    agent = create_agent(model="openai:gpt-4o",
                         tools=[public_search, private_search, advanced_search],
                         middleware=[state_based_tools], state_schema=AuthState)
    server.add(text("ok"), text("ok"))
    agent.invoke({"messages": [("user", "hi")], "authenticated": True})
    agent.invoke({**history(5), "authenticated": True})
    assert offered(server, 2) == ["public_search", "private_search"]
    assert offered(server, 3) == ["public_search", "private_search", "advanced_search"]


@dataclass
class UserContext:
    user_id: str


def test_tools_chosen_from_the_store(server: LoopbackServer) -> None:
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
        model="openai:gpt-4o",
        tools=[search_tool, analysis_tool, export_tool],
        middleware=[store_based_tools],
        context_schema=UserContext,
        store=InMemoryStore()
    )
    agent.store.put(("features",), "u1", {"enabled_tools": ["search_tool", "export_tool"]})
    server.add(text("ok"), text("ok"))
    agent.invoke({"messages": [("user", "hi")]}, context=UserContext(user_id="u1"))
    agent.invoke({"messages": [("user", "hi")]}, context=UserContext(user_id="u2"))
    assert offered(server, 0) == ["search_tool", "export_tool"]
    assert offered(server, 1) == ["search_tool", "analysis_tool", "export_tool"]  # no flags


def search_tool(query: str) -> str:
    """Search."""
    return "results"


def analysis_tool(data: str) -> str:
    """Analyse data."""
    return "analysis"


def export_tool(data: str) -> str:
    """Export data."""
    return "exported"


@dataclass
class RoleOnlyContext:
    user_role: str


def read_data(key: str) -> str:
    """Read a record."""
    return "record"


def write_data(key: str, value: str) -> str:
    """Write a record."""
    return "written"


def delete_data(key: str) -> str:
    """Delete a record."""
    return "deleted"


def test_tools_chosen_from_the_runtime_context(server: LoopbackServer) -> None:
    @wrap_model_call
    def context_based_tools(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Filter tools based on Runtime Context permissions."""
        # Read from Runtime Context: get user role
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
        model="openai:gpt-4o",
        tools=[read_data, write_data, delete_data],
        middleware=[context_based_tools],
        context_schema=RoleOnlyContext
    )
    server.add(text("ok"), text("ok"), text("ok"))
    for role in ("admin", "editor", "viewer"):
        agent.invoke({"messages": [("user", "hi")]}, context=RoleOnlyContext(user_role=role))
    assert [offered(server, n) for n in range(3)] == [
        ["read_data", "write_data", "delete_data"], ["read_data", "write_data"], ["read_data"]]


# --- Model context: Model (dynamic model selection) -------------------------------------------
# ``tools=[...]`` in the docs stands for the agent's tools: none are needed here.


def history(count: int) -> dict[str, Any]:
    return {"messages": [("user", f"message {n}") for n in range(count)]}


def test_the_model_chosen_from_the_state(server: LoopbackServer) -> None:
    # Initialize models once outside the middleware
    large_model = init_chat_model("anthropic:claude-sonnet-4-5")
    standard_model = init_chat_model("openai:gpt-4o")
    efficient_model = init_chat_model("openai:gpt-4o-mini")

    @wrap_model_call
    def state_based_model(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Select model based on State conversation length."""
        # request.messages is a shortcut for request.state["messages"]
        message_count = len(request.messages)

        if message_count > 20:
            # Long conversation - use model with larger context window
            model = large_model
        elif message_count > 10:
            # Medium conversation
            model = standard_model
        else:
            # Short conversation - use efficient model
            model = efficient_model

        request = request.override(model=model)

        return handler(request)

    agent = create_agent(
        model="openai:gpt-4o-mini",
        tools=[],
        middleware=[state_based_model]
    )
    server.add(text("short"), text("medium"), claude_text("long"))
    answers = [agent.invoke(history(count))["messages"][-1].content for count in (3, 11, 21)]
    assert answers == ["short", "medium", "long"]
    assert sent_models(server) == ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5"]
    assert server.requests[2].path.endswith("/messages")  # Anthropic's endpoint


def test_the_model_chosen_from_the_store(server: LoopbackServer) -> None:
    # Initialize available models once
    MODEL_MAP = {
        "gpt-4o": init_chat_model("openai:gpt-4o"),
        "gpt-4o-mini": init_chat_model("openai:gpt-4o-mini"),
        "claude-sonnet": init_chat_model("anthropic:claude-sonnet-4-5"),
    }

    @wrap_model_call
    def store_based_model(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Select model based on Store preferences."""
        user_id = request.runtime.context.user_id

        # Read from Store: get user's preferred model
        store = request.runtime.store
        user_prefs = store.get(("preferences",), user_id)

        if user_prefs:
            preferred_model = user_prefs.value.get("preferred_model")
            if preferred_model and preferred_model in MODEL_MAP:
                request = request.override(model=MODEL_MAP[preferred_model])

        return handler(request)

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[],
        middleware=[store_based_model],
        context_schema=UserContext,
        store=InMemoryStore()
    )
    agent.store.put(("preferences",), "fan", {"preferred_model": "claude-sonnet"})
    agent.store.put(("preferences",), "thrifty", {"preferred_model": "gpt-4o-mini"})
    agent.store.put(("preferences",), "odd", {"preferred_model": "gpt-2"})
    server.add(claude_text("ok"), text("ok"), text("ok"), text("ok"))
    for user in ("fan", "thrifty", "odd", "new"):
        agent.invoke({"messages": [("user", "hi")]}, context=UserContext(user_id=user))
    assert sent_models(server) == ["claude-sonnet-4-5", "gpt-4o-mini", "gpt-4o", "gpt-4o"]


@dataclass
class CostContext:
    cost_tier: str
    environment: str


def test_the_model_chosen_from_the_runtime_context(server: LoopbackServer) -> None:
    # Initialize models once outside the middleware
    premium_model = init_chat_model("anthropic:claude-sonnet-4-5")
    standard_model = init_chat_model("openai:gpt-4o")
    budget_model = init_chat_model("openai:gpt-4o-mini")

    @wrap_model_call
    def context_based_model(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Select model based on Runtime Context."""
        # Read from Runtime Context: cost tier and environment
        cost_tier = request.runtime.context.cost_tier
        environment = request.runtime.context.environment

        if environment == "production" and cost_tier == "premium":
            # Production premium users get best model
            model = premium_model
        elif cost_tier == "budget":
            # Budget tier gets efficient model
            model = budget_model
        else:
            # Standard tier
            model = standard_model

        request = request.override(model=model)

        return handler(request)

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[],
        middleware=[context_based_model],
        context_schema=CostContext
    )
    server.add(claude_text("ok"), text("ok"), text("ok"))
    for tier, env in (("premium", "production"), ("budget", "production"),
                      ("premium", "staging")):
        agent.invoke({"messages": [("user", "hi")]},
                     context=CostContext(cost_tier=tier, environment=env))
    assert sent_models(server) == ["claude-sonnet-4-5", "gpt-4o-mini", "gpt-4o"]


# --- Model context: Response Format ------------------------------------------------------------


class CustomerSupportTicket(BaseModel):
    """Structured ticket information extracted from customer message."""

    category: str = Field(
        description="Issue category: 'billing', 'technical', 'account', or 'product'"
    )
    priority: str = Field(
        description="Urgency level: 'low', 'medium', 'high', or 'critical'"
    )
    summary: str = Field(
        description="One-sentence summary of the customer's issue"
    )
    customer_sentiment: str = Field(
        description="Customer's emotional tone: 'frustrated', 'neutral', or 'satisfied'"
    )


def sent_format(server: LoopbackServer, index: int = -1) -> Any:
    """The ``response_format`` request ``index`` carried (OpenAI's native structured output)."""
    return server.requests[index].json.get("response_format")


def test_a_defined_format_is_what_the_model_is_asked_for(server: LoopbackServer) -> None:
    agent = create_agent(model="openai:gpt-4o", tools=[],
                         response_format=CustomerSupportTicket)
    ticket = {"category": "billing", "priority": "high", "summary": "Charged twice.",
              "customer_sentiment": "frustrated"}
    server.add(text(json.dumps(ticket)))
    result = agent.invoke({"messages": [("user", "You charged me twice!")]})
    assert result["structured_response"] == CustomerSupportTicket(**ticket)
    # The schema sent, descriptions and all, is the one LangChain gives for the same class.
    theirs = LcProviderStrategy(CustomerSupportTicket).to_model_kwargs()["response_format"]
    assert sent_format(server)["json_schema"]["name"] == theirs["json_schema"]["name"]
    assert sent_format(server)["json_schema"]["schema"] == theirs["json_schema"]["schema"]
    assert sent_format(server)["json_schema"]["schema"]["properties"]["priority"][
        "description"] == "Urgency level: 'low', 'medium', 'high', or 'critical'"


class SimpleResponse(BaseModel):
    """Simple response for early conversation."""
    answer: str = Field(description="A brief answer")


class DetailedResponse(BaseModel):
    """Detailed response for established conversation."""
    answer: str = Field(description="A detailed answer")
    reasoning: str = Field(description="Explanation of reasoning")
    confidence: float = Field(description="Confidence score 0-1")


def test_the_format_chosen_from_the_state(server: LoopbackServer) -> None:
    @wrap_model_call
    def state_based_output(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Select output format based on State."""
        # request.messages is a shortcut for request.state["messages"]
        message_count = len(request.messages)

        if message_count < 3:
            # Early conversation - use simple format
            request = request.override(response_format=SimpleResponse)
        else:
            # Established conversation - use detailed format
            request = request.override(response_format=DetailedResponse)

        return handler(request)

    # The agent has no response_format of its own: the middleware's is used, as in LangChain.
    agent = create_agent(
        model="openai:gpt-4o",
        tools=[],
        middleware=[state_based_output]
    )
    server.add(text('{"answer": "Yes."}'),
               text('{"answer": "Yes, because...", "reasoning": "It is.", "confidence": 0.9}'))
    early = agent.invoke(history(1))
    later = agent.invoke(history(3))
    assert early["structured_response"] == SimpleResponse(answer="Yes.")
    assert later["structured_response"] == DetailedResponse(
        answer="Yes, because...", reasoning="It is.", confidence=0.9)
    assert [sent_format(server, n)["json_schema"]["name"] for n in range(2)] == [
        "SimpleResponse", "DetailedResponse"]



@pytest.mark.anyio
async def test_a_format_given_by_an_async_wrapper_under_asyncio_and_trio(
        server: LoopbackServer) -> None:
    # The docs' state-based format, written as an async wrapper and streamed with astream.
    @wrap_model_call
    async def state_based_output(
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        chosen = SimpleResponse if len(request.messages) < 3 else DetailedResponse
        return await handler(request.override(response_format=chosen))

    agent = create_agent(model="openai:gpt-4o", tools=[], middleware=[state_based_output])
    server.add(text('{"answer": "Yes."}'))
    parts = [part async for part in agent.astream(history(1), stream_mode="updates")]
    assert parts == [{"model": {"messages": [parts[0]["model"]["messages"][0]],
                                "structured_response": SimpleResponse(answer="Yes.")}}]
    assert sent_format(server)["json_schema"]["name"] == "SimpleResponse"

class VerboseResponse(BaseModel):
    """Verbose response with details."""
    answer: str = Field(description="Detailed answer")
    sources: list[str] = Field(description="Sources used")


class ConciseResponse(BaseModel):
    """Concise response."""
    answer: str = Field(description="Brief answer")


def test_the_format_chosen_from_the_store(server: LoopbackServer) -> None:
    @wrap_model_call
    def store_based_output(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Select output format based on Store preferences."""
        user_id = request.runtime.context.user_id

        # Read from Store: get user's preferred response style
        store = request.runtime.store
        user_prefs = store.get(("preferences",), user_id)

        if user_prefs:
            style = user_prefs.value.get("response_style", "concise")
            if style == "verbose":
                request = request.override(response_format=VerboseResponse)
            else:
                request = request.override(response_format=ConciseResponse)

        return handler(request)

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[],
        middleware=[store_based_output],
        context_schema=UserContext,
        store=InMemoryStore()
    )
    agent.store.put(("preferences",), "reader", {"response_style": "verbose"})
    agent.store.put(("preferences",), "skimmer", {})
    server.add(text('{"answer": "Long.", "sources": ["a", "b"]}'), text('{"answer": "Short."}'),
               text("Plain text."))
    answers = [agent.invoke({"messages": [("user", "hi")]}, context=UserContext(user_id=user))
               for user in ("reader", "skimmer", "stranger")]
    assert answers[0]["structured_response"] == VerboseResponse(answer="Long.",
                                                                sources=["a", "b"])
    assert answers[1]["structured_response"] == ConciseResponse(answer="Short.")
    # No preferences: no format, a plain answer and no structured response.
    assert "structured_response" not in answers[2]
    assert sent_format(server, 2) is None
    assert answers[2]["messages"][-1].content == "Plain text."


@dataclass
class OutputContext:
    user_role: str
    environment: str


class AdminResponse(BaseModel):
    """Response with technical details for admins."""
    answer: str = Field(description="Answer")
    debug_info: dict = Field(description="Debug information")  # type: ignore[type-arg]
    system_status: str = Field(description="System status")


class UserResponse(BaseModel):
    """Simple response for regular users."""
    answer: str = Field(description="Answer")


def test_the_format_chosen_from_the_runtime_context(server: LoopbackServer) -> None:
    @wrap_model_call
    def context_based_output(
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """Select output format based on Runtime Context."""
        # Read from Runtime Context: user role and environment
        user_role = request.runtime.context.user_role
        environment = request.runtime.context.environment

        if user_role == "admin" and environment == "production":
            # Admins in production get detailed output
            request = request.override(response_format=AdminResponse)
        else:
            # Regular users get simple output
            request = request.override(response_format=UserResponse)

        return handler(request)

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[],
        middleware=[context_based_output],
        context_schema=OutputContext
    )
    server.add(text('{"answer": "Up.", "debug_info": {"load": 1}, "system_status": "green"}'),
               text('{"answer": "All good."}'))
    admin = agent.invoke({"messages": [("user", "status?")]},
                         context=OutputContext(user_role="admin", environment="production"))
    user = agent.invoke({"messages": [("user", "status?")]},
                        context=OutputContext(user_role="admin", environment="staging"))
    assert admin["structured_response"] == AdminResponse(
        answer="Up.", debug_info={"load": 1}, system_status="green")
    assert user["structured_response"] == UserResponse(answer="All good.")


def test_a_format_given_by_middleware_needs_the_native_form_as_in_langchain() -> None:
    # Without a response_format at create_agent no output tool is declared, so a model with no
    # native structured output cannot answer in the format: both libraries refuse the call.
    def answering(messages: Any, tools: Any) -> str:
        return '{"answer": "Yes."}'

    @wrap_model_call
    def simple(request: ModelRequest,
               handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
        return handler(request.override(response_format=SimpleResponse))

    agent = create_agent(model=FunctionChatModel(answering), tools=[], middleware=[simple])
    with pytest.raises(ValueError, match="wasn't declared in the original response format"):
        agent.invoke(history(1))

    @lc_middleware.wrap_model_call
    def lc_simple(request: Any, handler: Any) -> Any:
        return handler(request.override(response_format=SimpleResponse))

    lc_agent = lc_create_agent(model=ChatFake(replies=["{}"]), tools=[], middleware=[lc_simple])
    with pytest.raises(ValueError, match="wasn't declared in the original response format"):
        lc_agent.invoke(history(1))


# --- Tool Context: reads ------------------------------------------------------------------------


def tool_answers(result: dict[str, Any]) -> list[str]:
    return [m.content for m in result["messages"] if m.type == "tool"]


def test_a_tool_reads_the_state(server: LoopbackServer) -> None:
    @tool
    def check_authentication(
        runtime: ToolRuntime
    ) -> str:
        """Check if user is authenticated."""
        # Read from State: check current auth status
        current_state = runtime.state
        is_authenticated = current_state.get("authenticated", False)

        if is_authenticated:
            return "User is authenticated"
        else:
            return "User is not authenticated"

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[check_authentication]
    )
    server.add(calls(("check_authentication", {})), text("You are not signed in."))
    result = agent.invoke({"messages": [("user", "am I signed in?")]})
    assert tool_answers(result) == ["User is not authenticated"]
    # The runtime parameter is not offered to the model.
    offered_tool = server.requests[0].json["tools"][0]["function"]
    assert offered_tool["parameters"]["properties"] == {}


def test_a_tool_reads_the_store(server: LoopbackServer) -> None:
    @tool
    def get_preference(
        preference_key: str,
        runtime: ToolRuntime[UserContext]
    ) -> str:
        """Get user preference from Store."""
        user_id = runtime.context.user_id

        # Read from Store: get existing preferences
        store = runtime.store
        existing_prefs = store.get(("preferences",), user_id)

        if existing_prefs:
            value = existing_prefs.value.get(preference_key)
            return (f"{preference_key}: {value}" if value
                    else f"No preference set for {preference_key}")
        else:
            return "No preferences found"

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[get_preference],
        context_schema=UserContext,
        store=InMemoryStore()
    )
    agent.store.put(("preferences",), "u1", {"language": "French"})
    server.add(calls(("get_preference", {"preference_key": "language"}),
                     ("get_preference", {"preference_key": "units"})), text("French."),
               calls(("get_preference", {"preference_key": "language"})), text("None."))
    first = agent.invoke({"messages": [("user", "my language?")]},
                         context=UserContext(user_id="u1"))
    second = agent.invoke({"messages": [("user", "my language?")]},
                          context=UserContext(user_id="u2"))
    assert tool_answers(first) == ["language: French", "No preference set for units"]
    assert tool_answers(second) == ["No preferences found"]


@dataclass
class ConnectionContext:
    user_id: str
    api_key: str
    db_connection: str


def test_a_tool_reads_the_runtime_context(server: LoopbackServer) -> None:
    queries: list[tuple[str, str, str]] = []

    def perform_database_query(db_connection: str, query: str, api_key: str) -> list[str]:
        queries.append((db_connection, query, api_key))
        return ["row 1", "row 2"]

    @tool
    def fetch_user_data(
        query: str,
        runtime: ToolRuntime[ConnectionContext]
    ) -> str:
        """Fetch data using Runtime Context configuration."""
        # Read from Runtime Context: get API key and DB connection
        user_id = runtime.context.user_id
        api_key = runtime.context.api_key
        db_connection = runtime.context.db_connection

        # Use configuration to fetch data
        results = perform_database_query(db_connection, query, api_key)

        return f"Found {len(results)} results for user {user_id}"

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[fetch_user_data],
        context_schema=ConnectionContext
    )

    server.add(calls(("fetch_user_data", {"query": "orders"})), text("You have 2 orders."))
    # Invoke with runtime context
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "Get my data"}]},
        context=ConnectionContext(
            user_id="user_123",
            api_key="sk-...",
            db_connection="postgresql://..."
        )
    )
    assert queries == [("postgresql://...", "orders", "sk-...")]
    assert tool_answers(result) == ["Found 2 results for user user_123"]
    # Nothing of the context reaches the model.
    assert "sk-..." not in json.dumps([r.json for r in server.requests])


# --- Tool Context: writes -----------------------------------------------------------------------


def test_a_tool_writing_the_state_as_the_docs_write_it_is_refused(server: LoopbackServer) -> None:
    @tool
    def authenticate_user(
        password: str,
        runtime: ToolRuntime
    ) -> Command:
        """Authenticate user and update State."""
        # Perform authentication (simplified)
        if password == "correct":
            # Write to State: mark as authenticated using Command
            return Command(
                update={"authenticated": True},
            )
        else:
            return Command(update={"authenticated": False})

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[authenticate_user]
    )
    # The Command answers no tool call (and "authenticated" is no key of the state): LangChain
    # ends the run with a ValueError; rxagent answers the call with an error, as it does for
    # any tool that raises (docs/middleware.md), and the run goes on.
    server.add(calls(("authenticate_user", {"password": "correct"})), text("Sorry."))
    result = agent.invoke({"messages": [("user", "my password is 'correct'")]})
    [answer] = [m for m in result["messages"] if m.type == "tool"]
    assert answer.status == "error"
    assert "updates the state without answering its call" in answer.content
    assert "authenticated" not in result

    @lc_tool
    def lc_authenticate_user(password: str, runtime: LcToolRuntime) -> LcCommand:
        """Authenticate user and update State."""
        return LcCommand(update={"authenticated": password == "correct"})

    lc_agent = lc_create_agent(model=ChatFake(replies=[[{
        "name": "lc_authenticate_user", "args": {"password": "correct"}, "id": "c1"}], "Sorry."]),
        tools=[lc_authenticate_user])
    with pytest.raises(ValueError, match="Expected to have a matching ToolMessage"):
        lc_agent.invoke({"messages": [("user", "my password is 'correct'")]})


def authenticating(name: str) -> tuple[Any, Any]:
    """The docs' state write made whole (the Command answers its call, the state has the key),
    and their state read after it, in one run under ``name``'s library."""
    lib = LIBS[name]
    runtime_type = {"langchain": LcToolRuntime, "rxagent": ToolRuntime}[name]

    class AuthState(lib.mw.AgentState):
        authenticated: NotRequired[bool]

    def authenticate_user(password: str, runtime: Any) -> Any:
        """Authenticate user and update State."""
        return lib.types.Command(update={
            "authenticated": password == "correct",
            "messages": [lib.messages.ToolMessage("Checked.", tool_call_id=runtime.tool_call_id)],
        })

    def check_authentication(runtime: Any) -> str:
        """Check if user is authenticated."""
        if runtime.state.get("authenticated", False):
            return "User is authenticated"
        return "User is not authenticated"

    tools = []
    for function in (authenticate_user, check_authentication):
        # Each library finds the runtime parameter by its annotation: its own ToolRuntime.
        function.__annotations__["runtime"] = runtime_type
        tools.append(lib.base.tool(function))
    fake = parity_model(name, [
        [{"name": "authenticate_user", "args": {"password": "correct"}, "id": "a1"}],
        [{"name": "check_authentication", "args": {}, "id": "c1"}],
        "Signed in."])
    agent = lib.agents.create_agent(fake, tools=tools, state_schema=AuthState)
    return agent, fake


def test_a_tool_writes_the_state_as_in_langchain() -> None:
    results = {}
    for name in LIBS:
        agent, fake = authenticating(name)
        number = Ids()
        results[name] = (stream(agent, QUESTION, ["updates", "values"], number),
                         prompts(fake.seen, number))
    ours, theirs = results["rxagent"], results["langchain"]
    assert [list(e[1]) for e in ours[0] if e[0] == "updates"] == [
        ["model"], ["tools"], ["model"], ["tools"], ["model"]]
    assert ours == theirs
    final = ours[0][-1][1]
    assert final["authenticated"] is True
    assert [m[1] for m in final["messages"] if m[0] == "ToolMessage"] == [
        "Checked.", "User is authenticated"]


def test_a_tool_writes_the_store(server: LoopbackServer) -> None:
    @tool
    def save_preference(
        preference_key: str,
        preference_value: str,
        runtime: ToolRuntime[UserContext]
    ) -> str:
        """Save user preference to Store."""
        user_id = runtime.context.user_id

        # Read existing preferences
        store = runtime.store
        existing_prefs = store.get(("preferences",), user_id)

        # Merge with new preference
        prefs = existing_prefs.value if existing_prefs else {}
        prefs[preference_key] = preference_value

        # Write to Store: save updated preferences
        store.put(("preferences",), user_id, prefs)

        return f"Saved preference: {preference_key} = {preference_value}"

    agent = create_agent(
        model="openai:gpt-4o",
        tools=[save_preference],
        context_schema=UserContext,
        store=InMemoryStore()
    )
    server.add(calls(("save_preference", {"preference_key": "language",
                                          "preference_value": "French"})), text("Saved."),
               calls(("save_preference", {"preference_key": "units",
                                          "preference_value": "metric"})), text("Saved."))
    first = agent.invoke({"messages": [("user", "I speak French")]},
                         context=UserContext(user_id="u1"))
    agent.invoke({"messages": [("user", "use metric")]}, context=UserContext(user_id="u1"))
    assert tool_answers(first) == ["Saved preference: language = French"]
    # The second session's write merged with the first's, in the store the agent was given.
    assert agent.store.get(("preferences",), "u1").value == {"language": "French",
                                                             "units": "metric"}
    assert agent.store.get(("preferences",), "u2") is None


# --- Life-cycle Context: summarization ----------------------------------------------------------


def long_talk(lib: Any, turns: int = 15, words: int = 100) -> dict[str, Any]:
    """``turns`` questions and answers of about ``words`` words each, then a question."""
    messages: list[Any] = []
    for turn in range(turns):
        messages.append(lib.HumanMessage(content=f"question {turn}: " + "lorem " * words))
        messages.append(lib.AIMessage(content=f"answer {turn}: " + "ipsum " * words))
    return {"messages": [*messages, lib.HumanMessage(content="and now?")]}


def test_summarization_replaces_older_messages_in_the_state(server: LoopbackServer) -> None:
    with pytest.warns(DeprecationWarning) as warned:
        agent = create_agent(
            model="openai:gpt-4o",
            tools=[],
            middleware=[
                SummarizationMiddleware(
                    model="openai:gpt-4o-mini",
                    max_tokens_before_summary=4000,  # Trigger summarization at 4000 tokens
                    messages_to_keep=20,  # Keep last 20 messages after summary
                ),
            ],
        )
    assert [str(w.message).split(" is ")[0] for w in warned] == [
        "max_tokens_before_summary", "messages_to_keep"]
    server.add(text("The user asked 15 questions about lorem."), text("Done."))
    result = agent.invoke(long_talk(rx_messages))  # 31 messages, about 6,000 tokens

    assert sent_models(server) == ["gpt-4o-mini", "gpt-4o"]
    assert "question 0:" in json.dumps(server.requests[0].json["messages"])
    # Persistently: the state itself now holds the summary and the 20 most recent messages
    # (the question just asked among them), then the reply; nothing older.
    messages = result["messages"]
    assert len(messages) == 1 + 20 + 1
    assert messages[0].type == "human"
    assert "The user asked 15 questions about lorem." in messages[0].content
    assert messages[-2].content == "and now?"
    assert messages[-1].content == "Done."
    assert not any("question 0:" in m.content for m in messages)
    assert len(server.requests[1].json["messages"]) == 1 + 20


def test_summarization_steps_as_in_langchain() -> None:
    steps = {}
    for name, lib in LIBS.items():
        summariser = parity_model(name, ["The user asked 15 questions."])
        with pytest.warns(DeprecationWarning):
            middleware = lib.mw.SummarizationMiddleware(
                model=summariser, max_tokens_before_summary=4000, messages_to_keep=6)
        agent = lib.agents.create_agent(parity_model(name, ["Done."]), tools=[],
                                        middleware=[middleware])
        steps[name] = [
            (node, len(update.get("messages", [])))
            for part in agent.stream(long_talk(lib.messages), stream_mode="updates")
            for node, update in part.items()]
    # The summary step removes every message and writes the summary and the 6 kept (not the
    # default 20: the deprecated name is read).
    assert steps["rxagent"] == steps["langchain"] == [
        ("SummarizationMiddleware.before_model", 1 + 1 + 6), ("model", 1)]
