"""The middleware machinery under rxagent alone: async forms under asyncio and trio, calls that
still stream through ``wrap_model_call``, cancellation inside a wrapper, interrupts in hooks,
and the errors a misuse gets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated, Any, NotRequired

import anyio
import pytest

import rxagent
from rxagent import create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from rxagent.middleware import (
    AgentMiddleware,
    AgentState,
    ModelResponse,
    PrivateStateAttr,
    UntrackedValue,
    after_agent,
    after_model,
    before_agent,
    before_model,
    hook_config,
    wrap_model_call,
    wrap_tool_call,
)
from rxagent.runtime import Runtime
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.types import Command, interrupt

QUESTION = {"messages": [("user", "hi")]}
CONFIG = {"configurable": {"thread_id": "t"}}


def weather(city: str) -> str:
    """The weather."""
    return f"sunny in {city}"


def calling_then(text: str) -> ScriptedChatModel:
    call = AIMessage(content="", tool_calls=[
        {"name": "weather", "args": {"city": "Oslo"}, "id": "w1"}])
    return ScriptedChatModel([call, text])


def nodes(agent: Any, input: Any = QUESTION, config: Any = None) -> list[str]:
    return [node for update in agent.stream(input, config, stream_mode="updates")
            for node in update]


# -- async forms --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_hooks_and_wrappers_run_under_each_library() -> None:
    seen: list[str] = []

    class Async(AgentMiddleware):
        async def abefore_agent(self, state: Any, runtime: Runtime[Any]) -> None:
            await anyio.sleep(0)
            seen.append(f"before_agent:{runtime.context}")

        async def abefore_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
            return {"messages": [HumanMessage(content="(reminder)")]}

        async def awrap_model_call(self, request: Any, handler: Any) -> Any:
            response = await handler(request.override(system_prompt="Be kind."))
            seen.append(f"model saw system: {request.system_prompt}->Be kind.")
            return response

        async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
            result = await handler(request)
            return result.model_copy(update={"content": f"<{result.content}>"})

        async def aafter_agent(self, state: Any, runtime: Runtime[Any]) -> None:
            seen.append(f"after_agent:{len(state['messages'])}")

    prompts: list[list[Any]] = []
    replies = iter([AIMessage(content="", tool_calls=[
        {"name": "weather", "args": {"city": "Oslo"}, "id": "w1"}]), "done"])

    def reply(messages: Any, tools: Any) -> Any:
        prompts.append(list(messages))
        return next(replies)

    agent = create_agent(FunctionChatModel(reply), [weather], system_prompt="Be brief.",
                         middleware=[Async()])
    updates = [u async for u in agent.astream(QUESTION, stream_mode="updates", context="ctx")]
    assert [next(iter(u)) for u in updates] == [
        "Async.before_agent", "Async.before_model", "model", "tools", "Async.before_model",
        "model", "Async.after_agent"]
    assert updates[3]["tools"]["messages"][0].content == "<sunny in Oslo>"
    assert isinstance(prompts[0][0], SystemMessage) and prompts[0][0].content == "Be kind."
    assert [m.content for m in prompts[0][1:]] == ["hi", "(reminder)"]
    assert seen[0] == "before_agent:ctx" and seen[-1] == "after_agent:6"


# -- wrap_model_call ---------------------------------------------------------------------------


def test_a_retry_inside_wrap_model_call_streams_both_attempts() -> None:
    attempts: list[int] = []

    def reply(messages: Any, tools: Any) -> Iterator[Any]:
        attempts.append(len(attempts))
        yield AIMessageChunk(content="partial ")
        if len(attempts) == 1:
            raise rxagent.ServerError("overloaded", status_code=529)
        yield AIMessageChunk(content="answer")

    @wrap_model_call
    def retry(request: Any, handler: Any) -> Any:
        try:
            return handler(request)
        except rxagent.ModelCallError as error:
            assert error.partial is not None and error.partial.content == "partial "
            return handler(request)

    agent = create_agent(FunctionChatModel(reply), middleware=[retry])
    tokens = [chunk.content for chunk, meta in agent.stream(QUESTION, stream_mode="messages")
              if meta["langgraph_node"] == "model"]
    assert attempts == [0, 1]
    assert "".join(tokens) == "partial partial answer"
    assert agent.invoke(QUESTION)["messages"][-1].content == "partial answer"


def test_leaving_the_stream_cancels_the_call_inside_a_sync_wrapper() -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def reply(messages: Any, tools: Any) -> Any:
        started.set()
        try:
            yield AIMessageChunk(content="first")
            await anyio.sleep(10)  # cut short by the cancellation, or the test fails
            yield AIMessageChunk(content="never")
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    @wrap_model_call
    def passing(request: Any, handler: Any) -> Any:
        return handler(request)

    agent = create_agent(FunctionChatModel(reply), middleware=[passing])
    with agent.stream(QUESTION, stream_mode="messages") as parts:
        for chunk, _ in parts:
            assert chunk.content == "first"
            break
    assert started.is_set()
    assert cancelled.is_set(), "the model call in the wrapper's handler went on"


def test_wrap_model_call_may_return_a_bare_message_or_a_wrong_type() -> None:
    @wrap_model_call
    def canned(request: Any, handler: Any) -> Any:
        return AIMessage(content="canned")

    agent = create_agent(ScriptedChatModel([]), middleware=[canned])
    assert agent.invoke(QUESTION)["messages"][-1].content == "canned"

    @wrap_model_call
    def wrong(request: Any, handler: Any) -> Any:
        return "text"

    agent = create_agent(ScriptedChatModel(["x"]), middleware=[wrong])
    with pytest.raises(rxagent.UsageError, match=r"wrong\.wrap_model_call returns"):
        agent.invoke(QUESTION)


def test_a_wrapper_can_change_the_tools_and_model_settings() -> None:
    given: list[Any] = []

    def reply(messages: Any, tools: Any) -> str:
        given.append([t["name"] for t in tools])
        return "ok"

    def other(x: int) -> int:
        """Other."""
        return x

    @wrap_model_call
    def only_weather(request: Any, handler: Any) -> Any:
        return handler(request.override(
            tools=[t for t in request.tools if t.name == "weather"]))

    agent = create_agent(FunctionChatModel(reply), [weather, other], middleware=[only_weather])
    agent.invoke(QUESTION)
    assert given == [["weather"]]


# -- hooks --------------------------------------------------------------------------------------


def test_hook_order_with_several_middleware_is_langchains() -> None:
    order: list[str] = []

    def make(name: str) -> AgentMiddleware:
        class Each(AgentMiddleware):
            def before_model(self, state: Any, runtime: Any) -> None:
                order.append(f"{name}.before_model")

            def after_model(self, state: Any, runtime: Any) -> None:
                order.append(f"{name}.after_model")

            def wrap_model_call(self, request: Any, handler: Any) -> Any:
                order.append(f"{name}.wrap>")
                response = handler(request)
                order.append(f"<{name}.wrap")
                return response

        Each.__name__ = name
        return Each()

    agent = create_agent(FunctionChatModel(lambda messages, tools: "x"),
                         middleware=[make("A"), make("B")])
    assert nodes(agent) == ["A.before_model", "B.before_model", "model", "B.after_model",
                            "A.after_model"]
    order.clear()
    agent.invoke(QUESTION)
    assert order == ["A.before_model", "B.before_model", "A.wrap>", "B.wrap>", "<B.wrap",
                     "<A.wrap", "B.after_model", "A.after_model"]


def test_jump_to_end_from_before_agent_skips_the_model() -> None:
    @before_agent(can_jump_to=["end"])
    def closed(state: Any, runtime: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(content="We are closed.")], "jump_to": "end"}

    @after_agent
    def bye(state: Any, runtime: Any) -> None:
        return None

    model = ScriptedChatModel(["never"])
    agent = create_agent(model, middleware=[closed, bye])
    assert nodes(agent) == ["closed.before_agent", "bye.after_agent"]
    assert agent.invoke(QUESTION)["messages"][-1].content == "We are closed."
    assert model.calls == []


def test_a_jump_the_hook_is_not_allowed_is_ignored() -> None:
    class Sneaky(AgentMiddleware):
        def before_model(self, state: Any, runtime: Any) -> dict[str, Any]:
            return {"jump_to": "end"}

    class Allowed(AgentMiddleware):
        @hook_config(can_jump_to=["end"])
        def before_model(self, state: Any, runtime: Any) -> dict[str, Any]:
            return {"jump_to": "end"}

    assert "model" in nodes(create_agent(ScriptedChatModel(["x"]), middleware=[Sneaky()]))
    assert "model" not in nodes(create_agent(ScriptedChatModel(["x"]), middleware=[Allowed()]))


def test_state_schema_keys_private_and_untracked() -> None:
    class Counted(AgentState):
        calls: NotRequired[Annotated[int, PrivateStateAttr]]
        this_run: NotRequired[Annotated[int, UntrackedValue, PrivateStateAttr]]
        shown: NotRequired[str]

    @after_model(state_schema=Counted)
    def count(state: Any, runtime: Any) -> dict[str, Any]:
        return {"calls": state.get("calls", 0) + 1, "this_run": state.get("this_run", 0) + 1,
                "shown": "yes"}

    agent = create_agent(ScriptedChatModel(["a", "b"]), middleware=[count],
                         checkpointer=InMemorySaver())
    first = agent.invoke(QUESTION, CONFIG)
    assert set(first) == {"messages", "shown"}  # private keys are not in the result
    values = list(agent.stream(QUESTION, CONFIG, stream_mode="values"))
    # A thread keeps the private count across runs; the untracked one starts again.
    assert values[-1]["calls"] == 2 and values[-1]["this_run"] == 1
    saved = agent.get_state(CONFIG).values
    assert saved["calls"] == 2 and "this_run" not in saved


def test_an_interrupt_in_a_hook_stops_the_run_and_resumes_it() -> None:
    @before_model
    def ask(state: Any, runtime: Any) -> dict[str, Any] | None:
        if len(state["messages"]) > 1:
            return None
        answer = interrupt("May I answer?")
        return {"messages": [HumanMessage(content=f"(human said {answer})")]}

    model = FunctionChatModel(lambda messages, tools: messages[-1].content)
    agent = create_agent(model, middleware=[ask], checkpointer=InMemorySaver())
    first = agent.invoke(QUESTION, CONFIG)
    assert [i.value for i in first["__interrupt__"]] == ["May I answer?"]
    assert agent.get_state(CONFIG).next == ("ask.before_model",)
    final = agent.invoke(Command(resume="yes"), CONFIG, version="v2")
    assert final.interrupts == ()
    assert [m.content for m in final.value["messages"]] == [
        "hi", "(human said yes)", "(human said yes)"]


def test_interrupt_before_a_middleware_step() -> None:
    @before_model
    def look(state: Any, runtime: Any) -> None:
        return None

    agent = create_agent(ScriptedChatModel(["x"]), middleware=[look],
                         interrupt_before=["look.before_model"], checkpointer=InMemorySaver())
    agent.invoke(QUESTION, CONFIG)
    assert agent.get_state(CONFIG).next == ("look.before_model",)
    assert agent.invoke(None, CONFIG)["messages"][-1].content == "x"


def test_hooks_see_the_context_and_write_messages_by_id_without_a_thread() -> None:
    @before_model
    def redact(state: Any, runtime: Any) -> dict[str, Any]:
        first = state["messages"][0]
        return {"messages": [HumanMessage(content=f"{runtime.context}: ***", id=first.id)]}

    seen: list[Any] = []
    model = FunctionChatModel(lambda messages, tools: seen.append(messages) or "ok")
    agent = create_agent(model, middleware=[redact])
    result = agent.invoke({"messages": [HumanMessage(content="my card", id="m1")]},
                          context="ctx")
    assert [m.content for m in seen[0]] == ["ctx: ***"]
    assert [m.content for m in result["messages"]] == ["ctx: ***", "ok"]


# -- misuse -------------------------------------------------------------------------------------


def test_middleware_misuse_is_a_usage_error() -> None:
    model = ScriptedChatModel(["x"])
    with pytest.raises(rxagent.UsageError, match="list of AgentMiddleware"):
        create_agent(model, middleware=AgentMiddleware())  # type: ignore[arg-type]
    with pytest.raises(rxagent.UsageError, match="instantiate it"):
        create_agent(model, middleware=[AgentMiddleware])  # type: ignore[list-item]

    @before_model
    def same(state: Any, runtime: Any) -> None:
        return None

    with pytest.raises(rxagent.UsageError, match="share the name"):
        create_agent(model, middleware=[same, same])
    with pytest.raises(rxagent.UsageError, match="interrupt_before"):
        create_agent(model, middleware=[same], interrupt_before=["nope.before_model"])


def test_a_hook_that_returns_nonsense_fails_the_run_with_a_clear_error() -> None:
    @before_model
    def text(state: Any, runtime: Any) -> str:
        return "oops"

    @before_model
    def unknown(state: Any, runtime: Any) -> dict[str, Any]:
        return {"mood": "happy"}

    for hook, match in ((text, "returns a dict"), (unknown, r"\['mood'\]")):
        agent = create_agent(ScriptedChatModel(["x"]), middleware=[hook])
        with pytest.raises(rxagent.InvalidUpdateError, match=match):
            agent.invoke(QUESTION)


def test_an_interrupt_in_a_hook_without_a_checkpointer_is_a_usage_error() -> None:
    @after_model
    def ask(state: Any, runtime: Any) -> None:
        interrupt("?")

    agent = create_agent(ScriptedChatModel(["x"]), middleware=[ask])
    with pytest.raises(rxagent.UsageError, match="checkpointer"):
        agent.invoke(QUESTION)


def test_wrap_tool_call_can_answer_without_running_the_tool() -> None:
    ran: list[str] = []

    def tracked(city: str) -> str:
        """The weather."""
        ran.append(city)
        return "sunny"

    @wrap_tool_call
    def cached(request: Any, handler: Any) -> Any:
        return ToolMessage(content="cached", tool_call_id=request.tool_call["id"],
                           name=request.tool_call["name"])

    call = AIMessage(content="", tool_calls=[{"name": "tracked", "args": {"city": "x"},
                                              "id": "c1"}])
    agent = create_agent(ScriptedChatModel([call, "done"]), [tracked], middleware=[cached])
    result = agent.invoke(QUESTION)
    assert ran == [] and result["messages"][2].content == "cached"


def test_a_reply_without_tool_calls_ends_the_loop_after_after_model() -> None:
    @after_model
    def look(state: Any, runtime: Any) -> None:
        return None

    agent = create_agent(calling_then("done"), [weather], middleware=[look])
    assert nodes(agent) == ["model", "look.after_model", "tools", "model", "look.after_model"]


def test_model_response_with_structured_response_is_written() -> None:
    @wrap_model_call
    def structured(request: Any, handler: Any) -> Any:
        response = handler(request)
        return ModelResponse(result=response.result, structured_response={"n": 1})

    agent = create_agent(ScriptedChatModel(["x"]), middleware=[structured])
    assert agent.invoke(QUESTION)["structured_response"] == {"n": 1}

