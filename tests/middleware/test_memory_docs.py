"""The programs of LangChain's short-term memory docs that use middleware, with only their
imports (and the model, a scripted one whose replies are the docs' printed ones) changed; what
the docs print, the test checks."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from rxagent import AgentState, RunnableConfig, create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import REMOVE_ALL_MESSAGES, AIMessage, BaseMessage, RemoveMessage
from rxagent.middleware import (
    ModelRequest,
    SummarizationMiddleware,
    after_model,
    before_model,
    dynamic_prompt,
)
from rxagent.runtime import Runtime
from rxagent.testing import FunctionChatModel, ScriptedChatModel


class Recording(FunctionChatModel):
    """Answers with the scripted replies in turn, and keeps what each call was given."""

    def __init__(self, replies: list[Any]) -> None:
        self.prompts: list[list[BaseMessage]] = []
        pending = list(replies)

        def reply(messages: list[BaseMessage], tools: Any) -> Any:
            self.prompts.append(list(messages))
            return pending.pop(0)

        super().__init__(reply)


def test_trim_messages_before_the_model() -> None:
    @before_model
    def trim_messages(state: AgentState, runtime: Runtime) -> dict[str, Any] | None:
        """Keep only the last few messages to fit context window."""
        messages = state["messages"]

        if len(messages) <= 3:
            return None  # No changes needed

        first_msg = messages[0]
        recent_messages = messages[-3:] if len(messages) % 2 == 0 else messages[-4:]
        new_messages = [first_msg] + recent_messages  # noqa: RUF005 - as the docs write it

        return {
            "messages": [
                RemoveMessage(id=REMOVE_ALL_MESSAGES),
                *new_messages
            ]
        }

    model = Recording(["Hi Bob!", "Cats purr.", "Dogs bark.",
                       "Your name is Bob. You told me that earlier."])
    agent = create_agent(
        model,
        tools=[],
        middleware=[trim_messages],
        checkpointer=InMemorySaver(),
    )

    config: RunnableConfig = {"configurable": {"thread_id": "1"}}

    agent.invoke({"messages": "hi, my name is bob"}, config)
    agent.invoke({"messages": "write a short poem about cats"}, config)
    agent.invoke({"messages": "now do the same but for dogs"}, config)
    final_response = agent.invoke({"messages": "what's my name?"}, config)

    final_response["messages"][-1].pretty_print()
    assert final_response["messages"][-1].content.startswith("Your name is Bob.")
    # The last call saw the first message and the recent ones only, and the thread keeps
    # the trimmed history.
    # (Seven messages then, an odd count: the first and the last four.)
    kept = ["hi, my name is bob", "Cats purr.", "now do the same but for dogs", "Dogs bark.",
            "what's my name?"]
    assert [m.content for m in model.prompts[-1]] == kept
    assert [m.content for m in final_response["messages"]] == [
        *kept, "Your name is Bob. You told me that earlier."]


def test_delete_old_messages_after_the_model_streaming_values() -> None:
    @after_model
    def delete_old_messages(state: AgentState, runtime: Runtime) -> dict | None:
        """Remove old messages to keep conversation manageable."""
        messages = state["messages"]
        if len(messages) > 2:
            # remove the earliest two messages
            return {"messages": [RemoveMessage(id=m.id) for m in messages[:2]]}
        return None

    greeting = ("Hi Bob! Nice to meet you. How can I help you today? I can answer questions, "
                "brainstorm ideas, draft text, explain things, or help with code.")
    poem = "There once was a cat on a wall, Who barely moved at all..."
    unknown = "I don't know your name - you haven't told me!"
    agent = create_agent(
        ScriptedChatModel([greeting, poem, unknown]),
        tools=[],
        system_prompt="Please be concise and to the point.",
        middleware=[delete_old_messages],
        checkpointer=InMemorySaver(),
    )

    config: RunnableConfig = {"configurable": {"thread_id": "1"}}
    printed = []
    for question in ("hi! I'm bob", "write a short poem about cats", "what's my name?"):
        for event in agent.stream(
            {"messages": [{"role": "user", "content": question}]},
            config,
            stream_mode="values",
        ):
            printed.append([(message.type, message.content) for message in event["messages"]])

    # What the docs print, line for line.
    assert printed == [
        [("human", "hi! I'm bob")],
        [("human", "hi! I'm bob"), ("ai", greeting)],
        [("human", "hi! I'm bob"), ("ai", greeting), ("human", "write a short poem about cats")],
        [("human", "hi! I'm bob"), ("ai", greeting), ("human", "write a short poem about cats"),
         ("ai", poem)],
        [("human", "write a short poem about cats"), ("ai", poem)],
        [("human", "write a short poem about cats"), ("ai", poem), ("human", "what's my name?")],
        [("human", "write a short poem about cats"), ("ai", poem), ("human", "what's my name?"),
         ("ai", unknown)],
        [("human", "what's my name?"), ("ai", unknown)],
    ]


class CustomContext(TypedDict):
    user_name: str


def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"The weather in {city} is always sunny!"


def test_a_dynamic_prompt_from_the_context() -> None:
    @dynamic_prompt
    def dynamic_system_prompt(request: ModelRequest) -> str:
        user_name = request.runtime.context["user_name"]
        system_prompt = f"You are a helpful assistant. Address the user as {user_name}."
        return system_prompt

    call = AIMessage(content="", tool_calls=[
        {"name": "get_weather", "args": {"city": "San Francisco"}, "id": "call_1"}])
    model = Recording([call, "Hi John Smith, the weather in San Francisco is always sunny!"])
    agent = create_agent(
        model=model,
        tools=[get_weather],
        middleware=[dynamic_system_prompt],
        context_schema=CustomContext,
    )

    result = agent.invoke(
        {"messages": [{"role": "user", "content": "What is the weather in SF?"}]},
        context=CustomContext(user_name="John Smith"),
    )
    for msg in result["messages"]:
        msg.pretty_print()
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "ai"]
    assert result["messages"][2].content == "The weather in San Francisco is always sunny!"
    for prompt in model.prompts:  # every call got the prompt made for it
        assert prompt[0].type == "system"
        assert prompt[0].content == ("You are a helpful assistant. Address the user as "
                                     "John Smith.")


def test_validate_the_response_after_the_model() -> None:
    @after_model
    def validate_response(state: AgentState, runtime: Runtime) -> dict | None:
        """Remove messages containing sensitive words."""
        STOP_WORDS = ["password", "secret"]
        last_message = state["messages"][-1]
        if any(word in last_message.content for word in STOP_WORDS):
            return {"messages": [RemoveMessage(id=last_message.id)]}
        return None

    agent = create_agent(
        model=ScriptedChatModel(["The secret is 42.", "I cannot say."]),
        tools=[],
        middleware=[validate_response],
        checkpointer=InMemorySaver(),
    )
    config: RunnableConfig = {"configurable": {"thread_id": "1"}}
    first = agent.invoke({"messages": "tell me the secret"}, config)
    assert [m.content for m in first["messages"]] == ["tell me the secret"]
    second = agent.invoke({"messages": "then something else"}, config)
    assert [m.content for m in second["messages"]] == [
        "tell me the secret", "then something else", "I cannot say."]


def test_summarize_messages() -> None:
    # The docs' program; the models are scripted, and the trigger is low enough for these
    # short messages to reach it (the docs' 4000 tokens need a long conversation).
    summarizer = Recording(["The user is Bob; he asked for poems about cats and dogs."] * 4)
    model = Recording(["Hi Bob!", "Cats purr softly.", "Dogs bark loudly.", "Your name is Bob!"])
    checkpointer = InMemorySaver()

    agent = create_agent(
        model=model,
        tools=[],
        middleware=[
            SummarizationMiddleware(
                model=summarizer,
                trigger=("tokens", 40),
                keep=("messages", 2)
            )
        ],
        checkpointer=checkpointer,
    )

    config: RunnableConfig = {"configurable": {"thread_id": "1"}}
    agent.invoke({"messages": "hi, my name is bob"}, config)
    agent.invoke({"messages": "write a short poem about cats"}, config)
    agent.invoke({"messages": "now do the same but for dogs"}, config)
    final_response = agent.invoke({"messages": "what's my name?"}, config)

    final_response["messages"][-1].pretty_print()
    assert final_response["messages"][-1].content == "Your name is Bob!"
    # A summary was made, and the model then saw it instead of the old messages.
    assert summarizer.prompts and "hi, my name is bob" in str(summarizer.prompts[0])
    last_prompt = [m.content for m in model.prompts[-1]]
    assert "The user is Bob; he asked for poems about cats and dogs." in last_prompt[0]
    assert "hi, my name is bob" not in last_prompt
    assert last_prompt[-1] == "what's my name?"


class CustomAgentState(AgentState):
    user_id: str
    preferences: dict


def get_user_info() -> str:
    """Look up information about the current user."""
    return "No user profile on file."


def test_customizing_agent_memory() -> None:
    # The docs' program, as written there (the model scripted).
    agent = create_agent(
        ScriptedChatModel(["Hello!"]),
        tools=[get_user_info],
        state_schema=CustomAgentState,
        checkpointer=InMemorySaver(),
    )

    # Custom state can be passed in invoke
    result = agent.invoke(
        {
            "messages": [{"role": "user", "content": "Hello"}],
            "user_id": "user_123",
            "preferences": {"theme": "dark"}
        },
        {"configurable": {"thread_id": "1"}})
    assert result["user_id"] == "user_123" and result["preferences"] == {"theme": "dark"}
    saved = agent.get_state({"configurable": {"thread_id": "1"}}).values
    assert saved["preferences"] == {"theme": "dark"}
