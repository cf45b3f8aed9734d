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
from collections.abc import Mapping
from typing import Any, Protocol

import anyio

from ._context import RunContext, ToolTask, current_run, current_tool_task
from ._convert import to_messages
from ._exceptions import InvalidMessageError, ModelCallError, RecursionLimitError
from ._fast_rx import consume
from ._loops import land_cancellation
from ._messages import (
    AIMessage,
    BaseMessage,
    ChunkAccumulator,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from ._tools import BaseTool
from ._types import ToolSpec
from .chat_models._base import BaseChatModel

__all__ = ["DEFAULT_RECURSION_LIMIT", "AgentDefinition", "run_agent", "run_nested"]

DEFAULT_RECURSION_LIMIT = 25


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


def _input_messages(value: Any) -> list[BaseMessage]:
    if isinstance(value, dict) and "messages" in value:
        return to_messages(value["messages"])
    raise InvalidMessageError(
        "an agent's input is a dict with a 'messages' list, e.g. "
        "{'messages': [{'role': 'user', 'content': 'Hi'}]}; got "
        f"{type(value).__name__}"
        + (f" with keys {sorted(map(str, value))}" if isinstance(value, dict) else "")
    )


async def run_agent(
    agent: AgentDefinition, input: Any, config: dict[str, Any] | None, run: RunContext
) -> dict[str, Any]:
    """Run the agent loop, pushing every event into ``run``; return the final state."""
    config = config or {}
    limit = int(config.get("recursion_limit", DEFAULT_RECURSION_LIMIT))
    messages = _input_messages(input)
    state: dict[str, Any] = {"messages": messages}
    run.state({"messages": list(messages)})
    token = current_run.set(run)
    try:
        while True:
            reply = await _model_node(agent, run, messages, limit)
            messages.append(reply)
            run.part("updates", {"model": {"messages": [reply]}})
            run.state({"messages": list(messages)})
            calls = reply.tool_calls
            invalid = [c for c in reply.invalid_tool_calls if c.get("id")]
            if not calls and not invalid:
                return state
            results = await _tools_node(agent, run, reply, limit)
            messages.extend(results)
            run.state({"messages": list(messages)})
    finally:
        current_run.reset(token)


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
    if run.step > limit:
        raise RecursionLimitError(
            f"Recursion limit of {limit} reached without hitting a stop condition. Raise it "
            "with config={'recursion_limit': N}, or check why the model keeps calling tools."
        )
    run.node = node
    run.task_ns = f"{node}:{uuid.uuid4()}"


async def _model_node(
    agent: AgentDefinition, run: RunContext, messages: list[BaseMessage], limit: int
) -> AIMessage:
    _next_step(run, "model", limit)
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


async def _tools_node(
    agent: AgentDefinition, run: RunContext, reply: AIMessage, limit: int
) -> list[ToolMessage]:
    _next_step(run, "tools", limit)
    calls = list(reply.tool_calls)
    results: list[ToolMessage | None] = [None] * (len(calls) + len(reply.invalid_tool_calls))
    # Each call is a task of its own, as in LangGraph: its namespace, its position.
    task_nss = [f"tools:{uuid.uuid4()}" for _ in results]

    def finish(position: int, message: ToolMessage) -> None:
        results[position] = message
        run.part("messages", (message, run.tool_metadata(position, task_nss[position])))
        run.part("updates", {"tools": {"messages": [message]}})

    async def call_tool(position: int) -> None:
        token = current_tool_task.set(ToolTask(run, position, task_nss[position]))
        try:
            await run_tool(position)
        finally:
            current_tool_task.reset(token)

    async def run_tool(position: int) -> None:
        # A run disposed of from another thread starts no tool, even before the loop has got
        # to the cancellation (a sync tool, once started, could not be stopped).
        await land_cancellation()
        call = calls[position]
        tool = agent.tools_by_name.get(call["name"])
        if tool is None:
            known = ", ".join(sorted(agent.tools_by_name)) or "none"
            message = ToolMessage(
                content=f"Error: {call['name']!r} is not a valid tool, try one of [{known}].",
                name=call["name"],
                tool_call_id=call["id"] or "",
                status="error",
            )
        else:
            message = await tool.arun(call, writer=run.writer())
        finish(position, message)

    for offset, bad in enumerate(c for c in reply.invalid_tool_calls if c.get("id")):
        finish(
            len(calls) + offset,
            ToolMessage(
                content=f"Error: the arguments of {bad.get('name')!r} are not valid JSON "
                f"({bad.get('error')}); send them again as a JSON object.",
                name=bad.get("name"),
                tool_call_id=bad.get("id") or "",
                status="error",
            ),
        )
    if len(calls) == 1:
        await call_tool(0)
    elif calls:
        async with anyio.create_task_group() as group:
            for position in range(len(calls)):
                group.start_soon(call_tool, position)
    return [message for message in results if message is not None]
