"""The agent loop: a model node and a tools node, in turn, until the model answers without
calling a tool, with every event pushed into the run's context as it happens.

Events reach the run from three places, all through the :class:`~rxagent._context.RunContext`
installed for the run:

- the agent's own model node, and any model called from inside a tool, report their chunks
  (``rxagent.chat_models`` does it for every call, through ``rxagent._context``);
- tools send custom data through their :class:`~rxagent.StreamWriter`;
- nested agents (agents used as tools) push their parts under a deeper namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio

from ._agent_graph import AgentGraph, hook_update
from ._context import RunContext, ToolTask, current_run, current_tool_task
from ._convert import to_messages
from ._exceptions import RecursionLimitError, UsageError
from ._interrupts import (
    Command,
    GraphInterrupt,
    Interrupt,
    ResumeRejected,
    current_task_interrupts,
)
from ._loops import land_cancellation
from ._messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from ._removal import RemoveMessage
from ._state_schema import JUMP_TO
from ._steps import RunSteps, input_messages, input_others
from ._structured_agent import OutputFormat
from ._thread_run import ThreadRun
from ._thread_state import Route, apply_writes, read_update, with_ids
from ._thread_views import last_reply, pending_calls
from ._tools import BaseTool, ToolRuntime
from ._types import ToolSpec
from .chat_models._base import BaseChatModel, tool_specs
from .middleware._types import ModelRequest, ModelResponse, ToolCallRequest
from .runtime import execution_of, runtime_of, server_of

__all__ = [
    "DEFAULT_RECURSION_LIMIT", "AgentDefinition", "returns_directly", "run_agent", "run_nested",
]

DEFAULT_RECURSION_LIMIT = 10_007
"""LangGraph 1.2's default: steps a run may take before :class:`RecursionLimitError`."""


class AgentDefinition(Protocol):
    """What the loop needs of an agent (``rxagent.Agent`` is one)."""

    @property
    def model(self) -> BaseChatModel: ...
    @property
    def tools(self) -> Sequence[BaseTool]: ...
    @property
    def tools_by_name(self) -> Mapping[str, BaseTool]: ...
    @property
    def tool_specs(self) -> list[ToolSpec]: ...
    @property
    def system_prompt(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def interrupt_before(self) -> Sequence[str]: ...
    @property
    def interrupt_after(self) -> Sequence[str]: ...
    @property
    def state_keys(self) -> Sequence[str]: ...
    @property
    def hidden_keys(self) -> frozenset[str]: ...
    @property
    def untracked_keys(self) -> frozenset[str]: ...
    @property
    def graph(self) -> AgentGraph: ...
    @property
    def route(self) -> Route: ...
    @property
    def output_format(self) -> OutputFormat | None: ...


async def run_agent(
    agent: AgentDefinition,
    input: Any,
    config: dict[str, Any] | None,
    run: RunContext,
    thread: ThreadRun | None = None,
) -> dict[str, Any]:
    """Run the agent loop, pushing every event into ``run``; return the final state.

    With a ``thread``, the run starts from the thread's checkpoint: ``input`` (``{"messages":
    [...]}``) is added to its state, ``None`` goes on with what the checkpoint has still to run,
    a :class:`Command` first applies its update and answers its interrupts. Each step is saved.
    """
    config = config or {}
    limit = int(config.get("recursion_limit") or DEFAULT_RECURSION_LIMIT)
    parallel = config.get("max_concurrency")
    token = current_run.set(run)
    try:
        if thread is None:
            steps = RunSteps(None, run, agent.state_keys, (), (),
                             hidden=agent.hidden_keys, untracked=agent.untracked_keys,
                             entry=agent.graph.entry)
            steps.messages = with_ids(input_messages(input))  # as LangGraph's reducer does
            steps.others = input_others(input, agent.state_keys)
            run.state(steps.values())
            await _loop(agent, run, steps, agent.graph.entry, limit, parallel)
            return steps.state()
        async with thread.open():
            steps = RunSteps(thread, run, agent.state_keys, agent.interrupt_before,
                             agent.interrupt_after, hidden=agent.hidden_keys,
                             untracked=agent.untracked_keys, entry=agent.graph.entry,
                             route=agent.route)
            node = await steps.begin(input)
            if node is not None:
                await _loop(agent, run, steps, node, limit, parallel)
            return steps.state()
    finally:
        current_run.reset(token)


async def _loop(
    agent: AgentDefinition,
    run: RunContext,
    steps: RunSteps,
    node: str | None,
    limit: int,
    parallel: int | None,
) -> None:
    graph = agent.graph
    resumed = steps.resumed
    while node is not None:
        if not resumed and node in steps.interrupt_before:
            steps.stop(())
            return
        resumed = False
        finished = node
        if node == "model":
            _next_step(run, "model", limit)
            task_id = steps.task_id("model")
            steps.task_started(task_id, "model", {"messages": list(steps.messages)})
            streamed: list[str] = []  # a reply or two: a list is a quarter of an empty set
            replies, own, commanded = await _model_node(agent, run, steps, streamed)
            # A reply a wrapper made itself was not streamed: shown as a hook's are.
            made = [not r.id or r.id not in streamed for r in replies]
            replies = [steps.joined(reply) for reply in replies]
            if agent.graph.model_calls:
                _report_new_messages(
                    run, [r for r, unseen in zip(replies, made, strict=True) if unseen], steps)
            elif len(replies) > 1:  # an output tool's answer, made by the step, not streamed
                _report_new_messages(run, replies[1:], steps)
            writes: TaskWrites = [("messages", replies), *own, *commanded]
            steps.task_finished(task_id, "model", {"messages": replies})
            for key, value in commanded:
                if key == "messages":  # written, not streamed: shown as a hook's are
                    _report_new_messages(run, value, steps)
            steps.apply(writes)
            update: Any = {"messages": replies, **dict(own)}
            if commanded:  # the middleware's commands, a key at a time, as LangGraph shows
                update = [update, *({key: value} for key, value in commanded)]
            run.part("updates", {"model": update})
            run.state(steps.values())
            node = graph.after("model", None, steps.messages, returns_directly(agent),
                               answered=_answered(steps))
            await steps.done([(task_id, ch, v) for ch, v in writes if ch not in steps.untracked],
                             node)
        elif node == "tools":
            reply, _ = last_reply(steps.messages)
            if reply is None:
                raise UsageError(
                    "the thread's next step is the tools node, but it has no model reply with "
                    "tool calls"
                )
            results, interrupts = await _tools_node(agent, run, reply, limit, steps, parallel)
            if interrupts:
                # Each interrupt was shown as it came; the calls that finished are shown in
                # the state the run stops with, as LangGraph does (they are pending writes of
                # the step, which a resume does not run again).
                if results:
                    run.state(apply_writes(steps.values(), [
                        (task_id, channel, value)
                        for task_id, writes in results for channel, value in writes]))
                return
            for _, writes in results:
                steps.apply(writes)
            run.state(steps.values())
            node = graph.after("tools", None, steps.messages, returns_directly(agent))
            await steps.done(
                [(task_id, channel, value)
                 for task_id, writes in results for channel, value in writes
                 if channel not in steps.untracked],
                node,
            )
        else:
            following = await _hook_node(agent, run, steps, node, limit)
            if following is _STOPPED:
                return
            node = following
        if node is not None and finished in steps.interrupt_after:
            steps.stop(())
            return


_STOPPED = "__stopped__"  # a hook asked a human: the run stops


async def _hook_node(
    agent: AgentDefinition, run: RunContext, steps: RunSteps, node: str, limit: int
) -> str | None:
    """Run the middleware hook ``node`` as a step; the node after it."""
    hook = agent.graph.hooks[node]
    _next_step(run, node, limit)
    task_id = steps.task_id(node)
    state = steps.values()
    steps.task_started(task_id, node, state)
    task = steps.interrupts_of(task_id)
    asking = current_task_interrupts.set(task)
    try:
        returned = await hook(state, runtime_of(run))
    except ResumeRejected as rejected:
        raise rejected.error from None
    except GraphInterrupt as stop:
        if task is None:
            raise UsageError(
                f"{node} called interrupt(), which needs a run that can be resumed: create the "
                "agent with a checkpointer and run it with config={'configurable': "
                "{'thread_id': ...}}"
            ) from None
        steps.task_finished(task_id, node, None, stop.interrupts)
        await steps.task_interrupted(task_id, stop.interrupts, task)
        steps.stop(stop.interrupts)
        return _STOPPED
    finally:
        current_task_interrupts.reset(asking)
    update = hook_update(node, returned, agent.state_keys)
    writes: TaskWrites = []
    for key, value in update.items():
        if key == "messages":
            # With ids, as LangGraph's reducer gives them, thread or not: a hook's messages
            # may replace or remove others by id.
            update[key] = [_with_id(m) for m in to_messages(value)]
            writes.append(("messages", update[key]))
            _report_new_messages(run, update[key], steps)
        elif key != JUMP_TO:
            writes.append((key, value))
    steps.apply(writes, by_id=True)
    run.part("updates", {node: update if returned is not None else None})
    if update:  # LangGraph shows the state again only after a step that wrote to it
        values = steps.values()
        if JUMP_TO in update:  # the step's own jump, shown with the state it leaves
            values[JUMP_TO] = update[JUMP_TO]
        run.state(values)
    following = agent.graph.after(node, update.get(JUMP_TO), steps.messages,
                                  returns_directly(agent), answered=_answered(steps))
    steps.task_finished(task_id, node, update or None)
    await steps.done([(task_id, ch, v) for ch, v in writes if ch not in steps.untracked],
                     following)
    return following


def _answered(steps: RunSteps) -> bool:
    """Whether the state holds a structured response (the last model call gave one)."""
    return steps.others.get("structured_response") is not None


def returns_directly(
    agent: AgentDefinition,
) -> Callable[[AIMessage, Sequence[ToolMessage]], bool]:
    """Whether the tools a reply's calls ran all have ``return_direct``: their results end
    the run (a call a middleware answered itself does not count)."""
    tools = agent.tools_by_name

    def check(reply: AIMessage, answers: Sequence[ToolMessage]) -> bool:
        ran = {m.tool_call_id: m.name for m in answers if m.name and m.name in tools}
        names = [name for call in reply.tool_calls
                 if (name := ran.get(call["id"] or "", call["name"])) in tools]
        return bool(names) and all(getattr(tools[n], "return_direct", False) for n in names)

    return check


async def run_nested(
    agent: AgentDefinition, request: str, call_id: str, parent: RunContext
) -> str:
    """Run ``agent`` on ``request`` as the tool call ``call_id`` of the run ``parent``; its
    final answer's text.

    The nested run's parts go into the enclosing run's stream under the namespace of the call,
    ``(*ns, "tools:<call id>")``; it shares the enclosing run's sink, demand, loop and
    cancellation (it is awaited inside the tool).
    """
    question = {"messages": [HumanMessage(content=request)]}
    state = await run_agent(agent, question, None, parent.nested(call_id, agent.name))
    return str(state["messages"][-1].text)


def _report_new_messages(
    run: RunContext, written: list[BaseMessage], steps: RunSteps
) -> None:
    """A hook's messages that the run has not shown go to ``messages`` mode, as LangGraph
    shows the messages a node writes without streaming them: not one that replaces or removes
    a message of the state (that one was seen), and a removal of all of them once a run."""
    there = {m.id for m in steps.messages if m.id}
    for message in written:
        if message.id in there or message.id in steps.shown:
            continue
        if isinstance(message, RemoveMessage):
            steps.shown.append(message.id or "")
        run.part("messages", (message, run.node_metadata()))


def _with_id(message: BaseMessage) -> BaseMessage:
    if message.id:
        return message
    return message.model_copy(update={"id": str(uuid.uuid4())})


def _not_a_tool(agent: AgentDefinition, call: ToolCall) -> ToolMessage:
    known = ", ".join(sorted(agent.tools_by_name)) or "none"
    return ToolMessage(
        content=f"Error: {call['name']!r} is not a valid tool, try one of [{known}].",
        name=call["name"],
        tool_call_id=call["id"] or "",
        status="error",
    )


def _next_step(run: RunContext, node: str, limit: int) -> None:
    run.step += 1
    if run.step - run.step_base > limit:
        raise RecursionLimitError(
            f"Recursion limit of {limit} reached without hitting a stop condition. Raise it "
            "with config={'recursion_limit': N}, or check why the model keeps calling tools."
        )
    run.node = node
    run.task_ns = f"{node}:{uuid.uuid4()}"


async def _model_node(
    agent: AgentDefinition, run: RunContext, steps: RunSteps, streamed: list[str]
) -> tuple[list[BaseMessage], TaskWrites, TaskWrites]:
    """The model step: its reply (or what ``wrap_model_call`` middleware made of it), the
    step's other writes (a structured response), and those of the commands the middleware
    returned with it, innermost first. The ids of the replies a model streamed go into
    ``streamed``."""
    calls = agent.graph.model_calls
    output = agent.output_format
    if not calls:
        # A new list (of the same messages): the state goes on growing while the call runs.
        prompt = list(steps.messages)
        if agent.system_prompt is not None:
            prompt.insert(0, SystemMessage(content=agent.system_prompt))
        if output is None:
            reply = await _call_model(agent.model, prompt, agent.tool_specs, {})
            return [_named(agent, reply)], [], []
        strategy = output.strategy(output.initial, agent.model)
        specs, kwargs = output.call_options(strategy, agent.tool_specs, {})
        reply = _named(agent, await _call_model(agent.model, prompt, specs, kwargs))
        messages, answer = output.read(reply, strategy)
        return messages, [("structured_response", answer)], []

    async def base(request: ModelRequest[Any]) -> ModelResponse:
        # A wrapper may have put dicts or (role, text) pairs in, as LangChain allows.
        prompt = (list(request.messages)
                  if all(isinstance(m, BaseMessage) for m in request.messages)
                  else to_messages(request.messages))
        if request.system_message is not None:
            prompt.insert(0, request.system_message)
        specs = (agent.tool_specs if _same_tools(request.tools, agent.tools)
                 else tool_specs(request.tools))
        kwargs = dict(request.model_settings)
        if request.tool_choice is not None:
            kwargs["tool_choice"] = request.tool_choice
        chosen = output
        if chosen is None and request.response_format is not None:
            # A wrapper gave an agent without a format one (the context engineering docs'
            # dynamic formats): used as LangChain uses it, in the native form; the tool form
            # needs output tools declared at create_agent, so call_options refuses it.
            chosen = OutputFormat.undeclared(request.response_format)
        if chosen is None:
            reply = await _call_model(request.model, prompt, specs, kwargs)
            if reply.id:
                streamed.append(reply.id)
            return ModelResponse(result=[reply])
        # Inside the innermost handler, as LangChain reads it: wrappers see the answer.
        strategy = chosen.strategy(request.response_format, request.model)
        specs, kwargs = chosen.call_options(strategy, specs, kwargs)
        reply = _named(agent, await _call_model(request.model, prompt, specs, kwargs))
        if reply.id:
            streamed.append(reply.id)
        messages, answer = chosen.read(reply, strategy)
        return ModelResponse(result=messages, structured_response=answer)

    system = SystemMessage(content=agent.system_prompt) if agent.system_prompt else None
    request: ModelRequest[Any] = ModelRequest(
        model=agent.model, messages=list(steps.messages), system_message=system,
        tools=list(agent.tools), state=steps.values(), runtime=runtime_of(run),
        response_format=None if output is None else output.initial,
    )
    commands: list[Command] = []
    response = await calls(request, base, commands)
    updates: TaskWrites = []
    for command in commands:
        if command.goto or command.resume is not None or command.graph is not None:
            raise UsageError("a Command returned by wrap_model_call may only update the state")
        checked = dict(read_update(command.update, what="a wrap_model_call Command's update",
                                   state_keys=agent.state_keys))
        updates.extend((key, checked[key]) for key in command.update)  # in the update's order
    own: TaskWrites = []
    if response.structured_response is not None or output is not None:
        # None too when the agent has a format: a thread's earlier answer must not linger.
        own.append(("structured_response", response.structured_response))
    replies = [_named(agent, m) if isinstance(m, AIMessage) else m for m in response.result]
    return replies, own, updates


def _same_tools(tools: Sequence[Any], agent_tools: Sequence[BaseTool]) -> bool:
    return len(tools) == len(agent_tools) and all(
        a is b for a, b in zip(tools, agent_tools, strict=True))


async def _call_model(
    model: BaseChatModel, prompt: list[BaseMessage], specs: list[ToolSpec], kwargs: dict[str, Any]
) -> AIMessage:
    return await model._reply_prepared(prompt, specs, kwargs)


def _named(agent: AgentDefinition, reply: AIMessage) -> AIMessage:
    if agent.name is not None and reply.name is None:
        return reply.model_copy(update={"name": agent.name})
    return reply


TaskWrites = list[tuple[str, Any]]  # a tool call's (channel, value) writes to the state


async def _tools_node(
    agent: AgentDefinition,
    run: RunContext,
    reply: AIMessage,
    limit: int,
    steps: RunSteps,
    parallel: int | None,
) -> tuple[list[tuple[str, TaskWrites]], tuple[Interrupt, ...]]:
    """Run the reply's tool calls, each a task of its own, at most ``parallel`` at once; what
    each wrote (its ToolMessage, and what a ``Command(update=...)`` it returned adds) by task id,
    in the calls' order, and the interrupts that stopped any of them."""
    _next_step(run, "tools", limit)
    _, answers = last_reply(steps.messages)
    answered = {m.tool_call_id for m in answers}
    # Calls a middleware answered already (a human rejected them, say) are not run.
    calls = pending_calls(reply, answers)
    invalid = [c for c in reply.invalid_tool_calls if c.get("id") and c["id"] not in answered]
    results: list[TaskWrites | None] = [None] * (len(calls) + len(invalid))
    # Each call is a task of its own, as in LangGraph: its id, namespace and position.
    task_ids = [steps.task_id("tools", position) for position in range(len(results))]
    interrupted: list[Interrupt] = []
    rejected: list[Exception] = []  # answers that did not fit their interrupt's schema

    def finish(position: int, writes: TaskWrites, *, cached: bool = False) -> None:
        results[position] = writes
        task_ns = f"tools:{task_ids[position]}"
        update: dict[str, Any] = {}
        for channel, value in writes:
            if channel == "messages":
                for message in value:
                    if isinstance(message, ToolMessage):
                        run.part("messages", (message, run.tool_metadata(position, task_ns)))
            update[channel] = value
        # A call that finished before the run stopped is shown again, marked, as LangGraph
        # shows a task whose writes it had kept.
        run.part("updates", {"tools": update, "__metadata__": {"cached": True}} if cached
                 else {"tools": update})

    async def call_tool(position: int) -> None:
        restored = steps.restored(task_ids[position])
        if restored is not None:  # it finished before the run stopped: not run again
            finish(position, restored, cached=True)
            return
        task = steps.interrupts_of(task_ids[position])
        steps.task_started(task_ids[position], "tools", [calls[position]], position)
        token = current_tool_task.set(ToolTask(run, position, f"tools:{task_ids[position]}"))
        asking = current_task_interrupts.set(task)
        try:
            result = await run_tool(position)
        except ResumeRejected as answer:
            # The other calls go on and keep what they did; the run then fails, and this
            # call's interrupt waits for a better answer.
            rejected.append(answer.error)
            return
        except GraphInterrupt as stop:
            assert task is not None  # interrupt() raises UsageError without a thread
            interrupted.extend(stop.interrupts)
            steps.task_finished(task_ids[position], "tools", None, stop.interrupts)
            await steps.task_interrupted(task_ids[position], stop.interrupts, task)
            steps.stop(stop.interrupts)  # shown as it comes, one task's at a time
            return
        finally:
            current_task_interrupts.reset(asking)
            current_tool_task.reset(token)
        writes = steps.task_writes(result)
        finish(position, writes)
        steps.task_finished(task_ids[position], "tools", dict(writes))
        await steps.task_done(task_ids[position], writes)

    async def run_tool(position: int) -> ToolMessage | Command:
        # A run disposed of from another thread starts no tool, even before the loop has got
        # to the cancellation (a sync tool, once started, could not be stopped).
        await land_cancellation()
        call = calls[position]
        tool = agent.tools_by_name.get(call["name"])
        writer = run.writer()
        if not agent.graph.tool_calls:
            if tool is None:
                return _not_a_tool(agent, call)
            runtime = ToolRuntime(
                state=steps.values(), context=run.context, config=run.config,
                stream_writer=writer, tool_call_id=call["id"], store=run.store,
                execution_info=execution_of(run), server_info=server_of(run),
                tools=list(agent.tools),
            ) if tool.wants_runtime else None
            return await tool.arun(call, writer=writer, runtime=runtime)

        async def base(request: ToolCallRequest) -> ToolMessage | Command:
            if request.tool is None:
                return _not_a_tool(agent, request.tool_call)
            return await request.tool.arun(
                request.tool_call, writer=writer,
                runtime=request.runtime if request.tool.wants_runtime else None,
            )

        state = steps.values()
        return await agent.graph.tool_calls(ToolCallRequest(
            tool_call=call, tool=tool, state=state,
            runtime=ToolRuntime(state=state, context=run.context, config=run.config,
                                stream_writer=writer, tool_call_id=call["id"], store=run.store,
                                execution_info=execution_of(run), server_info=server_of(run),
                                tools=list(agent.tools)),
        ), base)

    for offset, bad in enumerate(invalid):
        writes = steps.task_writes(ToolMessage(
            content=f"Error: the arguments of {bad.get('name')!r} are not valid JSON "
            f"({bad.get('error')}); send them again as a JSON object.",
            name=bad.get("name"),
            tool_call_id=bad.get("id") or "",
            status="error",
        ))
        finish(len(calls) + offset, writes)
        await steps.task_done(task_ids[len(calls) + offset], writes)
    if len(calls) == 1:
        await call_tool(0)
    elif calls:
        limiter = anyio.CapacityLimiter(parallel) if parallel else None

        async def limited(position: int) -> None:
            if limiter is None:
                await call_tool(position)
            else:
                async with limiter:
                    await call_tool(position)

        async with anyio.create_task_group() as group:
            for position in range(len(calls)):
                group.start_soon(limited, position)
    if rejected:
        raise rejected[0]
    finished = [
        (task_id, writes)
        for task_id, writes in zip(task_ids, results, strict=True)
        if writes is not None
    ]
    return finished, tuple(interrupted)
