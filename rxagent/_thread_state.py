"""A thread's state in a checkpoint saver: what each step adds, and the state folded back from it.

A checkpoint stores the writes of the step that made it, not the whole state: its ``state`` is
``{"v": 1, "step", "next", "writes": [[task_id, channel, value], ...]}``, and the state at a
checkpoint is its parent's state with its writes applied. So a step costs the same to save at the
first turn of a conversation and at the hundredth (LangGraph writes the whole message list at
every step). Reading a state back walks the chain of parents once; the states read or made in
this process are kept by checkpoint id (a checkpoint never changes), so a conversation that goes
on in one process reads nothing but its latest checkpoint; and nothing at all on a saver that
can tell that nobody wrote to the thread since this process did (:func:`leave`).

Messages are stored as their JSON (``model_dump``) with their ``type``; a tool's ``artifact``
that is not JSON-able is stored as its ``repr``. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, TypeAlias

from pydantic_core import to_jsonable_python

from ._convert import to_messages
from ._exceptions import CheckpointError, InvalidUpdateError, UsageError
from ._interrupts import Interrupt
from ._messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from ._removal import REMOVE_ALL_MESSAGES, RemoveMessage
from .checkpoint import BaseCheckpointSaver, Checkpoint, CheckpointTuple, PendingWrite
from .checkpoint._base import new_checkpoint_id

__all__ = [
    "FORMAT",
    "INTERRUPT",
    "RESUME",
    "Durability",
    "Head",
    "MessageList",
    "Route",
    "Write",
    "apply_update",
    "apply_writes",
    "as_record",
    "config_of",
    "decode_messages",
    "encode_messages",
    "encode_task_writes",
    "find_left",
    "fold",
    "head_of",
    "leave",
    "load_head",
    "new_checkpoint",
    "now",
    "read_state",
    "recall",
    "remember",
    "with_ids",
]

FORMAT = 1
"""The version of a checkpoint's ``state`` layout; a newer one is refused, never misread."""

Durability: TypeAlias = Literal["exit", "async", "sync"]
"""When a run's checkpoints are written: ``"sync"`` before the next step starts, ``"async"``
while it runs (all of them before the run ends), ``"exit"`` only when the run ends."""

Write: TypeAlias = tuple[str, str, Any]  # task id, channel, value (messages decoded)

# Channels of a task's pending writes besides the state's own keys.
INTERRUPT = "__interrupt__"
RESUME = "__resume__"

_MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
    "remove": RemoveMessage,
}


# -- the codec --------------------------------------------------------------------------------


def encode_messages(messages: Iterable[BaseMessage]) -> list[dict[str, Any]]:
    """Messages as JSON-able dicts (with ``type``)."""
    return [message.model_dump(mode="json", fallback=repr) for message in messages]


def decode_messages(data: Iterable[dict[str, Any]]) -> list[BaseMessage]:
    """Messages back from :func:`encode_messages`."""
    decoded: list[BaseMessage] = []
    for item in data:
        kind = _MESSAGE_TYPES.get(item.get("type", ""))
        if kind is None:
            raise CheckpointError(f"a saved message of unknown type {item.get('type')!r}")
        decoded.append(kind.model_validate(item))
    return decoded


def _encode_value(channel: str, value: Any) -> Any:
    if channel == "messages":
        return encode_messages(value)
    if channel == INTERRUPT:
        return [{"value": item.value, "id": item.id}
                | ({"response_schema": item.response_schema} if item.response_schema else {})
                for item in value]
    if channel == "structured_response" and value is not None:
        # A schema's instance (pydantic model, dataclass) is saved as its JSON; read back,
        # it is that JSON's dict.
        return to_jsonable_python(value)
    if not channel.startswith("__"):  # a key of the state schema: the user's value
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise InvalidUpdateError(
                f"the state's {channel!r} is saved with the thread, so it is JSON-able; got "
                f"{value!r}"
            ) from exc
    return value


def _decode_value(channel: str, value: Any) -> Any:
    if channel == "messages":
        return decode_messages(value)
    if channel == INTERRUPT:
        return [Interrupt(item["value"], item["id"], item.get("response_schema"))
                for item in value]
    return value


# -- the state a checkpoint holds -------------------------------------------------------------


def with_ids(messages: Iterable[BaseMessage]) -> list[BaseMessage]:
    """The messages, each with an id (a new one where it had none), as they join a thread's
    state: an id is how a later update replaces or removes a message."""
    return [
        message if message.id else message.model_copy(update={"id": str(uuid.uuid4())})
        for message in messages
    ]


class MessageList:
    """A thread's messages with an index by id, so that adding one costs the same however long
    the conversation is: a message whose id is there replaces it, any other is appended, and a
    :class:`RemoveMessage` removes the one it names (or all of them)."""

    __slots__ = ("messages", "positions")

    def __init__(
        self, messages: Iterable[BaseMessage] = (), positions: Mapping[str, int] | None = None
    ) -> None:
        """The messages, indexed; ``positions`` is their index already made (copied here)."""
        if positions is not None:
            self.messages: list[BaseMessage] = list(messages)
            self.positions: dict[str, int] = dict(positions)
            return
        self.messages = []
        self.positions = {}
        self.add(messages)

    def add(self, messages: Iterable[BaseMessage]) -> None:
        for message in messages:
            if isinstance(message, RemoveMessage):
                self._remove(message.id or "")
                continue
            position = self.positions.get(message.id) if message.id else None
            if position is None:
                if message.id:
                    self.positions[message.id] = len(self.messages)
                self.messages.append(message)
            else:
                self.messages[position] = message

    def _remove(self, message_id: str) -> None:
        if message_id == REMOVE_ALL_MESSAGES:
            self.messages.clear()  # in place: a run's steps share this list
        elif message_id in self.positions:
            del self.messages[self.positions[message_id]]
        else:
            raise InvalidUpdateError(
                f"RemoveMessage(id={message_id!r}): the state has no message with that id"
            )
        # Removing is rare: the positions after it are found again (in place: a run's steps
        # share this index).
        self.positions.clear()
        self.positions.update((m.id, n) for n, m in enumerate(self.messages) if m.id)


def apply_writes(values: Mapping[str, Any], writes: Iterable[Write]) -> dict[str, Any]:
    """``values`` with ``writes`` applied: messages added by id, other keys replaced."""
    result = dict(values)
    messages: MessageList | None = None
    for _, channel, value in writes:
        if channel == "messages":
            if messages is None:
                messages = MessageList(result.get("messages", ()))
            messages.add(value)
        elif not channel.startswith("__"):
            result[channel] = value
    if messages is not None:
        result["messages"] = messages.messages
    if "messages" in result:  # first, as LangGraph orders a state
        return {"messages": result.pop("messages"), **result}
    return result


@dataclass
class Head:
    """A checkpoint of a thread, read back or just made: the state there and what comes next."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    step: int
    next: tuple[str, ...]
    values: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str
    writes: list[Write]  # the step's own, which made it from its parent
    pending: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)  # by task id
    index: dict[str, int] | None = None  # the messages' positions by id, when at hand

    def config(self) -> dict[str, Any]:
        return config_of(self.thread_id, self.checkpoint_ns, self.checkpoint_id)

    def interrupts(self) -> tuple[Interrupt, ...]:
        return tuple(
            item
            for writes in self.pending.values()
            for channel, value in writes
            if channel == INTERRUPT
            for item in value
        )

    def task_id(self, name: str, position: int = 0) -> str:
        """The id of a task run from this checkpoint: the same however often it is resumed."""
        return str(uuid.uuid5(uuid.UUID(self.checkpoint_id), f"{name}:{position}"))


def config_of(thread_id: str, ns: str, checkpoint_id: str) -> dict[str, Any]:
    return {
        "configurable": {
            "thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id,
        }
    }


def read_state(item: CheckpointTuple) -> tuple[int, tuple[str, ...], list[Write]]:
    """A stored checkpoint's step, next nodes and writes.

    Raises:
        CheckpointError: it is of another format, or not one that this module wrote.
    """
    state = item.checkpoint.state
    where = f"checkpoint {item.checkpoint.checkpoint_id} of thread {item.checkpoint.thread_id!r}"
    version = state.get("v")
    if version != FORMAT:
        raise CheckpointError(
            f"{where} is in format {version!r}, and this rxagent reads format {FORMAT}"
            + (": upgrade rxagent" if isinstance(version, int) and version > FORMAT else "")
        )
    try:
        writes = [
            (task_id, channel, _decode_value(channel, value))
            for task_id, channel, value in state["writes"]
        ]
        return int(state["step"]), tuple(state["next"]), writes
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError included
        raise CheckpointError(f"{where} is damaged: {exc}") from exc


def _pending(writes: Iterable[PendingWrite]) -> dict[str, list[tuple[str, Any]]]:
    pending: dict[str, list[tuple[str, Any]]] = {}
    for write in writes:
        pending.setdefault(write.task_id, []).append(
            (write.channel, _decode_value(write.channel, write.value))
        )
    return pending


# The states read or made in this process, by saver and checkpoint id, with their messages'
# index (so that a run going on from one builds no index). A checkpoint never changes once
# written, so an entry never goes stale; the oldest go when there are too many.
class _Kept(NamedTuple):
    messages: tuple[BaseMessage, ...]
    positions: dict[str, int]
    others: dict[str, Any]


_STATES: weakref.WeakKeyDictionary[BaseCheckpointSaver, OrderedDict[tuple[str, str, str], _Kept]]
_STATES = weakref.WeakKeyDictionary()
_STATES_KEPT = 256


def remember(saver: BaseCheckpointSaver, head: Head) -> None:
    messages = head.values.get("messages", [])
    positions = head.index
    if positions is None:
        positions = MessageList(messages).positions
    kept = _Kept(
        tuple(messages), dict(positions),
        {key: value for key, value in head.values.items() if key != "messages"},
    )
    states = _STATES.setdefault(saver, OrderedDict())
    states[(head.thread_id, head.checkpoint_ns, head.checkpoint_id)] = kept
    if len(states) > _STATES_KEPT:
        states.popitem(last=False)


def recall(
    saver: BaseCheckpointSaver, key: tuple[str, str, str]
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """A remembered state (a copy of its own) and its messages' index."""
    states = _STATES.get(saver)
    if states is None or key not in states:
        return None
    states.move_to_end(key)
    kept = states[key]
    return {"messages": list(kept.messages), **kept.others}, dict(kept.positions)


# The newest checkpoint of each thread as a run of this process left it, as a read would give
# it back (its state is in _STATES), with the saver's write mark at that moment: while the mark
# is the same, nothing was written to the thread since, and a run starts there without reading.
class _Left(NamedTuple):
    mark: tuple[int, int]
    head: Head


_LEFT: weakref.WeakKeyDictionary[BaseCheckpointSaver, OrderedDict[tuple[str, str], _Left]]
_LEFT = weakref.WeakKeyDictionary()


def leave(saver: BaseCheckpointSaver, head: Head, mark: tuple[int, int]) -> None:
    """``head`` is the thread's newest stored checkpoint (its ``parent_id`` and ``writes`` those
    of its record) as long as the saver's write mark is ``mark``; :func:`remember` keeps its
    state."""
    stored = replace(
        head, values={}, index=None, metadata=dict(head.metadata),
        writes=[(task_id, channel, _as_read(channel, value))
                for task_id, channel, value in head.writes],
        pending={task_id: [(channel, _as_read(channel, value)) for channel, value in writes]
                 for task_id, writes in head.pending.items()},
    )
    left = _LEFT.setdefault(saver, OrderedDict())
    left[(head.thread_id, head.checkpoint_ns)] = _Left(mark, stored)
    left.move_to_end((head.thread_id, head.checkpoint_ns))
    if len(left) > _STATES_KEPT:  # past that many, its state is likely gone from _STATES
        left.popitem(last=False)


def find_left(
    saver: BaseCheckpointSaver, thread_id: str, ns: str, mark: tuple[int, int] | None
) -> Head | None:
    """The thread's newest checkpoint as :func:`leave` kept it, if the saver's write mark is
    still the same (a copy of its own); else ``None``, and it is read."""
    kept = _LEFT.get(saver)
    left = kept.get((thread_id, ns)) if kept is not None else None
    if left is None or mark is None or left.mark != mark:
        return None
    head = left.head
    recalled = recall(saver, (thread_id, ns, head.checkpoint_id))
    if recalled is None:
        return None
    return replace(
        head, values=recalled[0], index=recalled[1], metadata=dict(head.metadata),
        writes=list(head.writes), pending=dict(head.pending),
    )


def _as_read(channel: str, value: Any) -> Any:
    """A written value as reading it back gives it: messages as they are (their JSON gives them
    back equal), the rest through JSON (a tuple comes back a list)."""
    if channel == "messages":
        return value
    return _decode_value(channel, json.loads(json.dumps(_encode_value(channel, value))))


def head_of(
    item: CheckpointTuple, values: dict[str, Any], index: dict[str, int] | None = None
) -> Head:
    checkpoint = item.checkpoint
    step, next_nodes, writes = read_state(item)
    return Head(
        checkpoint.thread_id, checkpoint.checkpoint_ns, checkpoint.checkpoint_id,
        checkpoint.parent_id, step, next_nodes, values, dict(checkpoint.metadata),
        checkpoint.created_at, writes, _pending(item.pending_writes), index,
    )


async def load_head(
    saver: BaseCheckpointSaver,
    thread_id: str,
    ns: str,
    checkpoint_id: str | None,
    *,
    read: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
) -> Head | None:
    """The thread's checkpoint ``checkpoint_id`` (its latest when ``None``) with its state;
    ``None`` for a thread with no checkpoint.

    ``read`` runs a sync call of the saver off the event loop (by default its async forms do).
    """
    if read is None:
        item = await saver.aget(thread_id, ns, checkpoint_id)
    else:
        item = await read(lambda: saver.get(thread_id, ns, checkpoint_id))
    if item is None:
        if checkpoint_id is not None:
            raise UsageError(f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}")
        return None
    key = (thread_id, ns, item.checkpoint.checkpoint_id)
    recalled = recall(saver, key)
    if recalled is None:
        if read is None:
            listed = [other async for other in saver.alist(thread_id, ns)]
        else:
            listed = await read(lambda: list(saver.list(thread_id, ns)))
        chain = {other.checkpoint.checkpoint_id: other for other in listed}
        chain[item.checkpoint.checkpoint_id] = item
        recalled = fold(saver, chain, item.checkpoint.checkpoint_id)
        head = head_of(item, *recalled)
        remember(saver, head)
        return head
    return head_of(item, *recalled)


def fold(
    saver: BaseCheckpointSaver, chain: Mapping[str, CheckpointTuple], checkpoint_id: str
) -> tuple[dict[str, Any], dict[str, int]]:
    """The state at ``checkpoint_id`` and its messages' index: from the nearest state known (or
    the thread's start), each checkpoint's writes applied in turn."""
    path: list[CheckpointTuple] = []
    recalled: tuple[dict[str, Any], dict[str, int]] | None = None
    at: str | None = checkpoint_id
    while at is not None:
        item = chain.get(at)
        if item is None:
            raise CheckpointError(
                f"checkpoint {at!r}, a parent of {checkpoint_id!r}, is missing from the saver: "
                "the thread's history is broken"
            )
        recalled = recall(saver, (item.checkpoint.thread_id, item.checkpoint.checkpoint_ns, at))
        if recalled is not None:
            break
        path.append(item)
        at = item.checkpoint.parent_id
    state, positions = recalled if recalled is not None else ({}, None)
    messages = MessageList(state.pop("messages", ()), positions)
    for item in reversed(path):
        _, _, writes = read_state(item)
        for _, channel, value in writes:
            if channel == "messages":
                messages.add(value)
            elif not channel.startswith("__"):
                state[channel] = value
    return {"messages": messages.messages, **state}, messages.positions


def now() -> str:
    return datetime.now(UTC).isoformat()


def new_checkpoint(
    previous: Head | None,
    *,
    thread_id: str,
    ns: str,
    step: int,
    next_nodes: Sequence[str],
    writes: list[Write],
    source: str,
    run_id: str,
    values: dict[str, Any] | None = None,
    index: dict[str, int] | None = None,
) -> Head:
    """The checkpoint after ``previous`` that ``writes`` make (not saved yet).

    ``values``, when given, is the state with the writes applied already: a run passes its own
    running state rather than have every step copy the conversation.
    """
    if values is None:
        values = apply_writes(previous.values if previous else {}, writes)
    values.setdefault("messages", [])
    return Head(
        thread_id, ns, new_checkpoint_id(), previous.checkpoint_id if previous else None,
        step, tuple(next_nodes), values,
        {"source": source, "step": step, "parents": {}, "run_id": run_id},
        now(), writes, {}, index,
    )


def as_record(head: Head, writes: Sequence[Write], parent_id: str | None) -> Checkpoint:
    """``head`` as the record a saver stores, made from ``parent_id`` by ``writes``."""
    return Checkpoint(
        head.thread_id, head.checkpoint_ns, head.checkpoint_id, parent_id, head.created_at,
        {
            "v": FORMAT,
            "step": head.step,
            "next": list(head.next),
            "writes": [
                [task_id, channel, _encode_value(channel, value)]
                for task_id, channel, value in writes
            ],
        },
        head.metadata,
    )


def encode_task_writes(writes: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(channel, _encode_value(channel, value)) for channel, value in writes]


def read_update(
    values: Any, *, what: str, state_keys: Sequence[str] = ()
) -> list[tuple[str, Any]]:
    """A state update's ``(channel, value)`` writes: ``{"messages": [...]}`` and the other keys
    of the agent's state schema (``state_keys``).

    Raises:
        InvalidUpdateError: not a dict, or a key the agent's state does not have.
    """
    if not isinstance(values, Mapping):
        raise InvalidUpdateError(f"{what} is a dict such as {{'messages': [...]}}, got {values!r}")
    unknown = sorted(str(key) for key in values if key != "messages" and key not in state_keys)
    if unknown:
        raise InvalidUpdateError(
            f"{what} has key(s) {unknown} that the agent's state does not have; it has "
            f"{['messages', *state_keys]}"
        )
    writes: list[tuple[str, Any]] = []
    if "messages" in values:
        raw = values["messages"]
        writes.append(
            ("messages", with_ids(to_messages(raw if isinstance(raw, list) else [raw])))
        )
    writes.extend((key, values[key]) for key in state_keys if key in values)
    return writes


def apply_update(
    head: Head | None,
    values: Any,
    as_node: str | None,
    *,
    thread_id: str,
    ns: str,
    run_id: str,
    state_keys: Sequence[str] = (),
    route: Route | None = None,
) -> Head:
    """The checkpoint after ``head`` that a state update makes (``update_state``,
    ``Command(update=...)``), as if node ``as_node`` had written it.

    Without ``as_node``, the update counts as the node that wrote the state last: the model,
    when its reply is the newest step. What runs next is what follows that node: ``route``
    says, for an agent with more nodes than the model and its tools (its middleware's).

    Raises:
        InvalidUpdateError: ``values`` is not a state update, or ``as_node`` is not a node.
    """
    if as_node is not None:
        node = as_node
    elif route is not None:
        node = route.before(head.next if head else ("__start__",),
                            head.values.get("messages", []) if head else [])
    else:
        node = _last_node(head)
    nodes = route.nodes if route is not None else _NODES
    if node not in nodes:
        raise InvalidUpdateError(f"as_node is one of {sorted(nodes)}, got {node!r}")
    task_id = head.task_id(node) if head is not None else str(uuid.uuid4())
    writes = [
        (task_id, channel, value)
        for channel, value in read_update(values, what="update", state_keys=state_keys)
    ]
    after = apply_writes(head.values if head else {}, writes)
    return new_checkpoint(
        head, thread_id=thread_id, ns=ns, step=head.step + 1 if head else -1,
        next_nodes=(route.after if route is not None else _next_after)(
            node, after.get("messages", [])),
        writes=writes,
        source="update", run_id=run_id, values=after,
    )


_NODES = frozenset({"__start__", "model", "tools"})


class Route(NamedTuple):
    """An agent's nodes, and the ``next`` of a checkpoint after each (given the messages)."""

    nodes: frozenset[str]
    after: Callable[[str, Sequence[BaseMessage]], list[str]]
    before: Callable[[Sequence[str], Sequence[BaseMessage]], str]


def _last_node(head: Head | None) -> str:
    if head is None or head.next == ("__start__",):
        return "__start__"
    if head.next == ("model",):
        messages = head.values.get("messages", [])
        return "tools" if messages and isinstance(messages[-1], ToolMessage) else "__start__"
    return "model"


def _next_after(node: str, messages: Sequence[BaseMessage]) -> list[str]:
    if node == "model":
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
            return ["tools"]
        return []
    return ["model"]
