"""What a thread's checkpoints look like from outside: ``get_state()``'s
:class:`StateSnapshot` with its tasks, the history, and the ``checkpoints`` stream mode's
payload, all in LangGraph's shapes, made from :mod:`rxagent._thread_state`'s checkpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ._interrupts import Interrupt
from ._messages import AIMessage, BaseMessage, ToolMessage
from ._thread_state import (
    INTERRUPT,
    Head,
    Write,
    apply_writes,
    config_of,
    fold,
    head_of,
    read_state,
    recall,
    remember,
)
from .checkpoint import BaseCheckpointSaver, CheckpointTuple

__all__ = [
    "PregelTask",
    "StateSnapshot",
    "checkpoint_payload",
    "history_snapshots",
    "last_reply",
    "pending_calls",
    "results_of",
    "snapshot",
    "task_nodes",
]


class PregelTask(NamedTuple):
    """A task of a checkpoint's next step, as LangGraph describes it."""

    id: str
    name: str
    path: tuple[Any, ...] = ()
    error: Exception | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None


class StateSnapshot(NamedTuple):
    """A thread's state at one checkpoint (``agent.get_state(config)``), as LangGraph gives it.

    Attributes:
        values: the state: ``{"messages": [...]}``.
        next: the nodes that run next (``("tools",)``); empty when the run is over.
        config: the config that names this checkpoint (``checkpoint_id``).
        metadata: ``source`` (``"input"``, ``"loop"``, ``"update"``), ``step``, ``run_id``...
        created_at: when it was made, ISO 8601.
        parent_config: the config of the checkpoint before it, if any.
        tasks: the tasks of the next step, with their interrupts and any result already written.
        interrupts: every interrupt pending at this checkpoint.
    """

    values: dict[str, Any]
    next: tuple[str, ...]
    config: dict[str, Any]
    metadata: dict[str, Any] | None
    created_at: str | None
    parent_config: dict[str, Any] | None
    tasks: tuple[PregelTask, ...]
    interrupts: tuple[Interrupt, ...] = ()


def snapshot(
    head: Head, results: Mapping[str, Any] | None = None, *, with_pending: bool = False
) -> StateSnapshot:
    """``head`` as a :class:`StateSnapshot`; ``results`` are what its tasks wrote in the next
    checkpoint, by task id, for a checkpoint that has one.

    ``with_pending`` (``get_state``, as LangGraph's): the writes of the tasks that finished in
    a step that then stopped (an interrupt in another task) are shown in the values, and
    ``next`` names only the tasks still to run.
    """
    found = dict(results or {})
    for task_id, writes in head.pending.items():
        task_messages = [m for channel, value in writes if channel == "messages" for m in value]
        if task_messages:
            found[task_id] = {"messages": task_messages}
    tasks: list[PregelTask] = []
    if head.next and head.next[0] == "tools":
        reply, answers = last_reply(head.values.get("messages", ()))
        calls = pending_calls(reply, answers) if reply is not None else []
        for position in range(len(calls)):
            task_id = head.task_id("tools", position)
            tasks.append(PregelTask(
                task_id, "tools", ("__pregel_push", position, False),
                interrupts=tuple(
                    item
                    for channel, value in head.pending.get(task_id, ())
                    if channel == INTERRUPT
                    for item in value
                ),
                result=found.get(task_id),
            ))
    elif head.next:
        name = head.next[0]
        task_id = head.task_id(name)
        tasks.append(PregelTask(task_id, name, ("__pregel_pull", name), result=found.get(task_id)))
    parent = (
        config_of(head.thread_id, head.checkpoint_ns, head.parent_id) if head.parent_id else None
    )
    values, next_nodes = head.values, head.next
    finished = [task for task in tasks if task.result is not None and not task.interrupts
                and task.id in head.pending]
    if with_pending and finished:
        values = apply_writes(values, [
            (task.id, channel, value) for task in finished
            for channel, value in head.pending[task.id] if not channel.startswith("__")])
        next_nodes = tuple(task.name for task in tasks if task not in finished)
    return StateSnapshot(
        values=values,
        next=next_nodes,
        config=head.config(),
        metadata=head.metadata,
        created_at=head.created_at,
        parent_config=parent,
        tasks=tuple(tasks),
        interrupts=head.interrupts(),
    )


def results_by_task(writes: Sequence[Write]) -> dict[str, Any]:
    """What each task wrote, by task id: ``{"messages": [...]}`` (the next checkpoint's writes
    are its parent's tasks' results)."""
    found: dict[str, dict[str, list[Any]]] = {}
    for task_id, channel, value in writes:
        if channel == "messages":
            found.setdefault(task_id, {"messages": []})["messages"].extend(value)
    return found


def checkpoint_payload(head: Head) -> dict[str, Any]:
    """A checkpoint as the ``checkpoints`` stream mode gives it, LangGraph's shape."""
    state = snapshot(head)
    configurable = state.config["configurable"]
    tasks = []
    for task in state.tasks:
        described: dict[str, Any] = {"id": task.id, "name": task.name,
                                     "interrupts": task.interrupts, "state": None}
        if task.result is not None:
            described["result"] = task.result
        tasks.append(described)
    return {
        "config": {"configurable": {
            "checkpoint_ns": configurable["checkpoint_ns"],
            "thread_id": configurable["thread_id"],
            "checkpoint_id": configurable["checkpoint_id"],
        }},
        "parent_config": state.parent_config,
        "values": {**head.values, "messages": list(head.values.get("messages", ()))},
        "metadata": head.metadata,
        "next": list(head.next),
        "tasks": tasks,
    }


def results_of(child: CheckpointTuple) -> dict[str, Any]:
    """What the tasks of ``child``'s parent wrote, by task id: ``child``'s own writes."""
    return results_by_task(read_state(child)[2])


def last_reply(messages: Sequence[BaseMessage]) -> tuple[AIMessage | None, list[ToolMessage]]:
    """The conversation's last model reply and the tool messages after it."""
    for position in range(len(messages) - 1, -1, -1):
        message = messages[position]
        if isinstance(message, AIMessage):
            return message, [m for m in messages[position + 1:] if isinstance(m, ToolMessage)]
    return None, []


def task_nodes(next_node: str | None, messages: Sequence[BaseMessage]) -> list[str]:
    """A checkpoint's ``next``: the node to run, once per task: ``tools`` once per call still
    to answer, as LangGraph sends each call as a task of its own."""
    if next_node is None:
        return []
    if next_node != "tools":
        return [next_node]
    reply, answers = last_reply(messages)
    if reply is None:
        return ["tools"]
    invalid = [c for c in reply.invalid_tool_calls if c.get("id")]
    return ["tools"] * max(1, len(pending_calls(reply, answers)) + len(invalid))


def pending_calls(reply: AIMessage, answers: Sequence[ToolMessage]) -> list[Any]:
    """The reply's tool calls that no tool message answers yet."""
    if not answers:
        return list(reply.tool_calls)
    answered = {message.tool_call_id for message in answers}
    return [call for call in reply.tool_calls if call["id"] not in answered]


def history_snapshots(
    saver: BaseCheckpointSaver,
    thread: Sequence[CheckpointTuple],
    selected: Sequence[CheckpointTuple],
) -> list[StateSnapshot]:
    """Snapshots of the ``selected`` checkpoints of a ``thread`` (all its checkpoints, newest
    first), each state folded from its parent's, oldest first, so each is folded once."""
    chain = {item.checkpoint.checkpoint_id: item for item in thread}
    children: dict[str, list[Write]] = {}
    for item in thread:  # newest first: a checkpoint's results are its first child's writes
        parent = item.checkpoint.parent_id
        if parent is not None:
            children[parent] = read_state(item)[2]
    wanted = {item.checkpoint.checkpoint_id for item in selected}
    found: dict[str, StateSnapshot] = {}
    for item in reversed(thread):
        checkpoint_id = item.checkpoint.checkpoint_id
        key = (item.checkpoint.thread_id, item.checkpoint.checkpoint_ns, checkpoint_id)
        head = head_of(item, *(recall(saver, key) or fold(saver, chain, checkpoint_id)))
        remember(saver, head)
        if checkpoint_id in wanted:
            found[checkpoint_id] = snapshot(
                head, results_by_task(children.get(checkpoint_id, []))
            )
    return [found[item.checkpoint.checkpoint_id] for item in selected]
