"""Middleware under rxagent and under LangChain itself: the same programs, the same streams.

Each program is written once against ``lib`` (LangChain's modules, or rxagent's, named as the
import map names them) with the same scripted replies; the two runs' ``updates`` and ``values``
(and, where it matters, ``messages``) are compared step for step, and so is what the model was
given on each call. Random ids are numbered in order of appearance.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, NotRequired

import langchain.agents as lc_agents
import langchain.agents.middleware as lc_middleware
import langchain_core.messages as lc_messages
import langgraph.types as lg_types
import pytest
from langgraph.checkpoint.memory import InMemorySaver as LgSaver

import rxagent
import rxagent.messages as rx_messages
import rxagent.middleware as rx_middleware
import rxagent.types as rx_types
from rxagent.checkpoint import InMemorySaver as RxSaver

from ..test_langgraph_parity import LANGGRAPH, RXAGENT, ChatFake, Numbering, RxFake, message_shape
from ..test_threads_parity import Ids

LIBS = {
    "langchain": SimpleNamespace(agents=lc_agents, mw=lc_middleware, messages=lc_messages,
                                 types=lg_types, saver=LgSaver, base=LANGGRAPH),
    "rxagent": SimpleNamespace(agents=rxagent, mw=rx_middleware, messages=rx_messages,
                               types=rx_types, saver=RxSaver, base=RXAGENT),
}
CONFIG = {"configurable": {"thread_id": "t"}}


class SeenLc(ChatFake):
    """LangChain's fake model, also keeping what each call was given."""

    seen: list[Any] = []  # noqa: RUF012 - a pydantic field: each model gets its own copy

    def _get_ls_params(self, *args: Any, **kwargs: Any) -> Any:
        return {**super()._get_ls_params(*args, **kwargs), "ls_provider": "fake"}

    def _stream(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._stream(messages, *args, **kwargs)

    def _generate(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def model(name: str, replies: list[Any]) -> Any:
    """A fake model of ``name``'s kind; its ``seen`` holds the prompts it got."""
    if name == "langchain":
        return SeenLc(replies=list(replies), seen=[])
    fake = RxFake(replies)
    seen: list[Any] = []
    inner = fake.fn

    def reply(messages: Any, tools: Any) -> Any:
        seen.append(list(messages))
        return inner(messages, tools)

    fake.fn = reply
    fake.seen = seen  # type: ignore[attr-defined]
    return fake


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def shape(mode: str, data: Any, number: Numbering) -> Any:
    """A part, comparable across the libraries."""
    if mode == "messages":
        return message_shape(data[0], number), number(dict(data[1]))
    if mode == "values":
        return {key: [message_shape(m, number) for m in value] if key == "messages"
                else [item.value for item in value] if key == "__interrupt__" else value
                for key, value in data.items()}
    def written(update: dict[str, Any]) -> dict[str, Any]:
        return {key: [message_shape(m, number) for m in value] if key == "messages" else value
                for key, value in update.items()}

    out: dict[str, Any] = {}
    for node, update in data.items():
        if node == "__interrupt__":
            out[node] = [item.value for item in update]
        elif isinstance(update, dict):
            out[node] = written(update)
        elif isinstance(update, list):  # a step's several updates (commands)
            out[node] = [written(item) for item in update]
        else:
            out[node] = update
    return out


def prompts(seen: list[Any], number: Numbering) -> list[Any]:
    return [[(type(m).__name__, m.content) for m in call] for call in seen]


def stream(agent: Any, input: Any, modes: list[str], number: Numbering,
           config: Any = None) -> list[Any]:
    return settled([(mode, shape(mode, data, number))
                    for mode, data in agent.stream(input, config, stream_mode=modes)])


def settled(events: list[Any]) -> list[Any]:
    """``events`` with each run of parallel tool calls' updates in a fixed order: both
    libraries show them as the calls finish, which is up to the threads they run in."""
    out: list[Any] = []
    run: list[Any] = []
    for event in [*events, None]:
        if event is not None and event[0] == "updates" and list(event[1]) == ["tools"]:
            run.append(event)
            continue
        out.extend(sorted(run, key=repr))
        run = []
        if event is not None:
            out.append(event)
    return out


QUESTION = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}
TOOL_THEN_TEXT = [[{"name": "weather", "args": {"city": "Paris"}, "id": "w1"}], "It is sunny."]


# -- the programs, written once ------------------------------------------------------------


def every_hook(name: str) -> tuple[Any, Any]:
    """Every state hook, in the class form and the decorator forms, with a state key.
    (Sync hooks: LangChain's sync ``stream`` cannot call async ones.)"""
    lib = LIBS[name]
    mw = lib.mw

    class Counted(mw.AgentState):
        count: NotRequired[int]

    @mw.before_agent
    def start(state: Any, runtime: Any) -> None:
        return None

    @mw.before_model(state_schema=Counted)
    def count(state: Any, runtime: Any) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1}

    @mw.after_model
    def look(state: Any, runtime: Any) -> None:
        return None

    class Nothing(mw.AgentMiddleware):
        def after_model(self, state: Any, runtime: Any) -> dict[str, Any]:
            return {"messages": []}

    @mw.after_agent
    def finish(state: Any, runtime: Any) -> dict[str, Any]:
        return {"count": 100}

    fake = model(name, TOOL_THEN_TEXT)
    agent = lib.agents.create_agent(fake, tools=[lib.base.tool(weather)],
                                    middleware=[start, count, look, Nothing(), finish])
    return agent, fake


def jumping(name: str) -> tuple[Any, Any]:
    """``jump_to``: a call limit that ends the run before the second model call, with a
    message; an after_model hook that is not allowed to jump (its jump is ignored)."""
    lib = LIBS[name]
    mw = lib.mw

    @mw.before_model(can_jump_to=["end"])
    def limit(state: Any, runtime: Any) -> dict[str, Any] | None:
        if sum(isinstance(m, lib.messages.AIMessage) for m in state["messages"]) >= 1:
            return {"jump_to": "end",
                    "messages": [lib.messages.AIMessage(content="Limit reached.")]}
        return None

    @mw.after_model
    def tries(state: Any, runtime: Any) -> dict[str, Any]:
        return {"jump_to": "model"}

    class Last(mw.AgentMiddleware):
        def after_model(self, state: Any, runtime: Any) -> None:
            return None

    fake = model(name, TOOL_THEN_TEXT)
    agent = lib.agents.create_agent(fake, tools=[lib.base.tool(weather)],
                                    middleware=[limit, Last(), tries])
    return agent, fake


def wrapped_calls(name: str) -> tuple[Any, Any]:
    """``wrap_model_call`` (a dynamic prompt, a wrapper that edits the reply) and
    ``wrap_tool_call`` (changes the arguments and the result)."""
    lib = LIBS[name]
    mw = lib.mw

    @mw.dynamic_prompt
    def prompt(request: Any) -> str:
        return f"You have seen {len(request.messages)} messages."

    @mw.wrap_model_call
    def shout(request: Any, handler: Any) -> Any:
        response = handler(request.override(messages=[*request.messages]))
        reply = response.result[0]
        if reply.content:
            return lib.messages.AIMessage(content=reply.content.upper(), id=reply.id)
        return response

    @mw.wrap_tool_call
    def london(request: Any, handler: Any) -> Any:
        call = {**request.tool_call, "args": {"city": "London"}}
        result = handler(request.override(tool_call=call))
        return lib.messages.ToolMessage(content=f"[{result.content}]",
                                        tool_call_id=result.tool_call_id, name=result.name)

    fake = model(name, TOOL_THEN_TEXT)
    agent = lib.agents.create_agent(fake, tools=[lib.base.tool(weather)],
                                    system_prompt="Be brief.",
                                    middleware=[prompt, shout, london])
    return agent, fake


def custom_docs(name: str) -> tuple[Any, Any]:
    """The custom middleware docs' examples together: a message limit (class form), a logger,
    a counter in the state, usage tracking and two layers of commands from wrap_model_call
    (on keys of their own: LangGraph refuses two writes of one key in a step without a
    reducer, and shows a reducer key's empty default, which rxagent's state has not)."""
    lib = LIBS[name]
    mw = lib.mw

    class MessageLimitMiddleware(mw.AgentMiddleware):
        def __init__(self, max_messages: int = 50):
            super().__init__()
            self.max_messages = max_messages

        @mw.hook_config(can_jump_to=["end"])
        def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
            if len(state["messages"]) >= self.max_messages:
                return {
                    "messages": [lib.messages.AIMessage("Conversation limit reached.")],
                    "jump_to": "end"
                }
            return None

    @mw.after_model
    def log_response(state: Any, runtime: Any) -> dict[str, Any] | None:
        return None

    class TrackingState(mw.AgentState):
        model_call_count: NotRequired[int]
        last_model_call_tokens: NotRequired[int]
        trace_layer: NotRequired[str]
        inner_trace: NotRequired[str]

    @mw.after_model(state_schema=TrackingState)
    def increment_after_model(state: Any, runtime: Any) -> dict[str, Any] | None:
        return {"model_call_count": state.get("model_call_count", 0) + 1}

    @mw.wrap_model_call(state_schema=TrackingState)
    def track_usage(request: Any, handler: Any) -> Any:
        response = handler(request)
        return mw.ExtendedModelResponse(
            model_response=response,
            command=lib.types.Command(update={"last_model_call_tokens": 150}),
        )

    class OuterMiddleware(mw.AgentMiddleware):
        def wrap_model_call(self, request: Any, handler: Any) -> Any:
            first = handler(request)  # called twice: the inner layers' first commands go
            response = handler(request) if first else first
            return mw.ExtendedModelResponse(
                model_response=response,
                command=lib.types.Command(update={
                    "trace_layer": "outer",
                    "messages": [lib.messages.SystemMessage(content="[Outer ran]")]}))

    class InnerMiddleware(mw.AgentMiddleware):
        def wrap_model_call(self, request: Any, handler: Any) -> Any:
            response = handler(request)
            return mw.ExtendedModelResponse(
                model_response=response,
                command=lib.types.Command(update={
                    "inner_trace": "inner",
                    "messages": [lib.messages.SystemMessage(content="[Inner ran]")]}))

    fake = model(name, [TOOL_THEN_TEXT[0], TOOL_THEN_TEXT[0], "one", "two", "three"])
    agent = lib.agents.create_agent(
        fake, tools=[lib.base.tool(weather)],
        middleware=[MessageLimitMiddleware(max_messages=8), log_response, increment_after_model,
                    track_usage, OuterMiddleware(), InnerMiddleware()])
    return agent, fake


PROGRAMS = {"every hook": every_hook, "jump_to": jumping, "wrapped calls": wrapped_calls,
            "custom middleware docs": custom_docs}


@pytest.mark.parametrize("modes", [["updates", "values"], ["updates", "messages"]])
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_middleware_streams_as_in_langchain(program: str, modes: list[str]) -> None:
    results = {}
    for name in LIBS:
        agent, fake = PROGRAMS[program](name)
        number = Ids()
        results[name] = (stream(agent, QUESTION, modes, number), prompts(fake.seen, number))
    ours, theirs = results["rxagent"], results["langchain"]
    assert [e[1] for e in ours[0] if e[0] == "updates"] == \
        [e[1] for e in theirs[0] if e[0] == "updates"]
    assert ours == theirs


# -- human in the loop ------------------------------------------------------------------------


def reviewed(name: str, replies: list[Any]) -> tuple[Any, Any]:
    lib = LIBS[name]

    def send_email(to: str, body: str) -> str:
        """Send an email."""
        return f"sent to {to}: {body}"

    def delete_file(path: str) -> str:
        """Delete a file."""
        return f"deleted {path}"

    fake = model(name, replies)
    agent = lib.agents.create_agent(
        fake, tools=[lib.base.tool(weather), lib.base.tool(send_email),
                     lib.base.tool(delete_file)],
        middleware=[lib.mw.HumanInTheLoopMiddleware(interrupt_on={
            "send_email": True,
            "delete_file": {"allowed_decisions": ["approve", "reject"],
                            "description": "Deleting is forever"},
            "weather": False,
        })],
        checkpointer=lib.saver(),
    )
    return agent, fake


THREE_CALLS = [
    [{"name": "send_email", "args": {"to": "ann", "body": "hi"}, "id": "e1"},
     {"name": "weather", "args": {"city": "Oslo"}, "id": "w1"},
     {"name": "delete_file", "args": {"path": "/tmp/x"}, "id": "d1"}],
    "Done.",
]

DECISIONS = {
    "approve both": [{"type": "approve"}, {"type": "approve"}],
    "edit and reject": [
        {"type": "edit", "edited_action": {"name": "send_email",
                                           "args": {"to": "bob", "body": "hello"}}},
        {"type": "reject", "message": "keep it"},
    ],
    "respond and reject without a reason": [
        {"type": "respond", "message": "I sent it myself."}, {"type": "reject"}],
}


@pytest.mark.parametrize("decisions", list(DECISIONS))
def test_human_in_the_loop_as_in_langchain(decisions: str) -> None:
    results = {}
    for name, lib in LIBS.items():
        agent, fake = reviewed(name, THREE_CALLS)
        number = Ids()
        first = stream(agent, QUESTION, ["updates", "values"], number, CONFIG)
        pending = agent.get_state(CONFIG)
        waiting = (pending.next, [i.value for i in pending.interrupts])
        resumed = stream(agent, lib.types.Command(resume={"decisions": DECISIONS[decisions]}),
                         ["updates", "values"], number, CONFIG)
        history = [(h.next, [message_shape(m, number) for m in h.values["messages"]])
                   for h in agent.get_state_history(CONFIG)]
        results[name] = (first, waiting, resumed, history, prompts(fake.seen, number))
    assert results["rxagent"] == results["langchain"]


def test_a_decision_the_tool_does_not_allow_is_an_error() -> None:
    agent, _ = reviewed("rxagent", THREE_CALLS)
    list(agent.stream(QUESTION, CONFIG))
    with pytest.raises(rxagent.InvalidResumeError, match="delete_file"):
        list(agent.stream(rx_types.Command(resume={"decisions": [
            {"type": "approve"}, {"type": "edit", "edited_action": {"name": "delete_file",
                                                                      "args": {}}}]}), CONFIG))
    with pytest.raises(rxagent.InvalidResumeError, match="2 gated"):
        list(agent.stream(rx_types.Command(resume={"decisions": [{"type": "approve"}]}), CONFIG))


@pytest.mark.parametrize("every_hook", [False, True])
@pytest.mark.parametrize("as_node", [None, "look.before_model", "look.after_model", "model",
                                     "tools", "__start__"])
def test_update_state_as_a_middleware_step_as_in_langchain(
    as_node: str | None, every_hook: bool
) -> None:
    results = {}
    for name, lib in LIBS.items():
        def nothing(self: Any, state: Any, runtime: Any) -> None:
            return None

        hooks = ["before_model", "after_model"] + (
            ["before_agent", "after_agent"] if every_hook else [])
        look = type("look", (lib.mw.AgentMiddleware,), dict.fromkeys(hooks, nothing))
        agent = lib.agents.create_agent(
            model(name, [*TOOL_THEN_TEXT, "again"]), tools=[lib.base.tool(weather)],
            middleware=[look()], checkpointer=lib.saver())
        number = Ids()
        agent.invoke(QUESTION, CONFIG)
        agent.update_state(CONFIG, {"messages": [
            lib.messages.HumanMessage(content="and Rome?", id="h2")]}, as_node=as_node)
        state = agent.get_state(CONFIG)
        results[name] = (state.next, [message_shape(m, number) for m in state.values["messages"]])
    assert results["rxagent"] == results["langchain"]


def per_call_agent(name: str) -> Any:
    lib = LIBS[name]

    def write_file(path: str, content: str) -> str:
        """Write a file."""
        return f"Wrote {len(content)} characters to {path}"

    def execute_sql(query: str) -> str:
        """Run SQL."""
        return "3 rows"

    def read_data(table: str) -> str:
        """Read a table."""
        return "id,total"

    fake = model(name, [
        [{"name": "write_file", "args": {"path": "a.csv", "content": "x"}, "id": "c1"},
         {"name": "execute_sql", "args": {"query": "DELETE FROM t"}, "id": "c2"},
         {"name": "read_data", "args": {"table": "t"}, "id": "c3"}],
        "Done."])
    return lib.agents.create_agent(
        fake, tools=[lib.base.tool(write_file), lib.base.tool(execute_sql),
                     lib.base.tool(read_data)],
        middleware=[lib.mw.HumanInTheLoopMiddleware(
            interrupt_on={"write_file": True,
                          "execute_sql": {"allowed_decisions": ["approve", "reject"]},
                          "read_data": False},
            interrupt_mode="per_call")],
        checkpointer=lib.saver())


def branches(schema: Any) -> list[str]:
    """The decision types a response schema offers."""
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("properties", {}).get("type", {})
            if "const" in kind:
                found.append(kind["const"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return sorted(set(found))


@pytest.mark.parametrize("answers", ["both at once", "one at a time"])
def test_per_call_review_as_in_langchain(answers: str) -> None:
    results = {}
    for name, lib in LIBS.items():
        agent = per_call_agent(name)
        number = Ids()
        first = stream(agent, QUESTION, ["updates", "values"], number, CONFIG)
        pending = agent.get_state(CONFIG).interrupts
        asked = sorted((i.value["name"], i.value["type"], i.value["tool_call_id"],
                        i.value["args"], branches(i.response_schema)) for i in pending)
        by_call = {i.value["tool_call_id"]: i.id for i in pending}
        decisions = {"c1": {"type": "edit", "edited_action": {
            "name": "write_file", "args": {"path": "b.csv", "content": "yy"}}},
            "c2": {"type": "reject", "message": "no"}}
        runs = []
        if answers == "both at once":
            resume = {by_call[call]: decision for call, decision in decisions.items()}
            runs.append(stream(agent, lib.types.Command(resume=resume), ["updates", "values"],
                               number, CONFIG))
        else:
            for call, decision in decisions.items():
                interrupt_id = next(i.id for i in agent.get_state(CONFIG).interrupts
                                    if i.value["tool_call_id"] == call)
                runs.append(stream(agent, lib.types.Command(resume={interrupt_id: decision}),
                                   ["updates", "values"], number, CONFIG))
        final = [message_shape(m, number) for m in agent.get_state(CONFIG).values["messages"]]
        # Parallel calls stop and finish in the order their threads run them, in both
        # libraries: each run's parts are compared as a whole, the state exactly.
        results[name] = (sorted(map(repr, first)), asked,
                         [sorted(map(repr, run)) for run in runs], final)
    assert results["rxagent"] == results["langchain"]

