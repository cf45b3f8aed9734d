"""LangChain's helpers over lists of messages: trimming to a token budget, filtering, counting
tokens approximately, and messages to and from dicts.

The rules are LangChain's (``langchain_core.messages.utils``), so that a history trimmed here is
trimmed as there; ``tests/test_message_utils.py`` compares the two on the same conversations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from ._convert import to_messages
from ._exceptions import UsageError
from ._messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    MessageLike,
    SystemMessage,
    ToolMessage,
)
from ._removal import RemoveMessage

__all__ = [
    "convert_to_messages",
    "count_tokens_approximately",
    "filter_messages",
    "messages_from_dict",
    "messages_to_dict",
    "trim_messages",
]

MessageTypes = str | type[BaseMessage] | Sequence[str | type[BaseMessage]]
TokenCounter = Callable[[list[BaseMessage]], int] | Literal["approximate"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_KINDS: dict[str, type[BaseMessage]] = {
    "human": HumanMessage, "ai": AIMessage, "system": SystemMessage, "tool": ToolMessage,
    "remove": RemoveMessage,
}


def convert_to_messages(messages: Iterable[MessageLike]) -> list[BaseMessage]:
    """Messages from what LangChain accepts as them: messages, role dicts, ``(role, text)``
    tuples and strings (``rxagent.messages.to_messages``, under LangChain's name)."""
    return to_messages(messages)


def count_tokens_approximately(
    messages: Iterable[MessageLike],
    *,
    chars_per_token: float = 4.0,
    extra_tokens_per_message: float = 3.0,
    count_name: bool = True,
    tokens_per_image: int = 85,
) -> int:
    """About how many tokens ``messages`` take, without a tokenizer, as LangChain counts them.

    Per message: its text, its tool calls (as their ``repr``) or its ``tool_call_id``, its role
    and name, in characters divided by ``chars_per_token`` and rounded up; an image block counts
    ``tokens_per_image``; each message adds ``extra_tokens_per_message``.
    """
    total = 0.0
    for message in to_messages(messages):
        chars = 0
        content = message.content
        if isinstance(content, str):
            chars += len(content)
        else:
            for block in content:
                if isinstance(block, str):
                    chars += len(block)
                elif block.get("type") in ("image", "image_url"):
                    total += tokens_per_image
                elif block.get("type") == "text":
                    chars += len(block.get("text", ""))
                else:
                    chars += len(repr(block))
        if isinstance(message, AIMessage) and isinstance(content, str) and message.tool_calls:
            chars += len(repr(message.tool_calls))
        if isinstance(message, ToolMessage):
            chars += len(message.tool_call_id)
        chars += len(_ROLES.get(message.type, message.type))
        if message.name and count_name:
            chars += len(message.name)
        total += math.ceil(chars / chars_per_token) + extra_tokens_per_message
    return math.ceil(total)


def filter_messages(
    messages: Iterable[MessageLike],
    *,
    include_names: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
    include_types: Sequence[str | type[BaseMessage]] | None = None,
    exclude_types: Sequence[str | type[BaseMessage]] | None = None,
    include_ids: Sequence[str] | None = None,
    exclude_ids: Sequence[str] | None = None,
    exclude_tool_calls: Sequence[str] | bool | None = None,
) -> list[BaseMessage]:
    """The messages that any ``include_*`` criterion keeps (all, when none is given) and no
    ``exclude_*`` criterion drops.

    Types are message classes or their ``type`` strings (``"human"``, ``"ai"``...).
    ``exclude_tool_calls=True`` drops every tool call and tool result: AI messages that only
    call tools go, and so do the ``ToolMessage`` s; a list of call ids drops those calls only.
    """
    kept: list[BaseMessage] = []
    for message in to_messages(messages):
        if (
            (exclude_names and message.name in exclude_names)
            or (exclude_types and _is_type(message, exclude_types))
            or (exclude_ids and message.id in exclude_ids)
        ):
            continue
        including = include_names or include_types or include_ids
        if including and not (
            (include_names and message.name in include_names)
            or (include_types and _is_type(message, include_types))
            or (include_ids and message.id in include_ids)
        ):
            continue
        if exclude_tool_calls:
            trimmed = _without_tool_calls(message, exclude_tool_calls)
            if trimmed is None:
                continue
            message = trimmed
        kept.append(message)
    return kept


def _without_tool_calls(
    message: BaseMessage, exclude: Sequence[str] | bool
) -> BaseMessage | None:
    if exclude is True:
        if isinstance(message, ToolMessage) or (
            isinstance(message, AIMessage) and message.tool_calls
        ):
            return None
        return message
    assert not isinstance(exclude, bool)
    if isinstance(message, ToolMessage):
        return None if message.tool_call_id in exclude else message
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = [call for call in message.tool_calls if call["id"] not in exclude]
        if not calls:
            return None
        if len(calls) < len(message.tool_calls):
            content = message.content
            if isinstance(content, list):  # the calls' own blocks go with them
                content = [
                    block for block in content
                    if not (isinstance(block, dict) and block.get("type") == "tool_use"
                            and block.get("id") in exclude)
                ]
            return message.model_copy(update={"tool_calls": calls, "content": content})
    return message


def trim_messages(
    messages: Iterable[MessageLike],
    *,
    max_tokens: int,
    token_counter: TokenCounter,
    strategy: Literal["first", "last"] = "last",
    allow_partial: bool = False,
    end_on: MessageTypes | None = None,
    start_on: MessageTypes | None = None,
    include_system: bool = False,
) -> list[BaseMessage]:
    """The longest run of messages, from the start (``"first"``) or the end (``"last"``), whose
    tokens fit in ``max_tokens``, as LangChain's ``trim_messages``.

    Args:
        max_tokens: the budget.
        token_counter: counts the tokens of a list of messages; ``"approximate"`` is
            :func:`count_tokens_approximately`.
        strategy: keep the first or the last messages.
        allow_partial: not supported (LangChain may then keep part of a message's content):
            ``True`` raises ``UsageError``.
        end_on: the kept messages end on one of these types (the last ones before it are
            dropped first, with ``"last"``).
        start_on: with ``"last"``, the kept messages start on one of these types.
        include_system: with ``"last"``, keep a first ``SystemMessage`` in any case; the
            other messages share the tokens it leaves.

    Raises:
        UsageError: ``allow_partial=True``, ``start_on``/``include_system`` with ``"first"``,
            or an unknown strategy.
    """
    if allow_partial:
        raise UsageError(
            "trim_messages(allow_partial=True) is not supported: rxagent keeps or drops whole "
            "messages"
        )
    counter: Callable[[list[BaseMessage]], int] = (
        count_tokens_approximately if token_counter == "approximate" else token_counter
    )
    listed = to_messages(messages)
    if strategy == "first":
        if start_on is not None or include_system:
            raise UsageError("start_on and include_system apply to strategy='last' only")
        return _first(listed, max_tokens, counter, end_on)
    if strategy != "last":
        raise UsageError(f"strategy is 'first' or 'last', got {strategy!r}")
    if end_on is not None:
        while listed and not _is_type(listed[-1], end_on):
            listed.pop()
    if include_system and listed and isinstance(listed[0], SystemMessage):
        # The system message is kept whatever it costs; the rest share what it leaves.
        system = listed[0]
        left = max(0, max_tokens - counter([system]))
        return [system, *_first(listed[1:][::-1], left, counter, start_on)[::-1]]
    return _first(listed[::-1], max_tokens, counter, start_on)[::-1]


def _first(
    messages: list[BaseMessage],
    max_tokens: int,
    counter: Callable[[list[BaseMessage]], int],
    end_on: MessageTypes | None,
) -> list[BaseMessage]:
    """The longest prefix within ``max_tokens``, ending on ``end_on`` when given."""
    if not messages:
        return []
    if counter(messages) <= max_tokens:
        count = len(messages)
    else:  # the longest prefix that fits, found by halves: counting is the cost here
        low, high = 0, len(messages)
        while low < high:
            middle = (low + high + 1) // 2
            if counter(messages[:middle]) <= max_tokens:
                low = middle
            else:
                high = middle - 1
        count = low
    kept = messages[:count]
    if end_on is not None:
        while kept and not _is_type(kept[-1], end_on):
            kept.pop()
    return kept


def _is_type(message: BaseMessage, types: MessageTypes) -> bool:
    for kind in [types] if isinstance(types, (str, type)) else types:
        if isinstance(kind, str):
            if message.type == kind or (kind == "ai" and message.type == "AIMessageChunk"):
                return True
        elif isinstance(message, kind):
            return True
    return False


def messages_to_dict(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Each message as ``{"type": ..., "data": {...its fields}}``, LangChain's form."""
    return [{"type": message.type, "data": message.model_dump()} for message in messages]


def messages_from_dict(dicts: Sequence[dict[str, Any]]) -> list[BaseMessage]:
    """Messages back from :func:`messages_to_dict`.

    Raises:
        UsageError: an item that is not ``{"type", "data"}`` of a known message type.
    """
    messages: list[BaseMessage] = []
    for item in dicts:
        kind = _KINDS.get(item.get("type", "")) if isinstance(item, dict) else None
        if kind is None or not isinstance(item.get("data"), dict):
            raise UsageError(
                f"a message dict is {{'type': one of {sorted(_KINDS)}, 'data': {{...}}}}, "
                f"got {item!r}"
            )
        messages.append(kind.model_validate({**item["data"], "type": item["type"]}))
    return messages
