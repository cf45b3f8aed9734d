"""Reading values as messages: :func:`to_message` and :func:`to_messages`.

A message passes through; a ``str`` is a user message; a dict with a ``"role"`` (or
``"type"``) and a ``(role, content)`` tuple are read as the message of that role, an
assistant dict in rxagent's shape or OpenAI's. Whatever cannot be read raises
:class:`~rxagent.InvalidMessageError`, saying what is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from ._exceptions import InvalidMessageError
from ._messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    InvalidToolCall,
    MessageLike,
    SystemMessage,
    ToolMessage,
    parse_calls,
)

__all__ = ["to_message", "to_messages"]

_M = TypeVar("_M", bound=BaseMessage)

_ROLES: dict[str, type[BaseMessage]] = {
    "user": HumanMessage,
    "human": HumanMessage,
    "assistant": AIMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "developer": SystemMessage,
    "tool": ToolMessage,
}
# What a dict of each role may hold: its message's fields, the role standing for "type".
_KEYS: dict[type[BaseMessage], frozenset[str]] = {
    cls: frozenset(cls.model_fields) - {"type"} for cls in set(_ROLES.values())
}
# Keys OpenAI sends as null for what is absent.
_NULLABLE = ("tool_calls", "invalid_tool_calls", "usage_metadata")
_ACCEPTED = (
    "a message object, a str (a user message), a dict with a 'role' "
    "('user'/'human', 'assistant'/'ai', 'system'/'developer', 'tool') and 'content', "
    "or a (role, content) tuple"
)


def to_message(value: MessageLike) -> BaseMessage:
    """Read one value as a message.

    Accepted: a message object (returned as it is); a ``str`` (a :class:`HumanMessage`); a
    dict with ``"role"`` (or ``"type"``) ``"user"``/``"human"``, ``"assistant"``/``"ai"``,
    ``"system"``/``"developer"`` or ``"tool"`` (which needs ``"tool_call_id"``) and
    ``"content"``; a ``(role, content)`` tuple. An assistant dict's ``tool_calls`` may be in
    rxagent's shape (``{"name", "args", "id"}``) or OpenAI's
    (``{"id", "type": "function", "function": {"name", "arguments": "<json>"}}``); OpenAI
    calls whose arguments are not a JSON object become ``invalid_tool_calls``.

    Raises:
        InvalidMessageError: the value is none of these, or does not make a valid message.
    """
    if isinstance(value, BaseMessage):
        return value
    if isinstance(value, str):
        return HumanMessage(content=value)
    if isinstance(value, tuple):
        return _from_tuple(value)
    if isinstance(value, dict):
        return _from_dict(value)
    raise InvalidMessageError(f"cannot read a {type(value).__name__} as a message; use {_ACCEPTED}")


def to_messages(values: Iterable[MessageLike] | MessageLike) -> list[BaseMessage]:
    """Read a list of values as messages, each as :func:`to_message` does.

    A single message-like value (a message, str, dict or ``(role, content)`` tuple) is read
    as a list of one, as LangGraph's ``add_messages`` does.

    Raises:
        InvalidMessageError: an item cannot be read as a message (the error says which).
    """
    if isinstance(values, (str, dict, BaseMessage)) or _is_role_tuple(values):
        single: Any = values
        return [to_message(single)]
    if not isinstance(values, Iterable):
        raise InvalidMessageError(
            f"expected a list of messages, got {type(values).__name__}; each item may be "
            f"{_ACCEPTED}"
        )
    messages: list[BaseMessage] = []
    items: Iterable[Any] = values
    for position, value in enumerate(items):
        try:
            messages.append(to_message(value))
        except InvalidMessageError as exc:
            raise InvalidMessageError(f"message {position}: {exc}") from exc
    return messages


def _is_role_tuple(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)


def _role_class(role: object) -> type[BaseMessage]:
    cls = _ROLES.get(role) if isinstance(role, str) else None
    if cls is None:
        raise InvalidMessageError(
            f"unknown message role {role!r}; use 'user'/'human', 'assistant'/'ai', "
            "'system'/'developer' or 'tool'"
        )
    return cls


def _from_tuple(value: tuple[Any, ...]) -> BaseMessage:
    if not _is_role_tuple(value):
        raise InvalidMessageError(
            f"a message tuple is (role, content), e.g. ('user', 'Hi'); got {value!r}"
        )
    role, content = value
    cls = _role_class(role)
    if cls is ToolMessage:
        raise InvalidMessageError(
            "a tool message needs a tool_call_id, which a (role, content) tuple cannot carry; "
            "use {'role': 'tool', 'content': ..., 'tool_call_id': ...} or a ToolMessage"
        )
    return _validated(cls, {"content": content})


def _from_dict(value: dict[str, Any]) -> BaseMessage:
    data = dict(value)
    cls = _role_class(_pop_role(data))
    unknown = sorted(map(str, data.keys() - _KEYS[cls]))
    if unknown:
        raise InvalidMessageError(
            f"unknown keys {unknown} in a {cls.__name__} dict; it may have {sorted(_KEYS[cls])}"
        )
    if cls is AIMessage:
        _read_assistant(data)
    elif data.get("content") is None:
        raise InvalidMessageError(f"a {cls.__name__} dict needs 'content'")
    if cls is ToolMessage and "tool_call_id" not in data:
        raise InvalidMessageError(
            "a tool message dict needs 'tool_call_id', the id of the call it answers"
        )
    return _validated(cls, data)


def _pop_role(data: dict[str, Any]) -> object:
    # The role, taken out of ``data``: from "role", or from "type" as a dumped message has it.
    has_role, has_type = "role" in data, "type" in data
    if has_role and has_type:
        raise InvalidMessageError(
            f"a message dict has 'role' or 'type', not both; got keys {sorted(map(str, data))}"
        )
    if not (has_role or has_type):
        raise InvalidMessageError(
            f"a message dict needs a 'role', e.g. {{'role': 'user', 'content': 'Hi'}}; got keys "
            f"{sorted(map(str, data))}"
        )
    return data.pop("role" if has_role else "type")


def _read_assistant(data: dict[str, Any]) -> None:
    # An assistant dict as OpenAI sends it: no content beside tool calls, nulls for what is
    # absent, tool calls in its wire shape.
    if data.get("content") is None:
        data["content"] = ""
    for key in _NULLABLE:
        if key in data and data[key] is None:
            del data[key]
    if isinstance(data.get("tool_calls"), list):
        calls, invalid = _read_tool_calls(data["tool_calls"])
        data["tool_calls"] = calls
        if invalid:
            data["invalid_tool_calls"] = [*data.get("invalid_tool_calls", []), *invalid]


def _read_tool_calls(items: list[Any]) -> tuple[list[Any], list[InvalidToolCall]]:
    calls: list[Any] = []
    invalid: list[InvalidToolCall] = []
    for item in items:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            calls.append(item)  # rxagent's own shape; validation checks it
            continue
        fragment = {"name": function.get("name"), "args": function.get("arguments")}
        parsed, bad = parse_calls([{**fragment, "id": item.get("id")}])
        calls.extend(parsed)
        invalid.extend(bad)
    return calls, invalid


def _validated(cls: type[_M], data: dict[str, Any]) -> _M:
    return cls.model_validate(data)  # the messages raise InvalidMessageError themselves
