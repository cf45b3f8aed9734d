"""An agent's state schema: ``AgentState`` and what the keys of a subclass say about themselves.

``create_agent(state_schema=...)`` and each middleware's ``state_schema`` add keys to the state
besides ``messages``. A key annotated ``Annotated[T, PrivateStateAttr]`` is kept (on the thread
too) but left out of what the run shows as its state (``values`` parts, ``invoke``'s result),
as LangChain's output schema leaves it out; ``UntrackedValue`` keeps a key for the run only,
never in a checkpoint. ``jump_to`` is LangChain's ephemeral routing key: read by the edge after
the node that wrote it, then gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    TypedDict,
    get_args,
    get_origin,
    get_type_hints,
)

from ._exceptions import UsageError
from ._messages import BaseMessage

__all__ = [
    "JUMP_TO",
    "AgentState",
    "JumpTo",
    "OmitFromInput",
    "OmitFromOutput",
    "OmitFromSchema",
    "PrivateStateAttr",
    "StateKey",
    "UntrackedValue",
    "state_keys_of",
]

JumpTo = Literal["tools", "model", "end"]
JUMP_TO = "jump_to"


@dataclass(frozen=True)
class OmitFromSchema:
    """A state key's annotation: leave it out of the run's input, its output, or both."""

    input: bool = True
    output: bool = True


OmitFromInput = OmitFromSchema(input=True, output=False)
OmitFromOutput = OmitFromSchema(input=False, output=True)
PrivateStateAttr = OmitFromSchema(input=True, output=True)


class _Untracked:
    """A state key's annotation: the run keeps it, no checkpoint does."""

    def __repr__(self) -> str:
        return "UntrackedValue"


UntrackedValue = _Untracked()


class AgentState(TypedDict):
    """An agent's state: the conversation. Subclass it to keep more keys, and pass the subclass
    as ``create_agent(..., state_schema=...)`` or a middleware's ``state_schema``
    (LangChain's ``AgentState``)."""

    messages: list[BaseMessage]
    jump_to: NotRequired[Annotated[JumpTo | None, PrivateStateAttr]]
    structured_response: NotRequired[Annotated[Any, OmitFromInput]]


@dataclass(frozen=True)
class StateKey:
    """One state key besides ``messages``, and how the run treats it."""

    name: str
    in_output: bool = True  # in ``values`` parts and ``invoke``'s result
    in_input: bool = True  # may be given in the run's input
    saved: bool = True  # kept in checkpoints


def state_keys_of(schema: type[Any] | None, *, what: str = "state_schema") -> list[StateKey]:
    """The keys of ``schema`` besides ``messages`` and ``jump_to`` (a TypedDict with a
    ``messages`` key, such as an :class:`AgentState` subclass).

    Raises:
        UsageError: ``schema`` is not such a TypedDict, or its annotations cannot be read.
    """
    if schema is None:
        return []
    try:
        hints = get_type_hints(schema, include_extras=True)
    except Exception as exc:
        raise UsageError(f"{what}'s annotations cannot be read: {exc}") from exc
    if not isinstance(schema, type) or "messages" not in hints:
        raise UsageError(
            f"{what} is a TypedDict with a 'messages' key: a subclass of rxagent.AgentState"
            f", got {schema!r}"
        )
    keys = []
    for name, hint in hints.items():
        if name in ("messages", JUMP_TO):
            continue
        marks = _annotations(hint)
        omit = next((m for m in marks if isinstance(m, OmitFromSchema)), None)
        keys.append(StateKey(
            name,
            in_output=omit is None or not omit.output,
            in_input=omit is None or not omit.input,
            saved=not any(m is UntrackedValue for m in marks),
        ))
    return keys


def _annotations(hint: Any) -> list[Any]:
    """The metadata of an ``Annotated`` hint, looking through ``NotRequired``/``Required``."""
    found: list[Any] = []
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            found.extend(hint.__metadata__)
            hint = get_args(hint)[0]
        elif origin is not None and getattr(origin, "_name", None) in ("NotRequired", "Required"):
            hint = get_args(hint)[0]
        else:
            return found
