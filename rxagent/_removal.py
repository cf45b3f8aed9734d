"""``RemoveMessage``: a message that takes another out of a thread's state, by id.

Put in a state update (``update_state(config, {"messages": [RemoveMessage(id=...)]})``), it
removes the message with that id; ``RemoveMessage(id=REMOVE_ALL_MESSAGES)`` removes them all,
and the messages after it in the same update take their place. It is never sent to a model.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from ._messages import BaseMessage

__all__ = ["REMOVE_ALL_MESSAGES", "RemoveMessage"]

REMOVE_ALL_MESSAGES = "__remove_all__"
"""The id that makes a :class:`RemoveMessage` remove every message."""


class RemoveMessage(BaseMessage):
    """Removes the message whose ``id`` it names from a thread's state (LangChain's).

    Attributes:
        id: the id of the message to remove, or :data:`REMOVE_ALL_MESSAGES`.
    """

    type: Literal["remove"] = "remove"
    _title: ClassVar[str] = "Remove Message"

    def __init__(self, id: str, **data: Any) -> None:
        if data.get("content"):
            raise ValueError("a RemoveMessage has no content; it names a message by id")
        super().__init__(id=id, **data)
