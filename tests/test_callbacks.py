"""``config["callbacks"]``: LangChain's handler methods, called as LangChain calls them.

The same programs run under rxagent and under LangChain/LangGraph with a recording handler;
the calls must match in order, method, run structure (run ids numbered in order of
appearance, each with its parent), name and tags.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from langchain_core.callbacks import BaseCallbackHandler as LcHandler
from langchain_core.callbacks import StreamingStdOutCallbackHandler
from langchain_core.callbacks import dispatch_custom_event as lc_dispatch

import rxagent
from rxagent.callbacks import (
    AsyncCallbackHandler,
    BaseCallbackHandler,
    UsageMetadataCallbackHandler,
    adispatch_custom_event,
    dispatch_custom_event,
    get_usage_metadata_callback,
)
from rxagent.messages import AIMessageChunk
from rxagent.testing import FunctionChatModel, ScriptedChatModel

from .test_langgraph_parity import LANGGRAPH, QUESTION, RXAGENT, docs_supervisor, research_agent

LC = SimpleNamespace(**vars(LANGGRAPH), dispatch=lc_dispatch)
RX = SimpleNamespace(**vars(RXAGENT), dispatch=dispatch_custom_event)

_METHODS = (
    "on_chain_start", "on_chain_end", "on_chain_error", "on_chat_model_start",
    "on_llm_new_token", "on_llm_end", "on_llm_error", "on_tool_start", "on_tool_end",
    "on_tool_error", "on_custom_event",
)


def recorder(base: type) -> Any:
    """A handler (of LangChain's or rxagent's base class) that records every call."""

    class Recorder(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def method(name: str) -> Any:
        def record(self: Any, *args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))
        return record

    for name in _METHODS:
        setattr(Recorder, name, method(name))
    return Recorder()


def shape(calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """Each call as (method, run, parent, name, tags), runs numbered as they appear."""
    numbers: dict[Any, int] = {}

    def number(run_id: Any) -> int | None:
        if run_id is None:
            return None
        return numbers.setdefault(run_id, len(numbers))

    shaped = []
    for method, args, kwargs in calls:
        name = (kwargs.get("name") if method == "on_chain_start"
                else args[0] if method == "on_custom_event"
                else args[0]["name"] if method == "on_tool_start"
                else "<model>" if method == "on_chat_model_start" else None)
        shaped.append((method, number(kwargs["run_id"]), number(kwargs.get("parent_run_id")),
                       name, tuple(kwargs.get("tags") or ())))
    return shaped


def weather_reporter(lib: Any) -> Any:
    """A tool that reports progress with a custom event, as LangChain's docs show."""

    def lookup(city: str) -> str:
        """Look the weather up."""
        lib.dispatch("progress", {"city": city})
        return f"Sunny in {city}."

    model = lib.model([[{"name": "lookup", "args": {"city": "SF"}, "id": "r1"}],
                       "It is sunny in SF today."])
    return lib.create_agent(model, tools=[lookup])


def run_both(program: Any, config: dict[str, Any]) -> tuple[Any, Any]:
    got = []
    for lib, base in ((LC, LcHandler), (RX, BaseCallbackHandler)):
        handler = recorder(base)
        agent = program(lib)
        # stream_mode="messages": LangChain's models stream (and call on_llm_new_token) only
        # when something reads their tokens; rxagent's always do.
        for _ in agent.stream(QUESTION, {**config, "callbacks": [handler]},
                              stream_mode="messages"):
            pass
        got.append(handler)
    return got[0], got[1]


@pytest.mark.parametrize("program", [research_agent, weather_reporter, docs_supervisor],
                         ids=["named agent", "custom event", "sub-agent in a tool"])
def test_the_handler_hears_what_langchains_hears(program: Any) -> None:
    def build(lib: Any) -> Any:
        return program(lib, is_async=False) if program is docs_supervisor else program(lib)

    theirs, ours = run_both(build, {"tags": ["t1"], "metadata": {"user": "u1"}})
    assert shape(ours.calls) == shape(theirs.calls)


def test_metadata_and_arguments_are_langchains() -> None:
    theirs, ours = run_both(weather_reporter, {"metadata": {"user": "u1"}})

    def first(handler: Any, method: str, nth: int = 0) -> tuple[tuple[Any, ...], dict[str, Any]]:
        found = [(args, kwargs) for name, args, kwargs in handler.calls if name == method]
        return found[nth]

    for method in ("on_chain_start", "on_chat_model_start", "on_tool_start", "on_custom_event"):
        for nth in (0, 1) if method == "on_chain_start" else (0,):
            (_, lc_kwargs), (_, rx_kwargs) = first(theirs, method, nth), first(ours, method, nth)
            assert set(rx_kwargs) <= set(lc_kwargs), method
            lc_meta = {k: v for k, v in lc_kwargs["metadata"].items() if k != "lc_versions"}
            assert rx_kwargs["metadata"].keys() == lc_meta.keys(), method
            for key in ("user", "langgraph_node", "langgraph_step", "ls_integration"):
                assert rx_kwargs["metadata"].get(key) == lc_meta.get(key), (method, key)
    (lc_args, lc_kwargs), (rx_args, rx_kwargs) = (first(theirs, "on_tool_start"),
                                                  first(ours, "on_tool_start"))
    assert rx_args == lc_args
    assert rx_kwargs["inputs"] == lc_kwargs["inputs"]
    assert rx_kwargs["tool_call_id"] == lc_kwargs["tool_call_id"] == "r1"
    rx_args, _ = first(ours, "on_chat_model_start")
    assert [m.text for m in rx_args[1][0]] == ["What is the weather in SF?"]
    rx_result = first(ours, "on_llm_end", 1)[0][0]
    assert rx_result.generations[0][0].message.text == "It is sunny in SF today."
    assert rx_result.llm_output is None
    token, kwargs = first(ours, "on_llm_new_token", 2)
    assert token == ("It ",) and kwargs["chunk"].message.content == "It "
    assert first(ours, "on_tool_end")[0][0].content == "Sunny in SF."


def test_a_langchain_handler_works_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    agent = rxagent.create_agent(ScriptedChatModel(["Hello there."]))
    agent.invoke({"messages": [("user", "hi")]},
                 {"callbacks": [StreamingStdOutCallbackHandler()]})
    assert capsys.readouterr().out == "Hello there."


def test_a_model_called_with_callbacks_tells_them() -> None:
    handler = recorder(BaseCallbackHandler)
    model = ScriptedChatModel(["Hi you."])
    reply = model.invoke([("user", "hi")], config={"callbacks": [handler], "tags": ["direct"]})
    assert reply.text == "Hi you."
    methods = [name for name, _, _ in handler.calls]
    assert methods[0] == "on_chat_model_start" and methods[-1] == "on_llm_end"
    assert set(methods[1:-1]) == {"on_llm_new_token"}
    _, args, kwargs = handler.calls[0]
    assert kwargs["parent_run_id"] is None and kwargs["tags"] == ["direct"]
    assert kwargs["metadata"]["ls_model_type"] == "chat"
    assert [m.text for m in args[1][0]] == ["hi"]
    assert handler.calls[-1][1][0].generations[0][0].message.text == "Hi you."


def test_failures_are_told() -> None:
    def broken(city: str) -> str:
        """Break."""
        raise ValueError("no weather")

    replies = [[AIMessageChunk(content="", tool_call_chunks=[{
        "name": "broken", "args": '{"city": "SF"}', "id": "b1", "index": 0}])]]

    def reply(messages: Any, tools: Any) -> Iterator[AIMessageChunk]:
        if not replies:
            raise rxagent.ModelCallError("the model is down")
        yield from replies.pop(0)

    model = FunctionChatModel(reply)
    handler = recorder(BaseCallbackHandler)
    agent = rxagent.create_agent(model, tools=[broken])
    with pytest.raises(rxagent.ModelCallError):
        agent.invoke({"messages": [("user", "hi")]}, {"callbacks": [handler]})
    shaped = [(method, run, parent) for method, run, parent, _, _ in shape(handler.calls)
              if method != "on_llm_new_token"]
    assert shaped == [
        ("on_chain_start", 0, None), ("on_chain_start", 1, 0), ("on_chat_model_start", 2, 1),
        ("on_llm_end", 2, 1), ("on_chain_end", 1, 0),
        ("on_chain_start", 3, 0), ("on_tool_start", 4, 3), ("on_tool_error", 4, 3),
        ("on_chain_end", 3, 0),
        ("on_chain_start", 5, 0), ("on_chat_model_start", 6, 5), ("on_llm_error", 6, 5),
        ("on_chain_error", 5, 0), ("on_chain_error", 0, None),
    ]
    tool_error = next(args[0] for name, args, _ in handler.calls if name == "on_tool_error")
    assert isinstance(tool_error, ValueError)


def test_a_failing_handler_is_logged_unless_it_asks_to_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            raise RuntimeError("handler bug")

    agent = rxagent.create_agent(ScriptedChatModel(["Fine."]))
    with caplog.at_level(logging.WARNING, logger="rxagent.callbacks"):
        state = agent.invoke({"messages": [("user", "hi")]}, {"callbacks": [Failing()]})
    assert state["messages"][-1].text == "Fine."
    assert "handler bug" in caplog.text

    class Strict(Failing):
        raise_error = True

    agent = rxagent.create_agent(ScriptedChatModel(["Fine."]))
    with pytest.raises(RuntimeError, match="handler bug"):
        agent.invoke({"messages": [("user", "hi")]}, {"callbacks": [Strict()]})


def test_ignore_flags_turn_groups_off() -> None:
    class Quiet(BaseCallbackHandler):
        ignore_llm = True
        ignore_chain = True

        def __init__(self) -> None:
            self.seen: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.seen.append("token")

        def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
            self.seen.append("chain")

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.seen.append("start")

    handler = Quiet()
    rxagent.create_agent(ScriptedChatModel(["Fine."])).invoke(
        {"messages": [("user", "hi")]}, {"callbacks": [handler]})
    assert handler.seen == ["start"]


@pytest.mark.anyio
async def test_async_handlers_are_awaited_in_order() -> None:
    class Slow(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.seen: list[str] = []

        async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            await anyio.sleep(0.001)
            self.seen.append(token)

        async def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
            await anyio.sleep(0)
            self.seen.append("end" if kwargs["parent_run_id"] is None else "node")

    handler = Slow()
    agent = rxagent.create_agent(ScriptedChatModel(["one two three"]))
    await agent.ainvoke({"messages": [("user", "hi")]}, {"callbacks": [handler]})
    # ScriptedChatModel's reply starts and ends with an empty chunk.
    assert handler.seen == ["", "one", " two", " three", "", "node", "end"]


@pytest.mark.anyio
async def test_custom_events_from_an_async_tool() -> None:
    async def lookup(city: str) -> str:
        """Look up."""
        await adispatch_custom_event("progress", {"city": city})
        return "Sunny."

    handler = recorder(BaseCallbackHandler)
    model = RXAGENT.model([[{"name": "lookup", "args": {"city": "SF"}, "id": "r1"}], "Done."])
    agent = rxagent.create_agent(model, tools=[lookup])
    await agent.ainvoke(QUESTION, {"callbacks": [handler]})
    (event,) = [(args, kwargs) for name, args, kwargs in handler.calls
                if name == "on_custom_event"]
    tool_run = next(kwargs["run_id"] for name, _, kwargs in handler.calls
                    if name == "on_tool_start")
    assert event[0] == ("progress", {"city": "SF"}) and event[1]["run_id"] == tool_run
    # Inside a run nobody listens to, nothing happens.
    model = RXAGENT.model([[{"name": "lookup", "args": {"city": "SF"}, "id": "r1"}], "Done."])
    state = await rxagent.create_agent(model, tools=[lookup]).ainvoke(QUESTION)
    assert state["messages"][-2].content == "Sunny."


def test_dispatch_custom_event_outside_a_run_is_an_error() -> None:
    with pytest.raises(rxagent.UsageError, match="runs in none"):
        dispatch_custom_event("progress", {})


def test_usage_is_counted_by_model() -> None:
    model = RXAGENT.model([[{"name": "lookup", "args": {"city": "SF"}, "id": "r1"}],
                           "It is sunny."])

    def lookup(city: str) -> str:
        """Look up."""
        return "Sunny."

    agent = rxagent.create_agent(model, tools=[lookup])
    with get_usage_metadata_callback() as counted:
        agent.invoke(QUESTION)
    assert list(counted.usage_metadata) == ["fake-model"]
    usage = counted.usage_metadata["fake-model"]
    assert usage["output_tokens"] == 1 + 3  # the tool call's chunk, then three words
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    # Outside the block nothing is counted; a handler in config counts its own runs.
    handler = UsageMetadataCallbackHandler()
    agent.model = RXAGENT.model(["Again."])
    agent.invoke(QUESTION, {"callbacks": [handler]})
    assert counted.usage_metadata["fake-model"] == usage
    assert handler.usage_metadata["fake-model"]["output_tokens"] == 1


def test_an_interrupt_and_its_resume_are_told_as_in_langchain() -> None:
    from .test_threads_parity import CONFIG as THREAD
    from .test_threads_parity import booking_agent

    got = []
    for name, base in (("langgraph", LcHandler), ("rxagent", BaseCallbackHandler)):
        agent, command = booking_agent(name)
        turns = []
        for input in ({"messages": [("user", "Weather in Paris?")]},
                      {"messages": [("user", "Book the Ritz")]}, command(resume="yes")):
            handler = recorder(base)
            for _ in agent.stream(input, {**THREAD, "callbacks": [handler]},
                                  stream_mode="messages"):
                pass
            turns.append([(call[0], call[1:], type(args[0]).__name__ if call[0].endswith(
                "_error") else None) for call, (_, args, _) in zip(
                    shape(handler.calls), handler.calls, strict=True)])
        got.append(turns)
    assert got[1] == got[0]
