"""The types that the layers of rxagent share: a run's parts, tools as models see them, and the
interface through which a run hands one mode's payloads straight to its subscriber.

Nothing here imports the rest of rxagent, so chat models, tools, operators and the agent loop
can all depend on it without depending on each other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, NotRequired, Protocol, TypeAlias, TypedDict

__all__ = [
    "DisableStreaming",
    "KeptPayloads",
    "ModelInfo",
    "PayloadSink",
    "RunnableConfig",
    "StreamPart",
    "ToolSpec",
]


class StreamPart(TypedDict):
    """One event of a run, in LangGraph's v2 shape (``values`` parts also carry the run's
    ``interrupts``, as LangGraph's do)."""

    type: str
    ns: tuple[str, ...]
    data: Any
    interrupts: NotRequired[tuple[Any, ...]]


class RunnableConfig(TypedDict, total=False):
    """A run's config (LangChain's ``RunnableConfig``): a plain dict of these keys. A tool
    parameter annotated with it gets the run's config, never shown to the model."""

    configurable: dict[str, Any]
    tags: list[str]
    metadata: dict[str, Any]
    recursion_limit: int
    max_concurrency: int
    run_name: str
    run_id: Any


ToolSpec: TypeAlias = dict[str, Any]
"""A tool as a model sees it: ``{"name", "description", "parameters": <JSON schema>}``."""

DisableStreaming: TypeAlias = bool | Literal["tool_calling"]
"""A model's ``disable_streaming``: ``True`` (each reply as one chunk), ``"tool_calling"`` (text
streamed, each tool call as one chunk) or ``False``."""


class ModelInfo(Protocol):
    """What a run reports about the model behind a call (its ``messages`` metadata)."""

    @property
    def provider(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def disable_streaming(self) -> DisableStreaming: ...


class KeptPayloads(NamedTuple):
    """The one mode a subscriber keeps, and the callable that takes its payloads."""

    mode: str
    deliver: Callable[[Any], None]


class PayloadSink(ABC):
    """A subscriber of a run's parts that keeps the payloads of one mode and nothing else.

    This is the per-token shortcut's only interface. Behind ``stream(stream_mode="messages")``
    the subscriber would take each part apart only to pass its ``data`` on; a run whose
    subscriber is a ``PayloadSink`` asks it once, when the run starts, and then hands that
    mode's payloads to ``deliver`` directly and drops the other modes at their source. It saves
    building a part and one call per token. The run's sink (``rxagent._sink.RunSink``) is the
    one place that asks and decides; ``tests/test_agent.py`` checks that every mode handed
    over directly equals the same mode through the general filter.
    """

    __slots__ = ()

    @abstractmethod
    def kept_payloads(self) -> KeptPayloads:
        """The mode kept, and where its payloads go."""
