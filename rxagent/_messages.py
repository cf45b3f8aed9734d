"""Message types: what goes into a model and what comes out of it.

The surface is LangChain's (``HumanMessage``, ``AIMessage``, ``AIMessageChunk``, ``ToolMessage``,
``content_blocks``, ``pretty_print``...) so that code and printed output from its docs carry over.

The messages modules, from the bottom up; each imports only modules before it in this list:

- ``_merge.py``: how chunks add up (``+`` and :class:`ChunkAccumulator` both merge through it);
- ``_construct.py``: building models without validation, from their fields;
- ``_messages.py``, this module: the types, ``+`` and :class:`ChunkAccumulator`;
- ``_exceptions.py``, which imports this module to type ``ModelCallError.partial``: so the
  modules before it take the one error they raise, :class:`InvalidMessageError`, from
  ``_exception_roots.py`` below them, where the tree's roots live;
- ``_chunks.py``: ``make_chunk`` and ``text_chunk``, the per-token builders;
- ``_convert.py``: ``to_message``/``to_messages``, reading dicts, tuples and strings.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, NotRequired, Self, TypeAlias, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from ._construct import build, fields_of
from ._exception_roots import InvalidMessageError
from ._merge import ChunkMerger, clone, fold_fragments, ordered_usage

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "AnyMessage",
    "BaseMessage",
    "ChunkAccumulator",
    "Content",
    "HumanMessage",
    "InvalidToolCall",
    "MessageLike",
    "SystemMessage",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "UsageMetadata",
    "parse_calls",
    "tool_calls_of",
]

Content: TypeAlias = str | list[str | dict[str, Any]]
"""A message's content: a string, or a list of strings and content-block dicts."""


# -- tool calls and usage ------------------------------------------------------------------


class ToolCall(TypedDict):
    """A request from the model to call a tool: ``{"name", "args", "id", "type": "tool_call"}``.

    ``type`` may be left out when building one; messages fill it in.
    """

    name: str
    args: dict[str, Any]
    id: str | None
    type: NotRequired[Literal["tool_call"]]


class ToolCallChunk(TypedDict):
    """A fragment of a tool call as it streams: ``args`` is a piece of the JSON text.

    Fragments of one call share an ``index`` (or, without one, an ``id``); the first carries
    ``name`` and ``id``, the rest usually only ``args``.
    """

    name: str | None
    args: str | None
    id: str | None
    index: int | None
    type: NotRequired[Literal["tool_call_chunk"]]


class InvalidToolCall(TypedDict):
    """A tool call whose arguments could not be read (``error`` says why)."""

    name: str | None
    args: str | None
    id: str | None
    error: str | None
    type: NotRequired[Literal["invalid_tool_call"]]


class UsageMetadata(TypedDict):
    """Token counts of a model call; the detail dicts are optional (``{"cache_read": 10}``)."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: NotRequired[dict[str, int]]
    output_token_details: NotRequired[dict[str, int]]


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


# -- messages --------------------------------------------------------------------------------


class BaseMessage(BaseModel):
    """What every message has: content, an optional id and name, and provider metadata.

    ``content`` may also be given positionally, ``HumanMessage("Hi")``, as in LangChain (at run
    time; type checkers only know pydantic's keyword constructor).

    Attributes:
        content: a string, or a list of strings and content-block dicts.
        additional_kwargs: provider-specific extras sent with the message.
        response_metadata: what the provider said about the response (model name, finish
            reason...).
        type: which kind of message this is (``"human"``, ``"ai"``...).
        name: an optional name for the author.
        id: an optional unique id.
    """

    model_config = ConfigDict(extra="forbid")

    content: Content = ""
    additional_kwargs: dict[str, Any] = Field(default_factory=dict)
    response_metadata: dict[str, Any] = Field(default_factory=dict)
    type: str
    name: str | None = None
    id: str | None = None

    # The banner of pretty_repr(), LangChain's wording.
    _title: ClassVar[str] = "Message"

    def __init__(self, content: Content | _Unset = _UNSET, /, **data: Any) -> None:
        if content is not _UNSET:
            if "content" in data:
                raise TypeError("content was given both positionally and by keyword")
            data["content"] = content
        if "content_blocks" in data:
            # LangChain's typed way to give the content: standard blocks become the content.
            if "content" in data:
                raise TypeError("content and content_blocks were both given")
            data["content"] = data.pop("content_blocks")
        try:  # free until it raises (Python 3.11's zero-cost try)
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidMessageError(f"not a valid {type(self).__name__}: {exc}") from exc

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        """Pydantic's ``model_validate``, raising :class:`InvalidMessageError` instead."""
        try:
            return super().model_validate(obj, **options)
        except ValidationError as exc:
            raise InvalidMessageError(f"not a valid {cls.__name__}: {exc}") from exc

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **options: Any) -> Self:
        """Pydantic's ``model_validate_json``, raising :class:`InvalidMessageError` instead."""
        try:
            return super().model_validate_json(json_data, **options)
        except ValidationError as exc:
            raise InvalidMessageError(f"not a valid {cls.__name__}: {exc}") from exc

    @property
    def text(self) -> str:
        """All the text of the message joined: the string content, or its text blocks."""
        content = self.content
        if isinstance(content, str):
            return content
        return "".join(
            item if isinstance(item, str) else item["text"]
            for item in content
            if isinstance(item, str)
            or (item.get("type") == "text" and isinstance(item.get("text"), str))
        )

    @property
    def content_blocks(self) -> list[dict[str, Any]]:
        """The content as standard blocks (fresh dicts, safe to change).

        - a string gives one ``{"type": "text", "text": ...}`` block, none when empty;
        - list items: strings become text blocks, ``reasoning`` blocks are kept and Anthropic's
          ``thinking`` blocks become ``{"type": "reasoning", "reasoning": ...}`` (the signature
          under ``extras``), OpenAI's reasoning items one reasoning block per summary part;
          any other block passes through as it is.
        """
        return _content_to_blocks(self.content)

    def pretty_repr(self) -> str:
        """A readable rendering: a banner with the message type, the name, then the content."""
        title = _banner(self._title)
        if self.name is not None:
            title += f"\nName: {self.name}"
        content = self.content if isinstance(self.content, str) else self.text
        return f"{title}\n\n{content}"

    def pretty_print(self) -> None:
        """Print :meth:`pretty_repr`."""
        print(self.pretty_repr())

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # Only what differs from the defaults, as LangChain prints it; content always shows.
        defaults = fields_of(type(self)).defaults
        for key, value in self.__dict__.items():
            if key == "content" or (
                key != "type" and (key not in defaults or value != defaults[key])
            ):
                yield key, value


class HumanMessage(BaseMessage):
    """A message from the user."""

    type: Literal["human"] = "human"
    _title: ClassVar[str] = "Human Message"


class SystemMessage(BaseMessage):
    """Instructions for the model, usually first in the conversation."""

    type: Literal["system"] = "system"
    _title: ClassVar[str] = "System Message"


class AIMessage(BaseMessage):
    """A reply from the model: text, and the tool calls it wants made.

    ``tool_calls`` items may leave out ``"type"`` (and ``"id"``): they are filled in.

    Attributes:
        tool_calls: the tool calls the model asked for.
        invalid_tool_calls: tool calls whose arguments could not be parsed.
        usage_metadata: the token counts of the call, when the provider sent them.
    """

    type: Literal["ai"] = "ai"
    tool_calls: list[ToolCall] = Field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = Field(default_factory=list)
    usage_metadata: UsageMetadata | None = None
    _title: ClassVar[str] = "Ai Message"

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _fill_tool_call_type(cls, value: Any) -> Any:
        return _fill_defaults(value, {"id": None, "type": "tool_call"})

    @field_validator("invalid_tool_calls", mode="before")
    @classmethod
    def _fill_invalid_tool_call_type(cls, value: Any) -> Any:
        return _fill_defaults(
            value,
            {"name": None, "args": None, "id": None, "error": None, "type": "invalid_tool_call"},
        )

    @property
    def content_blocks(self) -> list[dict[str, Any]]:
        """The content as standard blocks, then one block per tool call.

        Tool calls give ``{"type": "tool_call", "name", "args", "id"}``, invalid ones
        ``{"type": "invalid_tool_call", "id", "name", "args", "error"}``. A tool call already in
        the content as a ``tool_call`` block (same id) is not repeated.
        """
        blocks = _content_to_blocks(self.content)
        return _with_call_blocks(blocks, self.tool_calls, self.invalid_tool_calls)

    def pretty_repr(self) -> str:
        """The banner and content, then each tool call with its id and arguments."""
        lines: list[str] = []
        if self.tool_calls:
            lines.append("Tool Calls:")
            for call in self.tool_calls:
                lines.extend(_format_call(call["name"], call.get("id"), None, call["args"]))
        if self.invalid_tool_calls:
            lines.append("Invalid Tool Calls:")
            for bad in self.invalid_tool_calls:
                lines.extend(_format_call(bad["name"], bad["id"], bad["error"], bad["args"]))
        return (super().pretty_repr().strip() + "\n" + "\n".join(lines)).strip()


class AIMessageChunk(AIMessage):
    """A piece of a streamed reply; chunks add up with ``+`` into the whole reply.

    ``tool_calls`` and ``invalid_tool_calls`` are always derived from ``tool_call_chunks``:
    they stay empty until the chunk is the last one (``chunk_position == "last"``, which a
    merged chunk is when any of its parts was), then hold the parsed calls. Tool calls given
    to the constructor without ``tool_call_chunks`` are turned into chunks (JSON ``args``).

    ``a + b`` never changes ``a`` or ``b``, and is associative: any grouping of the same
    sequence of chunks gives the same chunk, provided the fragments are well formed (an id
    names one call, and calls on one index follow each other rather than interleave, which is
    how every provider streams). Merging rules:

    - content: strings concatenate; with a list on either side, both become block lists
      (a non-empty string as one text block, strings in lists as text blocks), which are
      concatenated and adjacent ``text``/``reasoning``/``thinking`` blocks of the same
      ``index`` merged.
    - tool-call chunks: fragments with an ``index`` join the latest call of that index unless
      they carry a different ``id`` (providers reuse index 0 for a second call); without an
      index, they join the call with the same ``id``; with neither, they stand alone. ``args``
      concatenate; the first ``name`` and ``id`` stay.
    - ``usage_metadata`` sums; ``response_metadata`` and ``additional_kwargs`` merge
      recursively, a later non-None value winning; the first ``id`` and ``name`` win.

    Attributes:
        tool_call_chunks: the tool-call fragments this chunk carries (merged per call in a
            merged chunk).
        chunk_position: ``"last"`` on the final chunk of a reply.
    """

    # LangChain's value for chunks; AIMessage's literal is "ai", hence the override.
    type: Literal["AIMessageChunk"] = "AIMessageChunk"  # type: ignore[assignment]
    tool_call_chunks: list[ToolCallChunk] = Field(default_factory=list)
    chunk_position: Literal["last"] | None = None
    _title: ClassVar[str] = "Ai Message Chunk"

    @field_validator("tool_call_chunks", mode="before")
    @classmethod
    def _fill_chunk_type(cls, value: Any) -> Any:
        return _fill_defaults(
            value,
            {"name": None, "args": None, "id": None, "index": None, "type": "tool_call_chunk"},
        )

    @model_validator(mode="after")
    def _derive_tool_calls(self) -> AIMessageChunk:
        fields = self.__dict__
        if not fields["tool_call_chunks"] and (
            fields["tool_calls"] or fields["invalid_tool_calls"]
        ):
            fields["tool_call_chunks"] = _calls_as_chunks(
                fields["tool_calls"], fields["invalid_tool_calls"]
            )
        if fields["chunk_position"] == "last":
            calls, invalid = tool_calls_of(fields["tool_call_chunks"])
        else:
            calls, invalid = [], []
        fields["tool_calls"] = calls
        fields["invalid_tool_calls"] = invalid
        return self

    @property
    def content_blocks(self) -> list[dict[str, Any]]:
        """The content as standard blocks, then the tool calls.

        A chunk that is not the last shows its fragments as
        ``{"type": "tool_call_chunk", "id", "name", "args", "index"}`` (``index`` is always
        there, ``None`` when the provider sent none); the last chunk shows the calls parsed
        from its fragments, as ``tool_call``/``invalid_tool_call`` blocks. The seed's final,
        empty chunk of a reply therefore shows ``[]``.
        """
        blocks = _content_to_blocks(self.content)
        if self.chunk_position == "last":
            # Parsed afresh, so that a model_copy(update=...) of the fragments cannot go stale.
            calls, invalid = tool_calls_of(self.tool_call_chunks)
            return _with_call_blocks(blocks, calls, invalid)
        for fragment in self.tool_call_chunks:
            blocks.append(
                {
                    "type": "tool_call_chunk",
                    "id": fragment.get("id"),
                    "name": fragment.get("name"),
                    "args": fragment.get("args"),
                    "index": fragment.get("index"),
                }
            )
        return blocks

    def __add__(self, other: object) -> AIMessageChunk:
        if not isinstance(other, AIMessageChunk):
            return NotImplemented
        accumulator = ChunkAccumulator()
        accumulator.add(self)
        accumulator.add(other)
        return accumulator.snapshot()

    def to_message(self) -> AIMessage:
        """The finished :class:`AIMessage` this chunk stands for.

        The tool calls are parsed from ``tool_call_chunks`` whatever ``chunk_position`` says:
        asking for the message means the reply is over. Nothing is shared with the chunk.
        """
        calls, invalid = tool_calls_of(self.tool_call_chunks)
        return build(
            AIMessage,
            {
                "content": clone(self.content),
                "additional_kwargs": clone(self.additional_kwargs),
                "response_metadata": clone(self.response_metadata),
                "name": self.name,
                "id": self.id,
                "tool_calls": calls,
                "invalid_tool_calls": invalid,
                "usage_metadata": ordered_usage(self.usage_metadata),
            },
        )


class ToolMessage(BaseMessage):
    """The result of a tool call, sent back to the model.

    Attributes:
        tool_call_id: the ``id`` of the tool call this answers.
        artifact: anything the tool wants to keep that the model should not see.
        status: ``"error"`` when the tool failed.
    """

    type: Literal["tool"] = "tool"
    tool_call_id: str
    artifact: Any = None
    status: Literal["success", "error"] = "success"
    _title: ClassVar[str] = "Tool Message"


AnyMessage: TypeAlias = Annotated[
    HumanMessage | SystemMessage | AIMessageChunk | AIMessage | ToolMessage,
    Field(discriminator="type"),
]
"""Any concrete message, told apart by ``type`` (for pydantic fields and ``TypeAdapter``)."""

MessageLike: TypeAlias = (
    BaseMessage | str | dict[str, Any] | tuple[str, str | list[str | dict[str, Any]]]
)
"""What :func:`to_message` accepts: a message, a str, a role dict or a ``(role, content)``."""


class ChunkAccumulator(ChunkMerger[AIMessageChunk]):
    """Adds up the chunks of one reply as they arrive, without keeping them alive.

    Text pieces are kept in a list and joined once, tool-call fragments are merged per call
    and usage is summed as chunks come in, so assembling the reply costs nothing at the end
    and memory stays flat however long it is. The merge rules live in ``rxagent/_merge.py``;
    this class turns what they add up into messages.

    :meth:`snapshot` equals ``AIMessageChunk() + c1 + c2 + ...`` over the chunks added, which
    is ``c1 + c2 + ...`` whenever ``c1`` is already in merged form (as every chunk from a
    provider or ``make_chunk`` is).

    Example::

        accumulator = ChunkAccumulator()
        for chunk in chunks:
            accumulator.add(chunk)
        message = accumulator.to_message()
    """

    __slots__ = ()

    def snapshot(self) -> AIMessageChunk:
        """The merged chunk so far (a new object, sharing nothing with the accumulator)."""
        values = self.merged()
        if self.last:
            values["chunk_position"] = "last"
            values["tool_calls"], values["invalid_tool_calls"] = parse_calls(
                values["tool_call_chunks"]
            )
        return build(AIMessageChunk, values)

    def to_message(self) -> AIMessage:
        """The finished :class:`AIMessage`: content, id, name, parsed tool calls, usage, metadata.

        Tool calls are parsed whether or not a last chunk arrived.
        """
        values = self.merged()
        values["tool_calls"], values["invalid_tool_calls"] = parse_calls(
            values.pop("tool_call_chunks")
        )
        return build(AIMessage, values)


# -- tool calls --------------------------------------------------------------------------------


def tool_calls_of(fragments: list[ToolCallChunk]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """The whole calls that tool-call fragments add up to, as :func:`parse_calls` reads them."""
    if len(fragments) > 1:
        fragments = cast("list[ToolCallChunk]", fold_fragments(fragments))
    return parse_calls(fragments)


def parse_calls(
    fragments: Iterable[Mapping[str, Any]],
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Whole calls from merged fragments: args JSON objects, the rest invalid with why."""
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for fragment in fragments:
        name = fragment.get("name")
        args = fragment.get("args")
        call_id = fragment.get("id")
        parsed, error = _read_args(args)
        if error is None and name is None:
            error = "the tool call has no name"
        if error is None:
            calls.append(
                {"name": cast(str, name), "args": parsed, "id": call_id, "type": "tool_call"}
            )
        else:
            invalid.append(
                {
                    "name": name,
                    "args": args,
                    "id": call_id,
                    "error": error,
                    "type": "invalid_tool_call",
                }
            )
    return calls, invalid


def _read_args(args: str | None) -> tuple[dict[str, Any], str | None]:
    # A call's arguments as a dict (empty ones as {}), or the error that makes them invalid.
    if args is None or not args.strip():
        return {}, None
    try:
        parsed = json.loads(args)
    except ValueError as exc:
        return {}, f"the arguments are not valid JSON: {exc}"
    if not isinstance(parsed, dict):
        return {}, f"the arguments must be a JSON object, got {type(parsed).__name__}"
    return parsed, None


def _calls_as_chunks(calls: list[ToolCall], invalid: list[InvalidToolCall]) -> list[ToolCallChunk]:
    # Without an index, each call is keyed by its id (or stands alone without one).
    chunks: list[ToolCallChunk] = [
        {
            "name": call["name"],
            "args": json.dumps(call["args"]),
            "id": call["id"],
            "index": None,
            "type": "tool_call_chunk",
        }
        for call in calls
    ]
    chunks.extend(
        {
            "name": bad["name"],
            "args": bad["args"],
            "id": bad["id"],
            "index": None,
            "type": "tool_call_chunk",
        }
        for bad in invalid
    )
    return chunks


def _fill_defaults(value: Any, defaults: dict[str, Any]) -> Any:
    if not isinstance(value, list):
        return value
    return [{**defaults, **item} if isinstance(item, Mapping) else item for item in value]


# -- content blocks and printing ---------------------------------------------------------------


def _content_to_blocks(content: Content) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for item in content:
        if isinstance(item, str):
            blocks.append({"type": "text", "text": item})
            continue
        kind = item.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": item.get("text", ""), **_rest(item, "text")})
        elif kind == "reasoning" and "summary" in item and "reasoning" not in item:
            blocks.extend(_summary_blocks(item))
        elif kind == "reasoning":
            blocks.append(
                {
                    "type": "reasoning",
                    "reasoning": item.get("reasoning", ""),
                    **_rest(item, "reasoning"),
                }
            )
        elif kind == "thinking":
            # As LangChain's Anthropic translation: the signature and the like go to extras.
            block: dict[str, Any] = {"type": "reasoning", "reasoning": item.get("thinking", "")}
            rest = _rest(item, "thinking")
            block.update({key: rest.pop(key) for key in ("id", "index") if key in rest})
            if rest:
                block["extras"] = rest
            blocks.append(block)
        else:
            blocks.append(clone(item))
    return blocks


def _summary_blocks(item: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI's Responses reasoning item: one reasoning block per summary part, as LangChain's
    OpenAI translation gives them (an empty summary still gives one block, for its id)."""
    head: dict[str, Any] = {"type": "reasoning"}
    if item.get("id") is not None:
        head["id"] = item["id"]
    extras = {k: clone(v) for k, v in item.items() if k not in ("type", "id", "summary")}
    parts = [part for part in item["summary"] or [] if isinstance(part, dict)]
    blocks = [{**head, "reasoning": part.get("text", "")} for part in parts] or [dict(head)]
    if extras:
        for block in blocks:
            block["extras"] = clone(extras)
    return blocks


def _rest(block: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: clone(value) for key, value in block.items() if key not in ("type", field)}


def _with_call_blocks(
    blocks: list[dict[str, Any]], calls: list[ToolCall], invalid: list[InvalidToolCall]
) -> list[dict[str, Any]]:
    present = {block.get("id") for block in blocks if block.get("type") == "tool_call"}
    for call in calls:
        if call["id"] is not None and call["id"] in present:
            continue
        blocks.append(
            {
                "type": "tool_call",
                "name": call["name"],
                "args": clone(call["args"]),
                "id": call["id"],
            }
        )
    for bad in invalid:
        blocks.append(
            {
                "type": "invalid_tool_call",
                "id": bad["id"],
                "name": bad["name"],
                "args": bad["args"],
                "error": bad["error"],
            }
        )
    return blocks


def _banner(title: str) -> str:
    # LangChain's banner: the title centred in 80 columns of "=".
    padded = f" {title} "
    side = "=" * ((80 - len(padded)) // 2)
    return f"{side}{padded}{side}{'=' if len(padded) % 2 else ''}"


def _format_call(name: str | None, call_id: str | None, error: str | None, args: Any) -> list[str]:
    lines = [f"  {name} ({call_id})", f" Call ID: {call_id}"]
    if error:
        lines.append(f"  Error: {error}")
    lines.append("  Args:")
    if isinstance(args, dict):
        lines.extend(f"    {key}: {value}" for key, value in args.items())
    else:
        lines.append(f"    {args}")
    return lines
