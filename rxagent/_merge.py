"""How the chunks of a streamed reply add up: the merge rules, on plain data.

``chunk + chunk`` and :class:`~rxagent.messages.ChunkAccumulator` both merge through
:class:`ChunkMerger`, so any grouping of the same chunk sequence gives the same message. The
rules themselves are listed on :class:`~rxagent.messages.AIMessageChunk`.

A merger adds chunks up as they arrive and keeps none of them: text pieces are kept in a list
and joined once, tool-call fragments merged per call, usage summed. Assembling the reply
therefore costs nothing at the end, and memory stays flat however long the reply is.

This module knows nothing of the message classes (it reads a chunk's fields from its
``__dict__``), so that the types in ``_messages.py`` can build ``+`` on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

__all__ = [
    "ChunkMerger",
    "add_usage",
    "clone",
    "fold_fragments",
    "merge_into",
    "ordered_usage",
]

_C = TypeVar("_C")

# Blocks of these types merge with their neighbour of the same type and index; the field
# named here is the text that concatenates.
_MERGE_FIELDS = {"text": "text", "reasoning": "reasoning", "thinking": "thinking"}

# Text pieces are folded into one string this many at a time (see ChunkMerger.add).
_PIECES_PER_RUN = 64

_USAGE_COUNTS = ("input_tokens", "output_tokens", "total_tokens")
_USAGE_DETAILS = ("input_token_details", "output_token_details")


def clone(value: Any) -> Any:
    """A copy of the dicts and lists in JSON-like data; other values are shared."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    return value


def _merge_value(target: dict[str, Any], key: str, value: Any) -> None:
    if key not in target:
        target[key] = clone(value)
    elif isinstance(value, dict) and isinstance(target[key], dict):
        merge_into(target[key], value)
    elif value is not None:
        target[key] = clone(value)


def merge_into(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merge ``source`` into ``target`` recursively, a later non-None value winning.

    Associative except when one key flips between a dict and a scalar and back, which no
    provider does.
    """
    for key, value in source.items():
        _merge_value(target, key, value)


def add_usage(total: dict[str, Any] | None, usage: Mapping[str, Any]) -> dict[str, Any]:
    """``total`` (changed in place, or a copy of ``usage`` when None) plus ``usage``."""
    if total is None:
        return clone(usage)  # type: ignore[no-any-return]
    for key in _USAGE_COUNTS:
        total[key] = total.get(key, 0) + usage.get(key, 0)
    for key in _USAGE_DETAILS:
        details = usage.get(key)
        if details is not None:
            into = total.setdefault(key, {})
            for name, count in details.items():
                into[name] = into.get(name, 0) + count
    return total


def ordered_usage(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``usage`` with the counts first, in their usual order, whatever order the
    sums were built in."""
    if usage is None:
        return None
    return {key: clone(usage[key]) for key in (*_USAGE_COUNTS, *_USAGE_DETAILS) if key in usage}


class _Blocks:
    """Block-list content being merged; the last mergeable block's text kept as pieces."""

    __slots__ = ("done", "field", "key", "pieces", "tail")

    def __init__(self) -> None:
        self.done: list[Any] = []
        self.tail: dict[str, Any] | None = None
        self.field = ""
        self.key: tuple[Any, Any] = (None, None)
        self.pieces: list[str] = []

    def add(self, item: Any) -> None:
        if isinstance(item, str):
            if not item:
                return
            item = {"type": "text", "text": item}
        elif not isinstance(item, dict):  # not valid content; kept rather than lost
            self._close()
            self.done.append(item)
            return
        kind = item.get("type")
        field = _MERGE_FIELDS.get(kind) if isinstance(kind, str) else None
        if field is None or not isinstance(item.get(field), str):
            self._close()
            self.done.append(clone(item))
            return
        key = (kind, item.get("index"))
        tail = self.tail
        if tail is not None and key == self.key:
            for name, value in item.items():
                if name == field:
                    self.pieces.append(value)
                elif name != "type":
                    _merge_value(tail, name, value)
            return
        self._close()
        self.tail = clone(item)
        self.field = field
        self.key = key
        self.pieces = [item[field]]

    def _close(self) -> None:
        if self.tail is not None:
            self.tail[self.field] = "".join(self.pieces)
            self.done.append(self.tail)
            self.tail = None
            self.pieces = []

    def result(self) -> list[str | dict[str, Any]]:
        blocks: list[str | dict[str, Any]] = clone(self.done)
        if self.tail is not None:
            joined = "".join(self.pieces)
            self.pieces = [joined]  # join each piece once, however many snapshots
            tail = clone(self.tail)
            tail[self.field] = joined
            blocks.append(tail)
        return blocks


class _Calls:
    """Tool-call fragments merged per call: ``[name, args pieces or None, id, index]``."""

    __slots__ = ("by_id", "by_index", "calls")

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.by_index: dict[int, list[Any]] = {}  # the latest call of each index
        self.by_id: dict[str, list[Any]] = {}  # the latest call of each id

    def _call_of(self, index: int | None, call_id: str | None) -> list[Any] | None:
        # The call a fragment with this index and id continues, if any.
        if index is None:
            return None if call_id is None else self.by_id.get(call_id)
        call = self.by_index.get(index)
        # Same index, another id: providers reuse index 0 for the next call.
        if call is not None and call_id is not None and call[2] != call_id:
            return None
        return call

    def add(self, fragment: Mapping[str, Any]) -> None:
        index = fragment.get("index")
        call_id = fragment.get("id")
        args = fragment.get("args")
        call = self._call_of(index, call_id)
        if call is None:
            # A call's id and index are fixed by its first fragment: that is what keeps
            # merging associative (a call never changes which fragments it accepts).
            call = [fragment.get("name"), None if args is None else [args], call_id, index]
            self.calls.append(call)
            if index is not None:
                self.by_index[index] = call
            if call_id is not None:
                self.by_id[call_id] = call
            return
        if call[0] is None:
            call[0] = fragment.get("name")
        if args is not None:
            if call[1] is None:
                call[1] = [args]
            else:
                call[1].append(args)

    def add_all(self, fragments: list[Mapping[str, Any]]) -> None:
        """:meth:`add` each fragment, each a whole ``ToolCallChunk`` (all five keys). The
        usual one, a further piece of the arguments of the latest call of its index, with no
        name or id of its own, is appended here without a call: what :meth:`add` does with it
        (``tests/chat_models/test_fast_path.py`` compares the two on every kind of
        fragment)."""
        by_index = self.by_index
        index = call = None  # a read's pieces mostly continue one call: look it up once
        for fragment in fragments:
            if fragment["index"] != index or call is None:
                index = fragment["index"]
                call = by_index.get(index) if index is not None else None
            args = fragment["args"]
            if (
                call is not None
                and call[1] is not None
                and args is not None
                and fragment["id"] is None
                and fragment["name"] is None
            ):
                call[1].append(args)
            else:
                self.add(fragment)
                call = None  # (it may have begun another call of that index)

    def pieces_of(self, index: int) -> list[str] | None:
        """The argument pieces of the latest call of ``index``, or ``None`` when there is no
        such call or it has no arguments yet. Appending a string to them is what :meth:`add`
        does with a fragment of that index that has a string ``args`` and no name or id."""
        call = self.by_index.get(index)
        return None if call is None else call[1]

    def result(self) -> list[dict[str, Any]]:
        # The merged fragments, one per call, as ToolCallChunk dicts.
        chunks: list[dict[str, Any]] = []
        for call in self.calls:
            pieces = call[1]
            args = None
            if pieces is not None:
                args = "".join(pieces)
                # Joined in place: a list that pieces_of gave out stays the call's own.
                pieces[:] = (args,)
            chunks.append(
                {
                    "name": call[0],
                    "args": args,
                    "id": call[2],
                    "index": call[3],
                    "type": "tool_call_chunk",
                }
            )
        return chunks


def fold_fragments(fragments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call fragments merged per call (new dicts), as adding them up would."""
    calls = _Calls()
    for fragment in fragments:
        calls.add(fragment)
    return calls.result()


class ChunkMerger(Generic[_C]):
    """The chunks of one reply merged as they arrive, without keeping them alive.

    Generic only so that :meth:`add` is typed with the chunk class, which this module does
    not import (``ChunkAccumulator`` is a ``ChunkMerger[AIMessageChunk]``).
    """

    __slots__ = (
        "_additional_kwargs",
        "_blocks",
        "_calls",
        "_count",
        "_id",
        "_last",
        "_name",
        "_pieces",
        "_response_metadata",
        "_runs",
        "_usage",
    )

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget everything added, to start on another reply."""
        self._count = 0
        self._pieces: list[str] = []  # string content, while no chunk had list content
        self._runs: list[str] = []  # earlier pieces, joined _PIECES_PER_RUN at a time
        self._blocks: _Blocks | None = None  # list content, once some chunk had it
        self._calls = _Calls()
        self._id: str | None = None
        self._name: str | None = None
        self._response_metadata: dict[str, Any] = {}
        self._additional_kwargs: dict[str, Any] = {}
        self._usage: dict[str, Any] | None = None
        self._last = False

    @property
    def empty(self) -> bool:
        """Whether nothing has been added yet."""
        return self._count == 0

    @property
    def last(self) -> bool:
        """Whether a chunk added was the last of its reply (``chunk_position="last"``)."""
        return self._last

    def add(self, chunk: _C) -> None:
        """Merge ``chunk`` into what was added before; the chunk is not kept."""
        fields = chunk.__dict__
        self._count += 1
        content = fields["content"]
        if content.__class__ is str and self._blocks is None:  # the per-token case
            if content:
                pieces = self._pieces
                pieces.append(content)
                if len(pieces) >= _PIECES_PER_RUN:
                    # A tiny str costs ~50 bytes beyond its text: fold pieces as we go, so a
                    # long answer takes the memory of its text, not of its token count.
                    self._runs.append("".join(pieces))
                    self._pieces = []
        else:
            self._add_content(content)
        if self._id is None:
            self._id = fields["id"]
        if self._name is None:
            self._name = fields["name"]
        # Everything else is empty on a token of text: one test for all of it.
        if (
            fields["tool_call_chunks"]
            or fields["response_metadata"]
            or fields["additional_kwargs"]
            or fields["usage_metadata"] is not None
            or fields["chunk_position"] is not None
        ):
            self._add_rest(fields)

    def add_pieces(
        self, texts: list[str], fragments: list[Mapping[str, Any]], id: str | None
    ) -> None:
        """:meth:`add` over chunks that each carry one piece and nothing else, all with ``id``:
        a token of text (``texts``) or one tool-call fragment (``fragments``, each a whole
        ``ToolCallChunk``), each in order.

        Text and tool-call fragments merge into fields of their own, so how the two kinds
        interleaved does not matter. A wire parser's per-token fast path hands its pieces over
        here once per read instead of a chunk at a time (``chat_models/_reply.py``).
        """
        count = len(texts) + len(fragments)
        if not count:
            return
        self._count += count
        if self._id is None:
            self._id = id
        if texts:
            if self._blocks is None:
                pieces = self._pieces
                pieces.extend(texts)
                if len(pieces) >= _PIECES_PER_RUN:
                    self._runs.append("".join(pieces))
                    self._pieces = []
            else:
                for text in texts:
                    self._blocks.add(text)
        if fragments:
            self._calls.add_all(fragments)

    def arguments_of(self, index: int) -> list[str] | None:
        """Where a further piece of the arguments of the latest tool call of ``index`` goes.

        Appending a string ``piece`` to the list returned is :meth:`add` of a chunk that
        carries nothing but the fragment ``{"name": None, "args": piece, "id": None,
        "index": index}`` and this reply's id, and need not be counted: such a call exists
        only once a chunk was added, so the merger is not :attr:`empty`. ``None`` when no
        call of ``index`` has arguments yet, or no chunk has given the reply an id (then the
        chunk must be added). The list is where such pieces go until the next :meth:`add`,
        :meth:`add_pieces` or :meth:`clear`, which may begin another call of that index. A
        wire parser's per-token fast path appends to it (``chat_models/_reply.py``).
        """
        return None if self._id is None else self._calls.pieces_of(index)

    def _add_content(self, content: str | list[Any]) -> None:
        blocks = self._blocks
        if isinstance(content, str):  # a str subclass, or text after list content
            if content:
                if blocks is None:
                    self._pieces.append(content)
                    if len(self._pieces) >= _PIECES_PER_RUN:
                        self._runs.append("".join(self._pieces))
                        self._pieces = []
                else:
                    blocks.add(content)
            return
        if blocks is None:
            # From here on the content is a block list; the text so far is its first block.
            blocks = self._blocks = _Blocks()
            blocks.add("".join([*self._runs, *self._pieces]))
            self._pieces = []
            self._runs = []
        for item in content:
            blocks.add(item)

    def _add_rest(self, fields: dict[str, Any]) -> None:
        fragments = fields["tool_call_chunks"]
        if fragments:
            add_fragment = self._calls.add
            for fragment in fragments:
                add_fragment(fragment)
        if fields["response_metadata"]:
            merge_into(self._response_metadata, fields["response_metadata"])
        if fields["additional_kwargs"]:
            merge_into(self._additional_kwargs, fields["additional_kwargs"])
        usage = fields["usage_metadata"]
        if usage is not None:
            self._usage = add_usage(self._usage, usage)
        if fields["chunk_position"] == "last":
            self._last = True

    def _content(self) -> str | list[str | dict[str, Any]]:
        if self._blocks is not None:
            return self._blocks.result()
        joined = "".join([*self._runs, *self._pieces])
        self._runs = [joined] if joined else []
        self._pieces = []
        return joined

    def merged(self) -> dict[str, Any]:
        """The merged fields so far, sharing nothing with the merger or the chunks:
        ``content``, ``additional_kwargs``, ``response_metadata``, ``name``, ``id``,
        ``usage_metadata`` and ``tool_call_chunks`` (merged per call).
        """
        return {
            "content": self._content(),
            "additional_kwargs": clone(self._additional_kwargs),
            "response_metadata": clone(self._response_metadata),
            "name": self._name,
            "id": self._id,
            "usage_metadata": ordered_usage(self._usage),
            "tool_call_chunks": self._calls.result(),
        }
