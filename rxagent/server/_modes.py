"""From a run's parts to the events LangGraph's server sends for the stream modes asked for.

The run is observed once with every rxagent mode the request needs; each part then becomes zero
or more ``(event name, data)`` pairs:

- ``values``, ``updates``, ``custom``, ``debug``, ``tasks``, ``checkpoints``: one event of that
  name carrying the payload;
- ``messages-tuple``: an event named ``messages`` carrying ``[message, metadata]``, the metadata
  with the run's ``thread_id``, ``run_id``, ``graph_id`` and ``assistant_id`` added;
- ``messages`` (the legacy mode): ``messages/metadata`` once per message id, then for a streamed
  reply ``messages/partial`` with the whole message so far (an ``ai`` message, not a chunk), and
  for a message that arrives whole (a tool's result) ``messages/complete``.

With ``stream_subgraphs`` a part from a nested run is named ``mode|ns`` (``updates|tools:<id>``).
No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._messages import AIMessageChunk, ChunkAccumulator
from ._sse import dumps, frame, pair_frame

__all__ = ["API_MODES", "EventNamer", "check_stream_modes", "event_filter", "rxagent_modes"]

# Each mode of the HTTP API, and the rxagent mode it is made from.
API_MODES: Mapping[str, str] = {
    "values": "values",
    "updates": "updates",
    "custom": "custom",
    "messages-tuple": "messages",
    "messages": "messages",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
}


def check_stream_modes(value: Any) -> list[str]:
    """The request's ``stream_mode`` as a list of known modes; ``ValueError`` otherwise."""
    modes = [value] if isinstance(value, str) else value
    if not isinstance(modes, list) or not modes:
        raise ValueError(f"stream_mode is a mode or a list of modes, got {value!r}")
    unknown = [mode for mode in modes if not isinstance(mode, str) or mode not in API_MODES]
    if unknown:
        raise ValueError(
            f"unsupported stream_mode {unknown[0]!r}; supported: {', '.join(API_MODES)}"
        )
    return list(dict.fromkeys(modes))


def event_filter(modes: Sequence[str]) -> Callable[[str], bool]:
    """Whether an event belongs to one of these API modes (``metadata`` and ``error`` always
    do); for a join that asks for fewer modes than its run streams."""
    names = {"metadata", "error"}
    for mode in modes:
        if mode == "messages":
            names.update(("messages/metadata", "messages/partial", "messages/complete"))
        else:
            names.add("messages" if mode == "messages-tuple" else mode)
    return lambda event: event.partition("|")[0] in names


def rxagent_modes(modes: Sequence[str]) -> list[str]:
    """The rxagent stream modes to observe for these API modes."""
    return list(dict.fromkeys(API_MODES[mode] for mode in modes))


class EventNamer:
    """Turns one run's parts into events; keeps the legacy mode's messages so far.

    Args:
        modes: the API modes asked for (checked).
        subgraphs: name nested parts ``mode|ns``; without it nested parts keep the plain name.
        run_metadata: added to the metadata of every ``messages`` event.
    """

    def __init__(
        self, modes: Sequence[str], *, subgraphs: bool, run_metadata: Mapping[str, Any]
    ) -> None:
        self.modes = tuple(modes)  # a few: a tuple is a third of a frozenset, on every stream
        self.subgraphs = subgraphs
        self.run_metadata = dict(run_metadata)
        self._replies: dict[str, ChunkAccumulator] = {}
        self._announced: set[str] | None = None  # made by the legacy mode, which alone needs it
        self._metadata_of: object = None  # the metadata dict _metadata_json was last made from
        self._metadata_json = b""

    def frames(self, part: Mapping[str, Any]) -> list[tuple[str, bytes]]:
        """The events of one part as ``(name, frame)`` (``_sse.frame``), in order: the bytes
        of :meth:`events`, each frame encoded once for all the run's clients."""
        if part["type"] != "messages" or "messages" in self.modes:
            return [(name, frame(name, data)) for name, data in self.events(part)]
        if "messages-tuple" not in self.modes:
            return []
        # A token's frame: its metadata, most of the frame, is the same for every token.
        message, metadata = part["data"]
        name = "messages" + self._suffix(part)
        return [(name, pair_frame(name, message, self._metadata_bytes(metadata)))]

    def _metadata_bytes(self, metadata: Mapping[str, Any]) -> bytes:
        """The JSON of a message's metadata with the run's keys added. A model call's chunks
        share one metadata dict, built once and never changed (``_context.call_metadata``):
        so it is encoded once per model call, not once per token."""
        if metadata is not self._metadata_of:
            self._metadata_json = dumps({**metadata, **self.run_metadata})
            self._metadata_of = metadata
        return self._metadata_json

    def _suffix(self, part: Mapping[str, Any]) -> str:
        ns = part.get("ns")
        return "|" + "|".join(ns) if self.subgraphs and ns else ""

    def events(self, part: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """The events of one part ``{"type", "ns", "data"}``, in order."""
        kind: str = part["type"]
        suffix = self._suffix(part)
        if kind != "messages":
            return [(kind + suffix, part["data"])] if kind in self.modes else []
        message, metadata = part["data"]
        events: list[tuple[str, Any]] = []
        if "messages-tuple" in self.modes:
            events.append(("messages" + suffix, [message, {**metadata, **self.run_metadata}]))
        if "messages" in self.modes:
            events.extend(self._legacy(message, metadata, suffix))
        return events

    def _legacy(self, message: Any, metadata: Mapping[str, Any], suffix: str) -> list[
        tuple[str, Any]
    ]:
        events: list[tuple[str, Any]] = []
        message_id = message.id or ""
        if self._announced is None:
            self._announced = set()
        if message_id not in self._announced:
            self._announced.add(message_id)
            events.append((
                "messages/metadata" + suffix,
                {message_id: {"metadata": {**metadata, **self.run_metadata}}},
            ))
        if isinstance(message, AIMessageChunk):
            reply = self._replies.setdefault(message_id, ChunkAccumulator())
            reply.add(message)
            events.append(("messages/partial" + suffix, [reply.to_message()]))
            if reply.last:
                del self._replies[message_id]  # its last chunk: nothing more to add up
        else:
            events.append(("messages/complete" + suffix, [message]))
        return events
