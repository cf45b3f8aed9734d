"""A run's steps, on its thread or on none: where the run starts, each step saved as a
checkpoint, the tasks' results kept, and the interrupts that stop it.

The agent loop (``_agent_loop.py``) runs the nodes; it tells a :class:`RunSteps` what each step
did, and asks it where to start and what a resumed task already has. Without a thread most of
this is nothing: no checkpoint, random task ids, no interrupts.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from ._callbacks import current_agent
from ._context import RunContext
from ._convert import to_messages
from ._exceptions import InvalidMessageError, InvalidUpdateError, UsageError
from ._interrupts import Command, Interrupt, TaskInterrupts, resume_answers
from ._messages import BaseMessage, ToolMessage
from ._removal import RemoveMessage
from ._thread_run import ThreadRun
from ._thread_state import (
    INTERRUPT,
    RESUME,
    Head,
    MessageList,
    Route,
    Write,
    apply_update,
    new_checkpoint,
    now,
    with_ids,
)
from ._thread_views import checkpoint_payload, task_nodes

__all__ = ["RunSteps", "input_messages", "input_others"]

_M = TypeVar("_M", bound=BaseMessage)


def input_messages(value: Any) -> list[BaseMessage]:
    """The messages of a run's input, ``{"messages": [...]}``."""
    if isinstance(value, dict) and "messages" in value:
        return to_messages(value["messages"])
    raise InvalidMessageError(
        "an agent's input is a dict with a 'messages' list, e.g. "
        "{'messages': [{'role': 'user', 'content': 'Hi'}]}; got "
        f"{type(value).__name__}"
        + (f" with keys {sorted(map(str, value))}" if isinstance(value, dict) else "")
    )


def input_others(value: dict[str, Any], state_keys: Sequence[str]) -> dict[str, Any]:
    """The input's state keys besides ``messages``, which the agent's state schema declares."""
    unknown = sorted(str(key) for key in value if key != "messages" and key not in state_keys)
    if unknown:
        raise InvalidUpdateError(
            f"the input has key(s) {unknown} that the agent's state does not have; declare "
            "them in a state schema: create_agent(..., state_schema=MyState), with MyState an "
            "AgentState subclass"
        )
    return {key: value[key] for key in state_keys if key in value}


class RunSteps:
    """The run's steps on its thread, or on none: where the run starts, each step saved, and
    the interrupts that stop it."""

    def __init__(
        self,
        thread: ThreadRun | None,
        run: RunContext,
        state_keys: Sequence[str],
        interrupt_before: Collection[str],
        interrupt_after: Collection[str],
        *,
        hidden: frozenset[str] = frozenset(),
        untracked: frozenset[str] = frozenset(),
        entry: str = "model",
        route: Route | None = None,
    ) -> None:
        self.thread = thread
        self.run = run
        self.state_keys = tuple(state_keys)
        self.hidden = hidden  # keys left out of what the run shows (private middleware state)
        self.untracked = untracked  # keys kept for the run only, never saved
        self.entry = entry  # the first node of a run from input
        self.route = route  # the nodes after one that an update counts as
        self.others: dict[str, Any] = {}  # the state's keys besides messages
        self.run_only: dict[str, Any] = {}  # the untracked keys' values
        # Removals shown in ``messages`` mode already: few, and a list, since a paused run
        # keeps its steps for its whole life and an empty set is 216 bytes.
        self.shown: list[str] = []
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.messages: list[BaseMessage] = []
        self._by_id: MessageList | None = None  # on a thread: the messages, indexed by id
        self._taken: Head | None = None  # the checkpoint the running state was taken from
        self.resumed = False  # going on from a checkpoint: its next node runs without stopping
        self.answers: dict[str, Any] = {}  # the resume's answer to each interrupt, by id

    def add(self, messages: list[BaseMessage], *, by_id: bool = False) -> None:
        """Messages join the state: on a thread by id (one whose id is there replaces it, a
        ``RemoveMessage`` removes); off a thread appended, unless ``by_id``."""
        if self._by_id is not None:
            self._by_id.add(messages)
        elif by_id or any(isinstance(m, RemoveMessage) for m in messages):
            # Off a thread only a middleware's writes replace or remove messages: the index is
            # made for them alone, and the list changed in place.
            index = MessageList(self.messages)
            index.add(messages)
            self.messages[:] = index.messages
        else:  # each with an id, as LangGraph's reducer gives them (the update shown has none)
            self.messages.extend(with_ids(messages))

    def _live(self) -> dict[str, Any]:
        """The running state, shared (not copied) by the checkpoint a step makes."""
        return {"messages": self.messages, **self.others}

    def _live_index(self) -> dict[str, int] | None:
        return self._by_id.positions if self._by_id is not None else None

    def values(self) -> dict[str, Any]:
        """The state now, every key (as a ``values`` part and a hook or tool see it): its own
        lists, as the state goes on growing."""
        if self.run_only:
            return {"messages": list(self.messages), **self.others, **self.run_only}
        return {"messages": list(self.messages), **self.others}

    def state(self) -> dict[str, Any]:
        """The state at the run's end, as ``invoke`` gives it: without private keys."""
        if self.hidden:
            return {"messages": self.messages,
                    **{k: v for k, v in self.others.items() if k not in self.hidden}}
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
                        run_id=thread.run_id, state_keys=self.state_keys, route=self.route,
                    ))
                if input.resume is not None:
                    self.answers = resume_answers(input.resume, self._head().interrupts())
            if self._head() is head:  # going on from it as it is: shown first, as LangGraph does
                self._announce_checkpoint(head)
        else:
            added = with_ids(input_messages(input))
            others = input_others(input, self.state_keys)
            step = head.step + 1 if head is not None else -1
            arrived = new_checkpoint(
                head, thread_id=thread.thread_id, ns=thread.ns, step=step,
                next_nodes=["__start__"], writes=[], source="input", run_id=thread.run_id,
                values=head.values if head is not None else {"messages": []},
                index=head.index if head is not None else None,
            )
            await self._save(arrived)
            self._take(arrived)
            self.add(added)
            self.others.update(others)
            await self._save(new_checkpoint(
                arrived, thread_id=thread.thread_id, ns=thread.ns, step=step + 1,
                next_nodes=[self.entry],
                writes=[(arrived.task_id("__start__"), channel, value)
                        for channel, value in [("messages", added), *others.items()]],
                source="loop", run_id=thread.run_id, values=self._live(),
                index=self._live_index(),
            ))
        head = self._head()
        if head is not self._taken:
            self._take(head)
        self.run.checkpoint_id = head.checkpoint_id
        self.run.step = self.run.step_base = head.step
        self.run.state(self.values())
        return head.next[0] if head.next else None

    def _take(self, head: Head) -> None:
        """Run on from ``head``'s state: a copy of its own, that the steps add to."""
        self._by_id = MessageList(head.values["messages"], head.index)
        self.messages = self._by_id.messages
        self.others = {key: head.values[key] for key in self.state_keys if key in head.values}
        self._taken = head

    async def _save(self, head: Head) -> None:
        assert self.thread is not None
        await self.thread.save(head)
        self.run.checkpoint_id = head.checkpoint_id  # the next step starts from it
        self._announce_checkpoint(head)

    def _announce_checkpoint(self, head: Head) -> None:
        extra = self.run.extra_modes
        if extra and ("checkpoints" in extra or "debug" in extra):
            self._announce("checkpoints", "checkpoint", head.step, checkpoint_payload(head))

    def task_started(self, task_id: str, name: str, input: Any, position: int = 0) -> None:
        """A task starts (the ``position``-th of its step): ``tasks`` and ``debug`` (when
        asked for) and callback handlers (when configured) hear of it."""
        told = current_agent.get()
        if told is not None:
            run = self.run
            metadata = (run.tool_metadata(position, f"tools:{task_id}") if name == "tools"
                        else run.node_metadata())
            told.node_started(task_id, name, input, run.step, metadata)
        if self.run.extra_modes:
            self._announce("tasks", "task", self.run.step, {
                "id": task_id, "name": name, "input": input,
                "triggers": ("__pregel_push",) if name == "tools" else (f"branch:to:{name}",),
                "metadata": {"ls_integration": "langchain_create_agent"},
            })

    def task_finished(
        self, task_id: str, name: str, result: Any, interrupts: Sequence[Interrupt] = ()
    ) -> None:
        told = current_agent.get()
        if told is not None:
            told.node_finished(task_id, result, interrupts)
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

    def joined(self, message: _M) -> _M:
        """``message`` as it joins the state: with an id, on a thread (or as it is)."""
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
            next_nodes=task_nodes(next_node, self.messages), writes=writes, source="loop",
            run_id=self.thread.run_id, values=self._live(), index=self._live_index(),
        ))

    def restored(self, task_id: str) -> list[tuple[str, Any]] | None:
        """What a task of this step wrote before the run stopped, if it finished."""
        if self.thread is None:
            return None
        writes = self._head().pending.get(task_id, ())
        if any(channel in (INTERRUPT, RESUME) for channel, _ in writes) or not writes:
            return None
        return list(writes)

    def task_writes(self, result: ToolMessage | Command) -> list[tuple[str, Any]]:
        """What a tool call's result writes to the state: its ToolMessage, or the update of the
        ``Command`` it returned (messages, and keys of the state schema)."""
        if isinstance(result, ToolMessage):
            return [("messages", [self.joined(result)])]
        update = result.update
        unknown = sorted(str(k) for k in update if k != "messages" and k not in self.state_keys)
        if unknown:
            raise InvalidUpdateError(
                f"a tool's Command updates key(s) {unknown} that the agent's state does not "
                "have; declare them with create_agent(..., state_schema=...)"
            )
        messages = [self.joined(message) for message in to_messages(update["messages"])]
        return [("messages", messages),
                *((key, update[key]) for key in self.state_keys if key in update)]

    def apply(self, writes: list[tuple[str, Any]], *, by_id: bool = False) -> None:
        """A task's writes join the state (messages by id off a thread too, if ``by_id``)."""
        for channel, value in writes:
            if channel == "messages":
                self.add(value, by_id=by_id)
            elif channel in self.untracked:
                self.run_only[channel] = value
            else:
                self.others[channel] = value

    def interrupts_of(self, task_id: str) -> TaskInterrupts | None:
        """What a tool call's ``interrupt()`` calls answer this time (``None``: no thread)."""
        if self.thread is None:
            return None
        earlier: list[Any] = []  # the answers of the interrupts it got past last time
        answered: list[Any] = []  # the answer to the one that stopped it, if this resume has one
        for channel, value in self._head().pending.get(task_id, ()):
            if channel == RESUME:
                earlier = list(value)
            elif channel == INTERRUPT:
                answered = [self.answers[item.id] for item in value if item.id in self.answers]
        return TaskInterrupts(task_id, earlier + answered)

    async def task_done(self, task_id: str, writes: list[tuple[str, Any]]) -> None:
        if self.thread is not None:  # untracked keys are the run's alone: never saved
            await self.thread.save_task(
                task_id, [(ch, v) for ch, v in writes if ch not in self.untracked])

    async def task_interrupted(
        self, task_id: str, interrupts: tuple[Interrupt, ...], task: TaskInterrupts
    ) -> None:
        assert self.thread is not None
        await self.thread.save_task(
            task_id, [(INTERRUPT, list(interrupts)), (RESUME, list(task.answers))]
        )

    def stop(self, interrupts: tuple[Interrupt, ...]) -> None:
        """Stop the run to ask a human (``interrupt()``, or ``interrupt_before``/``_after``)."""
        self.run.part("updates", {"__interrupt__": interrupts})
        self.run.state(self.values(), interrupts)
