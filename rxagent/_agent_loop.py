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
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import anyio

from ._context import RunContext, ToolTask, current_run, current_tool_task
from ._exceptions import ModelCallError, RecursionLimitError, UsageError
from ._fast_rx import consume
from ._interrupts import Command, GraphInterrupt, Interrupt, current_task_interrupts
from ._loops import land_cancellation
from ._messages import (
    AIMessage,
    BaseMessage,
    ChunkAccumulator,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from ._steps import RunSteps, input_messages, input_others
from ._thread_run import ThreadRun
from ._tools import BaseTool, ToolRuntime
from ._types import ToolSpec
from .chat_models._base import BaseChatModel

__all__ = ["DEFAULT_RECURSION_LIMIT", "AgentDefinition", "run_agent", "run_nested"]

DEFAULT_RECURSION_LIMIT = 10_007
"""LangGraph 1.2's default: steps a run may take before :class:`RecursionLimitError`."""


class AgentDefinition(Protocol):
    """What the loop needs of an agent (``rxagent.Agent`` is one)."""

    @property
    def model(self) -> BaseChatModel: ...
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
            steps = RunSteps(None, run, agent.state_keys, set(), set())
            steps.messages = input_messages(input)
            steps.others = input_others(input, agent.state_keys)
            run.state(steps.values())
            await _loop(agent, run, steps, "model", limit, parallel)
            return steps.state()
        async with thread.open():
            steps = RunSteps(thread, run, agent.state_keys, set(agent.interrupt_before),
                           set(agent.interrupt_after))
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
    messages = steps.messages
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
            steps.task_started(task_id, "model", {"messages": list(messages)})
            reply = await _model_node(agent, run, messages)
            reply = steps.joined(reply)
            steps.task_finished(task_id, "model", {"messages": [reply]})
            steps.add([reply])
            run.part("updates", {"model": {"messages": [reply]}})
            run.state(steps.values())
            calls = reply.tool_calls
            invalid = [c for c in reply.invalid_tool_calls if c.get("id")]
            node = "tools" if calls or invalid else None
            await steps.done([(task_id, "messages", [reply])], node)
        else:
            reply = _last_reply(messages)
            results, interrupts = await _tools_node(agent, run, reply, limit, steps, parallel)
            if interrupts:
                steps.stop(interrupts)
                return
            for _, writes in results:
                steps.apply(writes)
            run.state(steps.values())
            node = None if _returns_directly(agent, reply) else "model"
            await steps.done(
                [(task_id, channel, value)
                 for task_id, writes in results for channel, value in writes],
                node,
            )
        if node is not None and finished in steps.interrupt_after:
            steps.stop(())
            return


def _returns_directly(agent: AgentDefinition, reply: AIMessage) -> bool:
    """Whether a tool the reply called has ``return_direct``: its result ends the run."""
    tools = agent.tools_by_name
    return any(
        getattr(tools.get(call["name"]), "return_direct", False) for call in reply.tool_calls
    )


def _last_reply(messages: list[BaseMessage]) -> AIMessage:
    reply = messages[-1] if messages else None
    if not isinstance(reply, AIMessage):
        raise UsageError(
            "the thread's next step is the tools node, but its last message is not the model's "
            "reply with tool calls"
        )
    return reply


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
    agent: AgentDefinition, run: RunContext, messages: list[BaseMessage]
) -> AIMessage:
    # A new list (of the same messages): the state goes on growing while the call runs.
    prompt = list(messages)
    if agent.system_prompt is not None:
        prompt.insert(0, SystemMessage(content=agent.system_prompt))
    accumulator = ChunkAccumulator()
    try:
        call = agent.model.stream_prepared(prompt, agent.tool_specs)
        await consume(call, accumulator.add)
    except ModelCallError as error:
        if error.partial is None and not accumulator.empty:
            error.partial = accumulator.snapshot()
        raise
    reply = accumulator.to_message()
    if agent.name is not None and reply.name is None:
        reply = reply.model_copy(update={"name": agent.name})
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
    calls = list(reply.tool_calls)
    invalid = [c for c in reply.invalid_tool_calls if c.get("id")]
    results: list[TaskWrites | None] = [None] * (len(calls) + len(invalid))
    # Each call is a task of its own, as in LangGraph: its id, namespace and position.
    task_ids = [steps.task_id("tools", position) for position in range(len(results))]
    interrupted: list[Interrupt] = []

    def finish(position: int, writes: TaskWrites) -> None:
        results[position] = writes
        task_ns = f"tools:{task_ids[position]}"
        update: dict[str, Any] = {}
        for channel, value in writes:
            if channel == "messages":
                for message in value:
                    if isinstance(message, ToolMessage):
                        run.part("messages", (message, run.tool_metadata(position, task_ns)))
            update[channel] = value
        run.part("updates", {"tools": update})

    async def call_tool(position: int) -> None:
        restored = steps.restored(task_ids[position])
        if restored is not None:  # it finished before the run stopped: not run again
            finish(position, restored)
            return
        task = steps.interrupts_of(task_ids[position])
        steps.task_started(task_ids[position], "tools", [calls[position]])
        token = current_tool_task.set(ToolTask(run, position, f"tools:{task_ids[position]}"))
        asking = current_task_interrupts.set(task)
        try:
            result = await run_tool(position)
        except GraphInterrupt as stop:
            assert task is not None  # interrupt() raises UsageError without a thread
            interrupted.extend(stop.interrupts)
            steps.task_finished(task_ids[position], "tools", None, stop.interrupts)
            await steps.task_interrupted(task_ids[position], stop.interrupts, task)
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
        if tool is None:
            known = ", ".join(sorted(agent.tools_by_name)) or "none"
            return ToolMessage(
                content=f"Error: {call['name']!r} is not a valid tool, try one of [{known}].",
                name=call["name"],
                tool_call_id=call["id"] or "",
                status="error",
            )
        writer = run.writer()
        runtime = ToolRuntime(
            state=steps.values(), context=run.context, config=run.config, stream_writer=writer,
            tool_call_id=call["id"],
        ) if tool.wants_runtime else None
        return await tool.arun(call, writer=writer, runtime=runtime)

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
    finished = [
        (task_id, writes)
        for task_id, writes in zip(task_ids, results, strict=True)
        if writes is not None
    ]
    return finished, tuple(interrupted)
