"""The JSON and frames the server writes: the fast encoder and the per-token frames give the
bytes the plain definitions give (``json.dumps(jsonable(...))``, ``frame(name, data)``)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import types
from typing import Any

import pytest

from rxagent.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from rxagent.server._modes import EventNamer
from rxagent.server._sse import dumps, frame, jsonable


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass
class Point:
    x: float
    label: tuple[str, ...]


def plain(value: Any) -> bytes:
    return json.dumps(jsonable(value), separators=(",", ":"), ensure_ascii=False).encode()


VALUES: list[Any] = [
    None, True, 0, -3, 1.5, 1e-7, 1e16, float("inf"), "", "línea\nnueva \"quoted\" \u2028",
    [1, (2, (3,))], {"a": {"b": [None, False]}},
    AIMessageChunk(content="tok", id="m1", response_metadata={"logprob": -1e-7}),
    AIMessage(content="", id="m2", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}]),
    [ToolMessage(content="ok", tool_call_id="c1"), {"meta": HumanMessage(content="hi")}],
    Point(0.25, ("a", "b")), ValueError("bad"), {1, 2}, datetime.date(2026, 1, 2),
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key", Level.LOW: "enum"},
    {("a", 1): "tuple key"}, types.MappingProxyType({"k": Point(1, ())}), Level.LOW,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_dumps_gives_the_bytes_of_the_plain_definition(value: Any) -> None:
    assert dumps(value) == plain(value)


def test_keys_are_spelled_as_json_spells_them() -> None:
    assert jsonable({True: 1, None: 2, 3: 3, 0.5: 4}) == {"true": 1, "null": 2, "3": 3, "0.5": 4}
    assert dumps({(1, 2): 0}) == b'{"(1, 2)":0}'


def run_parts() -> list[dict[str, Any]]:
    """A run's parts as the agent gives them: two model calls (each with one metadata dict
    shared by its chunks), a tool's message, and state."""
    first = {"langgraph_step": 1, "langgraph_node": "model", "ls_provider": "x"}
    second = {"langgraph_step": 3, "langgraph_node": "model", "ls_provider": "x"}
    tool = {"langgraph_step": 2, "langgraph_node": "tools"}
    parts: list[dict[str, Any]] = []
    for i in range(3):
        chunk = AIMessageChunk(content=f"t{i}", id="a1", chunk_position="last" if i == 2 else None)
        parts.append({"type": "messages", "ns": (), "data": (chunk, first)})
    parts.append({"type": "messages", "ns": ("tools:1",),
                  "data": (ToolMessage(content="ok", tool_call_id="c", id="t1"), tool)})
    parts.append({"type": "updates", "ns": (), "data": {"model": {"n": 1}}})
    for i in range(2):
        parts.append({"type": "messages", "ns": (),
                      "data": (AIMessageChunk(content=f"u{i}", id="a2"), second)})
    parts.append({"type": "values", "ns": (), "data": {"messages": [HumanMessage(content="q")]}})
    return parts


@pytest.mark.parametrize("modes", [
    ["messages-tuple"], ["messages"], ["messages-tuple", "messages", "updates"], ["values"],
])
@pytest.mark.parametrize("subgraphs", [False, True])
def test_frames_are_the_frames_of_the_events(modes: list[str], subgraphs: bool) -> None:
    run = {"thread_id": "t", "run_id": "r", "graph_id": "g", "assistant_id": "a"}
    fast = EventNamer(modes, subgraphs=subgraphs, run_metadata=run)
    slow = EventNamer(modes, subgraphs=subgraphs, run_metadata=run)
    got, expected = [], []
    for part in run_parts():
        got += fast.frames(part)
        expected += [(name, frame(name, data)) for name, data in slow.events(part)]
    assert got == expected
    assert got  # every mode asked for here has events in this run
