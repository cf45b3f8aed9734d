"""LangChain's context engineering docs' model-context programs, with only their imports (and
the model, one that records its prompts) changed: prompts and messages drawn from the state,
the store and the runtime context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NotRequired

from rxagent import AgentState, create_agent
from rxagent.middleware import ModelRequest, ModelResponse, dynamic_prompt, wrap_model_call
from rxagent.store import InMemoryStore
from rxagent.testing import FunctionChatModel


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
