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
from ._convert import to_messages
from ._exceptions import (
    InvalidMessageError,
    InvalidUpdateError,
    ModelCallError,
    RecursionLimitError,
    UsageError,
)
from ._fast_rx import consume
from ._interrupts import (
    Command,
    GraphInterrupt,
    Interrupt,
    TaskInterrupts,
    current_task_interrupts,
    resume_answers,
)
from ._loops import land_cancellation
from ._messages import (
    AIMessage,
    BaseMessage,
    ChunkAccumulator,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from ._thread_run import ThreadRun
from ._thread_state import (
    INTERRUPT,
    RESUME,
    Head,
    MessageList,
    Write,
    apply_update,
    checkpoint_payload,
    new_checkpoint,
    now,
    with_ids,
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
    @property
    def interrupt_before(self) -> Sequence[str]: ...
    @property
    def interrupt_after(self) -> Sequence[str]: ...
    @property
    def state_keys(self) -> Sequence[str]: ...


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
    limit = int(config.get("recursion_limit", DEFAULT_RECURSION_LIMIT))
    token = current_run.set(run)
    try:
        if thread is None:
            steps = _Steps(None, run, agent.state_keys, set(), set())
            steps.messages = _input_messages(input)
            steps.others = _input_others(input, agent.state_keys)
            run.state(steps.values())
            await _loop(agent, run, steps, "model", limit)
            return steps.state()
        async with thread.open():
            steps = _Steps(thread, run, agent.state_keys, set(agent.interrupt_before),
                           set(agent.interrupt_after))
            node = await steps.begin(input)
            if node is not None:
                await _loop(agent, run, steps, node, limit)
            return steps.state()
    finally:
        current_run.reset(token)


def _input_others(value: dict[str, Any], state_keys: Sequence[str]) -> dict[str, Any]:
    """The input's state keys besides ``messages``, which the agent's state schema declares."""
    unknown = sorted(str(key) for key in value if key != "messages" and key not in state_keys)
    if unknown:
        raise InvalidUpdateError(
            f"the input has key(s) {unknown} that the agent's state does not have; declare "
            "them in a state schema: create_agent(..., state_schema=MyState), with MyState an "
            "AgentState subclass"
        )
    return {key: value[key] for key in state_keys if key in value}


async def _loop(
    agent: AgentDefinition, run: RunContext, steps: _Steps, node: str | None, limit: int
) -> None:
    messages = steps.messages
    resumed = steps.resumed
    while node is not None:
        if not resumed and node in steps.interrupt_before:
            await steps.stop(())
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
            results, interrupts = await _tools_node(agent, run, reply, limit, steps)
            if interrupts:
                await steps.stop(interrupts)
                return
            steps.add([message for _, message in results])
            run.state(steps.values())
            node = "model"
            await steps.done(
                [(task_id, "messages", [message]) for task_id, message in results], node
            )
        if node is not None and finished in steps.interrupt_after:
            await steps.stop(())
            return


def _last_reply(messages: list[BaseMessage]) -> AIMessage:
    reply = messages[-1] if messages else None
    if not isinstance(reply, AIMessage):
        raise UsageError(
            "the thread's next step is the tools node, but its last message is not the model's "
            "reply with tool calls"
        )
    return reply


class _Steps:
    """The run's steps on its thread, or on none: where the run starts, each step saved, and
    the interrupts that stop it."""

    def __init__(
        self,
        thread: ThreadRun | None,
        run: RunContext,
        state_keys: Sequence[str],
        interrupt_before: set[str],
        interrupt_after: set[str],
    ) -> None:
        self.thread = thread
        self.run = run
        self.state_keys = tuple(state_keys)
        self.others: dict[str, Any] = {}  # the state's keys besides messages
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.messages: list[BaseMessage] = []
        self._by_id: MessageList | None = None  # on a thread: the messages, indexed by id
        self._taken: Head | None = None  # the checkpoint the running state was taken from
        self.resumed = False  # going on from a checkpoint: its next node runs without stopping
        self.answers: dict[str, Any] = {}  # the resume's answer to each interrupt, by id

    def add(self, messages: list[BaseMessage]) -> None:
        """Messages join the state: on a thread by id (one whose id is there replaces it)."""
        if self._by_id is None:
            self.messages.extend(messages)
        else:
            self._by_id.add(messages)

    def _live(self) -> dict[str, Any]:
        """The running state, shared (not copied) by the checkpoint a step makes."""
        return {"messages": self.messages, **self.others}

    def values(self) -> dict[str, Any]:
        """The state now, for a ``values`` part: its own lists, as the state goes on growing."""
        return {"messages": list(self.messages), **self.others}

    def state(self) -> dict[str, Any]:
        """The state at the run's end."""
        return {"messages": self.messages, **self.others}

    def _head(self) -> Head:
        assert self.thread is not None and self.thread.head is not None
        return self.thread.head

    async def begin(self, input: Any) -> str | None:
        """Start from the thread's checkpoint; the node to run first (``None``: nothing)."""
        thread = self.thread
        assert thread is not None
        head = thread.head
        if isinstance(input, Command) or input is None:
            if head is None:
                raise UsageError(
                    f"thread {thread.thread_id!r} has no checkpoint to go on from: start it with "
                    "an input such as {'messages': [...]}"
                )
            self.resumed = True
            if isinstance(input, Command):
                if input.goto or input.graph is not None:
                    raise UsageError("Command(goto=...) and Command(graph=...) are not supported "
                                     "by rxagent's agents; use resume= and update=")
                if input.update is not None:
                    await self._save(apply_update(
                        head, input.update, None, thread_id=thread.thread_id, ns=thread.ns,
                        run_id=thread.run_id, state_keys=self.state_keys,
                    ))
                if input.resume is not None:
                    self.answers = resume_answers(input.resume, self._head().interrupts())
            if self._head() is head:  # going on from it as it is: shown first, as LangGraph does
                self._announce_checkpoint(head)
        else:
            added = with_ids(_input_messages(input))
            others = _input_others(input, self.state_keys)
            step = head.step + 1 if head is not None else -1
            arrived = new_checkpoint(
                head, thread_id=thread.thread_id, ns=thread.ns, step=step,
                next_nodes=["__start__"], writes=[], source="input", run_id=thread.run_id,
                values=head.values if head is not None else {"messages": []},
            )
            await self._save(arrived)
            self._take(arrived)
            self.add(added)
            self.others.update(others)
            await self._save(new_checkpoint(
                arrived, thread_id=thread.thread_id, ns=thread.ns, step=step + 1,
                next_nodes=["model"],
                writes=[(arrived.task_id("__start__"), channel, value)
                        for channel, value in [("messages", added), *others.items()]],
                source="loop", run_id=thread.run_id, values=self._live(),
            ))
        head = self._head()
        if head is not self._taken:
            self._take(head)
        self.run.step = self.run.step_base = head.step
        self.run.state(self.values())
        return head.next[0] if head.next else None

    def _take(self, head: Head) -> None:
        """Run on from ``head``'s state: a copy of its own, that the steps add to."""
        self._by_id = MessageList(head.values["messages"])
        self.messages = self._by_id.messages
        self.others = {key: head.values[key] for key in self.state_keys if key in head.values}
        self._taken = head

    async def _save(self, head: Head) -> None:
        assert self.thread is not None
        await self.thread.save(head)
        self._announce_checkpoint(head)

    def _announce_checkpoint(self, head: Head) -> None:
        extra = self.run.extra_modes
        if extra and ("checkpoints" in extra or "debug" in extra):
            self._announce("checkpoints", "checkpoint", head.step, checkpoint_payload(head))

    def task_started(self, task_id: str, name: str, input: Any) -> None:
        """A task starts: ``tasks`` and ``debug`` (when asked for) say so."""
        if self.run.extra_modes:
            self._announce("tasks", "task", self.run.step, {
                "id": task_id, "name": name, "input": input,
                "triggers": ("__pregel_push",) if name == "tools" else (f"branch:to:{name}",),
                "metadata": {"ls_integration": "langchain_create_agent"},
            })

    def task_finished(
        self, task_id: str, name: str, result: Any, interrupts: Sequence[Interrupt] = ()
    ) -> None:
        if self.run.extra_modes:
            self._announce("tasks", "task_result", self.run.step, {
                "id": task_id, "name": name, "error": None, "result": result,
                "interrupts": list(interrupts),
            })

    def _announce(self, mode: str, kind: str, step: int, payload: dict[str, Any]) -> None:
        extra = self.run.extra_modes
        if mode in extra:
            self.run.part(mode, payload)
        if "debug" in extra:
            self.run.part("debug", {"step": step, "timestamp": now(), "type": kind,
                                    "payload": payload})

    def joined(self, message: AIMessage) -> AIMessage:
        """``message`` as it joins the state: with an id, on a thread."""
        if self.thread is None or message.id:
            return message
        return message.model_copy(update={"id": str(uuid.uuid4())})

    def joined_tool(self, message: ToolMessage) -> ToolMessage:
        if self.thread is None or message.id:
            return message
        return message.model_copy(update={"id": str(uuid.uuid4())})

    def task_id(self, name: str, position: int = 0) -> str:
        """The id of a task of this step: derived from the checkpoint on a thread, so that a
        resumed step's tasks are the same tasks."""
        if self.thread is None:
            return str(uuid.uuid4())
        return self._head().task_id(name, position)

    async def done(self, writes: list[Write], next_node: str | None) -> None:
        """A step wrote ``writes``: save the checkpoint after it."""
        if self.thread is None:
            return
        head = self._head()
        await self._save(new_checkpoint(
            head, thread_id=head.thread_id, ns=head.checkpoint_ns, step=head.step + 1,
            next_nodes=[next_node] if next_node else [], writes=writes, source="loop",
            run_id=self.thread.run_id, values=self._live(),
        ))

    def restored(self, task_id: str) -> ToolMessage | None:
        """The result a task of this step wrote before the run stopped, if it finished."""
        if self.thread is None:
            return None
        for channel, value in self._head().pending.get(task_id, ()):
            if channel == "messages" and value and isinstance(value[0], ToolMessage):
                return value[0]
        return None

    def interrupts_of(self, task_id: str) -> TaskInterrupts | None:
        """What a tool call's ``interrupt()`` calls answer this time (``None``: no thread)."""
        if self.thread is None:
            return None
        earlier: list[Any] = []  # the answers of the interrupts it got past last time
        now: list[Any] = []  # the answer to the one that stopped it, if this resume has one
        for channel, value in self._head().pending.get(task_id, ()):
            if channel == RESUME:
                earlier = list(value)
            elif channel == INTERRUPT:
                now = [self.answers[item.id] for item in value if item.id in self.answers]
        return TaskInterrupts(task_id, earlier + now)

    async def task_done(self, task_id: str, message: ToolMessage) -> None:
        if self.thread is not None:
            await self.thread.save_task(task_id, [("messages", [message])])

    async def task_interrupted(
        self, task_id: str, interrupts: tuple[Interrupt, ...], task: TaskInterrupts
    ) -> None:
        assert self.thread is not None
        await self.thread.save_task(
            task_id, [(INTERRUPT, list(interrupts)), (RESUME, list(task.answers))]
        )

    async def stop(self, interrupts: tuple[Interrupt, ...]) -> None:
        """Stop the run to ask a human (``interrupt()``, or ``interrupt_before``/``_after``)."""
        self.run.part("updates", {"__interrupt__": interrupts})
        self.run.state(self.values(), interrupts)


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


async def _tools_node(
    agent: AgentDefinition, run: RunContext, reply: AIMessage, limit: int, steps: _Steps
) -> tuple[list[tuple[str, ToolMessage]], tuple[Interrupt, ...]]:
    """Run the reply's tool calls, each a task of its own; their results by task id, in the
    calls' order, and the interrupts that stopped any of them."""
    _next_step(run, "tools", limit)
    calls = list(reply.tool_calls)
    invalid = [c for c in reply.invalid_tool_calls if c.get("id")]
    results: list[ToolMessage | None] = [None] * (len(calls) + len(invalid))
    # Each call is a task of its own, as in LangGraph: its id, namespace and position.
    task_ids = [steps.task_id("tools", position) for position in range(len(results))]
    interrupted: list[Interrupt] = []

    def finish(position: int, message: ToolMessage) -> None:
        results[position] = message
        run.part("messages", (message, run.tool_metadata(position, f"tools:{task_ids[position]}")))
        run.part("updates", {"tools": {"messages": [message]}})

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
            message = await run_tool(position)
        except GraphInterrupt as stop:
            assert task is not None  # interrupt() raises UsageError without a thread
            interrupted.extend(stop.interrupts)
            steps.task_finished(task_ids[position], "tools", None, stop.interrupts)
            await steps.task_interrupted(task_ids[position], stop.interrupts, task)
            return
        finally:
            current_task_interrupts.reset(asking)
            current_tool_task.reset(token)
        message = steps.joined_tool(message)
        finish(position, message)
        steps.task_finished(task_ids[position], "tools", {"messages": [message]})
        await steps.task_done(task_ids[position], message)

    async def run_tool(position: int) -> ToolMessage:
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
        return await tool.arun(call, writer=run.writer())

    for offset, bad in enumerate(invalid):
        message = steps.joined_tool(ToolMessage(
            content=f"Error: the arguments of {bad.get('name')!r} are not valid JSON "
            f"({bad.get('error')}); send them again as a JSON object.",
            name=bad.get("name"),
            tool_call_id=bad.get("id") or "",
            status="error",
        ))
        finish(len(calls) + offset, message)
        await steps.task_done(task_ids[len(calls) + offset], message)
    if len(calls) == 1:
        await call_tool(0)
    elif calls:
        async with anyio.create_task_group() as group:
            for position in range(len(calls)):
                group.start_soon(call_tool, position)
    finished = [
        (task_id, message)
        for task_id, message in zip(task_ids, results, strict=True)
        if message is not None
    ]
    return finished, tuple(interrupted)
