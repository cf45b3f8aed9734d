"""Reading a run's parts, for the three things that draw them.

The terminal renderer (:mod:`rxagent._cli`), the notebook's live view (:mod:`rxagent._notebook`)
and the timeline (:mod:`rxagent._timeline`) all read the same stream: parts of four modes, model
calls told apart by their metadata dict (one per call, shared by its chunks), a reply's text and
tool calls forming chunk by chunk, agents named by the metadata of their model calls. That
reading lives here, once: :class:`PartReader` takes the items, keeps each model call's reply as
a :class:`ModelCall`, and calls a hook per thing read (``_on_chunk``, ``_on_tool_result``...),
which each renderer overrides to draw it its own way.

Only messages are imported here, never the agent loop: renderers sit on top of the stack and
read what a run emits, whoever produced it (a run, a recording, a test's hand-made parts).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ._messages import AIMessage, AIMessageChunk, ToolMessage

__all__ = [
    "ModelCall",
    "Part",
    "PartReader",
    "RunCounts",
    "ToolCallDraft",
    "as_text",
    "one_line",
    "plural",
    "read_part",
    "reasoning_parts",
    "shorten",
    "to_json",
]

_PART_TYPES = frozenset({"values", "updates", "messages", "custom"})


class Part(NamedTuple):
    """A part as read: its mode, its namespace (always a tuple), its payload, and the item."""

    mode: str
    ns: tuple[str, ...]
    data: Any
    item: Any


def read_part(item: Any) -> Part | None:
    """``item`` as a :class:`Part`, or ``None`` when it is not one (a string after
    ``rxo.text()``, say)."""
    if (
        isinstance(item, dict)
        and item.get("type") in _PART_TYPES
        and "ns" in item
        and "data" in item
    ):
        return Part(item["type"], tuple(item["ns"]), item["data"], item)
    return None


def reasoning_parts(message: AIMessage) -> list[str]:
    """The text of each reasoning block of ``message``, empty ones included (a block that
    says nothing still says the model is reasoning)."""
    if isinstance(message.content, str):
        return []
    return [
        block.get("reasoning") or ""
        for block in message.content_blocks
        if block.get("type") == "reasoning"
    ]


class ToolCallDraft:
    """A tool call as its fragments arrive: the latest id and name given, the arguments so far."""

    __slots__ = ("args", "id", "name")

    def __init__(self, id: str = "", name: str = "", args: str = "") -> None:
        self.id = id
        self.name = name
        self.args = args


class ModelCall:
    """One model call, its reply accumulated as its chunks arrive.

    Attributes:
        ns: the namespace of the agent that made the call.
        metadata: the call's metadata dict (held, so that its id, which tells calls apart, is
            not reused while we read); ``None`` for a reply seen only in an update.
        node: the graph node that made the call.
        text: the text pieces, in order.
        reasoning: the reasoning pieces, in order (see :func:`reasoning_parts`).
        tool_calls: the calls asked for, by fragment index (or position, for a whole reply).
        done: the last chunk (or the whole reply) has arrived.
    """

    __slots__ = ("done", "metadata", "node", "ns", "reasoning", "text", "tool_calls")

    def __init__(self, ns: tuple[str, ...], metadata: dict[str, Any] | None, node: Any) -> None:
        self.ns = ns
        self.metadata = metadata
        self.node = node
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[Any, ToolCallDraft] = {}
        self.done = False

    @classmethod
    def streamed(cls, ns: tuple[str, ...], metadata: dict[str, Any]) -> ModelCall:
        """A call reported in ``messages``, known by its metadata."""
        return cls(ns, metadata, metadata.get("langgraph_node", "model"))

    @classmethod
    def unstreamed(cls, ns: tuple[str, ...], node: str) -> ModelCall:
        """A call whose reply showed only in ``node``'s update (a model tagged ``nostream``)."""
        return cls(ns, None, node)

    def title(self, sep: str) -> str:
        """``"model · step 1"`` (with ``sep`` between), or ``"model (not streamed)"``."""
        if self.metadata is None:
            return f"{self.node} (not streamed)"
        return f"{self.node} {sep} step {self.metadata.get('langgraph_step', '?')}"

    def add_chunk(self, chunk: AIMessageChunk) -> None:
        """Take in the next chunk of the reply."""
        self.reasoning.extend(reasoning_parts(chunk))
        text = chunk.text
        if text:
            self.text.append(text)
        for fragment in chunk.tool_call_chunks:
            draft = self.tool_calls.get(fragment.get("index"))
            if draft is None:
                draft = self.tool_calls[fragment.get("index")] = ToolCallDraft()
            draft.id = fragment.get("id") or draft.id
            draft.name = fragment.get("name") or draft.name
            draft.args += fragment.get("args") or ""
        if chunk.chunk_position == "last":
            self.done = True

    def add_whole(self, message: AIMessage) -> None:
        """Take in a whole reply (``disable_streaming=True``, or one seen only in an update)."""
        if message.text:
            self.text.append(message.text)
        for position, call in enumerate(message.tool_calls):
            self.tool_calls[position] = ToolCallDraft(
                call.get("id") or "", call["name"], to_json(call["args"])
            )
        self.done = True

    def requested(self) -> list[ToolCallDraft]:
        """The tool calls asked for that have both an id and a name, in the order they began."""
        return [draft for draft in self.tool_calls.values() if draft.id and draft.name]


class RunCounts:
    """What a summary line counts: model calls, tool results, and chunks of text."""

    __slots__ = ("model_calls", "tokens", "tool_results")

    def __init__(self) -> None:
        self.model_calls = 0
        self.tool_results = 0
        self.tokens = 0

    def phrases(self) -> tuple[str, str, str]:
        """``("2 model calls", "1 tool call", "10 text chunks")``."""
        return (plural(self.model_calls, "model call"), plural(self.tool_results, "tool call"),
                plural(self.tokens, "text chunk"))


class PartReader:
    """Reads a run's items one by one and calls a hook for each thing it finds.

    A subclass calls :meth:`_read` with each item and overrides the hooks it cares about;
    they all do nothing here but :meth:`_on_update` and :meth:`_on_reply`. What every
    renderer needs is kept on the way: each model call's reply (:class:`ModelCall`, passed to
    the hooks), the agents' names by namespace (:meth:`_label`), the ids of replies seen in
    ``messages``, and the counts of a summary line.
    """

    def __init__(self) -> None:
        self._agents: dict[tuple[str, ...], str] = {}
        self._model_calls: dict[int, ModelCall] = {}  # by id(metadata)
        self._streamed_ids: set[str] = set()  # replies seen in ``messages``
        self._counts = RunCounts()

    # -- reading -------------------------------------------------------------------------------

    def _read(self, item: Any) -> None:
        """Read one item of the stream."""
        part = read_part(item)
        if part is None:
            if isinstance(item, str):
                self._counts.tokens += 1
            self._on_item(item)
        elif part.mode == "messages":
            message, metadata = part.data
            self._read_message(part, message, metadata)
        elif part.mode == "custom":
            self._on_custom(part)
        elif part.mode == "updates":
            for node, value in part.data.items():
                self._on_update(part, node, value)
        else:
            self._on_values(part)

    def _read_message(self, part: Part, message: Any, metadata: dict[str, Any]) -> None:
        if not isinstance(message, AIMessage):
            self._on_other_message(part, message, metadata)
            return
        self._note_agent(part.ns, metadata)
        call = self._model_calls.get(id(metadata))
        if call is None:
            call = self._model_calls[id(metadata)] = ModelCall.streamed(part.ns, metadata)
            self._start_call(part, call)
        if message.id:
            self._streamed_ids.add(message.id)
        if isinstance(message, AIMessageChunk):
            call.add_chunk(message)
            if message.text:
                self._counts.tokens += 1
            self._on_chunk(part, call, message)
        else:
            self._add_whole(part, call, message)

    def _start_call(self, part: Part, call: ModelCall) -> None:
        self._counts.model_calls += 1
        self._on_call_start(part, call)

    def _add_whole(self, part: Part, call: ModelCall, message: AIMessage) -> None:
        call.add_whole(message)
        if message.text:
            self._counts.tokens += 1
        self._on_whole(part, call, message)

    def _note_agent(self, ns: tuple[str, ...], metadata: dict[str, Any]) -> None:
        """Name the agent of ``ns`` after the first part that tells it."""
        agent = metadata.get("lc_agent_name")
        if agent and ns not in self._agents:
            self._agents[ns] = agent

    def _label(self, ns: tuple[str, ...]) -> str:
        """Who runs in ``ns``: the agent's name, else the namespace's last element; ``""`` for
        the top-level agent."""
        if not ns:
            return ""
        return self._agents.get(ns) or ns[-1]

    def _heading(self, ns: tuple[str, ...], title: str, sub: str = "▸") -> str:
        """``title``, after who runs in ``ns`` (``"researcher ▸ tools"``)."""
        who = self._label(ns)
        return f"{who} {sub} {title}" if who else title

    # -- hooks ---------------------------------------------------------------------------------

    def _on_item(self, item: Any) -> None:
        """An item that is not a part."""

    def _on_values(self, part: Part) -> None:
        """A ``values`` part: an agent's state before a step."""

    def _on_custom(self, part: Part) -> None:
        """A ``custom`` part: what a tool wrote."""

    def _on_call_start(self, part: Part, call: ModelCall) -> None:
        """A model call begins (its first chunk, or its whole reply, is next)."""

    def _on_chunk(self, part: Part, call: ModelCall, chunk: AIMessageChunk) -> None:
        """A chunk of ``call``'s reply, already added to ``call``."""

    def _on_whole(self, part: Part, call: ModelCall, message: AIMessage) -> None:
        """``call``'s whole reply, already added to ``call``."""

    def _on_other_message(self, part: Part, message: Any, metadata: dict[str, Any]) -> None:
        """A ``messages`` part that is not a reply (a ToolMessage)."""

    def _on_update(self, part: Part, node: str, value: Any) -> None:
        """``node``'s entry in an ``updates`` part: its tool results and replies, in order."""
        messages = value.get("messages", []) if isinstance(value, dict) else []
        for message in messages:
            if isinstance(message, ToolMessage):
                self._counts.tool_results += 1
                self._on_tool_result(part, message)
            elif isinstance(message, AIMessage):
                self._on_reply(part, node, message)

    def _on_tool_result(self, part: Part, message: ToolMessage) -> None:
        """A tool's result, from its tools step's update."""

    def _on_reply(self, part: Part, node: str, message: AIMessage) -> None:
        """A reply in ``node``'s update. One that never came by in ``messages`` (its model
        tagged ``nostream``) is read as a model call of its own, whole."""
        if message.id in self._streamed_ids:
            return
        call = ModelCall.unstreamed(part.ns, node)
        self._start_call(part, call)
        self._add_whole(part, call, message)


def to_json(value: Any) -> str:
    """``value`` as JSON (non-ASCII kept), or its ``repr`` when it is not JSON."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def as_text(data: Any) -> str:
    """A string as it is; anything else as its ``repr``."""
    return data if isinstance(data, str) else repr(data)


def shorten(text: str, limit: int, more: str = "…") -> str:
    """``text`` cut to ``limit`` characters, ``more`` marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + more


def one_line(text: str, limit: int, more: str = "…") -> str:
    """``text`` with its white space folded into single spaces, cut to ``limit``."""
    return shorten(" ".join(text.split()), limit, more)


def plural(count: int, noun: str) -> str:
    """``"1 tool call"``, ``"2 tool calls"``."""
    return f"{count} {noun}{'s' * (count != 1)}"
