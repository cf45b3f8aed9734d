"""The per-token builders: :func:`make_chunk`, :func:`text_chunk` and :func:`fragment_chunk`,
and :func:`piece_fragment` for the fragment a piece of a tool call's arguments makes.

They build an :class:`~rxagent.messages.AIMessageChunk` without pydantic validation, because
every chunk a provider or a test model streams goes through one of them (why that matters,
and what checks them against validation: ``rxagent/_construct.py``). All are generated from
the model's fields, so none restates them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ._construct import compile_builder
from ._messages import AIMessageChunk, Content, ToolCallChunk, UsageMetadata, tool_calls_of

__all__ = ["fragment_chunk", "make_chunk", "piece_fragment", "text_chunk"]

text_chunk: Callable[[Content, str | None], AIMessageChunk] = compile_builder(
    AIMessageChunk,
    ("content", "id"),
    name="text_chunk",
    doc=":func:`make_chunk` for the commonest chunk of all, a token of text: nothing to decide.",
)

fragment_chunk: Callable[[list[ToolCallChunk], str | None], AIMessageChunk] = compile_builder(
    AIMessageChunk,
    ("tool_call_chunks", "id"),
    name="fragment_chunk",
    doc=":func:`make_chunk` for the commonest chunk of a tool call: fragments of it, no text.",
)

_PIECE: ToolCallChunk = {
    "name": None, "args": None, "id": None, "index": None, "type": "tool_call_chunk"
}

piece_fragment: Callable[[], ToolCallChunk] = _PIECE.copy
"""A new ``ToolCallChunk`` with no name, id, arguments or index, for a wire parser to set the
``"args"`` and ``"index"`` of a further piece of a call's arguments: a copy and two stores
cost about 80 ns where the five-key literal costs 110 (a piece's chunk costs about 700)."""

# Every field make_chunk can be given, and the tool calls it derives as validation would
# (which, being derived, never count as set).
_any_chunk = compile_builder(
    AIMessageChunk,
    (
        "content",
        "id",
        "name",
        "response_metadata",
        "usage_metadata",
        "tool_call_chunks",
        "chunk_position",
        "tool_calls",
        "invalid_tool_calls",
    ),
    name="any_chunk",
    doc="A chunk from every field make_chunk takes, and the tool calls derived from them.",
    uncounted=("tool_calls", "invalid_tool_calls"),
)


def make_chunk(
    content: Content = "",
    *,
    id: str | None = None,
    tool_call_chunks: list[ToolCallChunk] | None = None,
    chunk_position: Literal["last"] | None = None,
    usage_metadata: UsageMetadata | None = None,
    response_metadata: dict[str, Any] | None = None,
    name: str | None = None,
) -> AIMessageChunk:
    """Build an :class:`AIMessageChunk` without pydantic validation, for the per-token path.

    The result is indistinguishable from ``AIMessageChunk(...)`` given the same arguments,
    leaving out those that are ``None`` and an empty ``content`` (equality, repr,
    ``model_dump``, ``model_fields_set``, ``+``). Nothing is checked or copied: the caller
    vouches for the values (``tool_call_chunks`` items complete, with ``"type"``) and hands
    them over.
    """
    if (
        tool_call_chunks is None
        and chunk_position is None
        and usage_metadata is None
        and response_metadata is None
        and name is None
    ):
        return text_chunk(content, id)
    tool_calls = invalid = None
    if chunk_position == "last" and tool_call_chunks:
        tool_calls, invalid = tool_calls_of(tool_call_chunks)
    return _any_chunk(
        content,
        id,
        name,
        response_metadata,
        usage_metadata,
        tool_call_chunks,
        chunk_position,
        tool_calls,
        invalid,
    )
