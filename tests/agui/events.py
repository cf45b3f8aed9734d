"""AG-UI event streams as JSON, checked and compared: a protocol check in the spirit of
``@ag-ui/client``'s ``verifyEvents``, ids made comparable, JSON Patch applied."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ag_ui.core import BaseEvent

# Fields that name a run, a message or a call: each differs between two runs of one agent.
ID_FIELDS = ("threadId", "runId", "messageId", "toolCallId", "parentMessageId",
             "subagentRunId", "parentToolCallId", "parentSubagentRunId")


def as_json(events: Iterable[BaseEvent]) -> list[dict[str, Any]]:
    """Each event as it goes on the wire (camelCase, optional fields left out)."""
    return [event.model_dump(mode="json", by_alias=True) for event in events]


def check_protocol(events: list[dict[str, Any]]) -> None:
    """Fail unless the stream is one well-formed AG-UI run: ``RUN_STARTED`` first, every
    message, tool call, reasoning span, step and sub-agent started once and ended before
    ``RUN_FINISHED``, which comes last (or ``RUN_ERROR``, after which nothing comes); an
    event marked as a sub-agent's comes while that sub-agent runs."""
    assert events and events[0]["type"] == "RUN_STARTED", events[:1]
    kinds = {"TEXT_MESSAGE": "messageId", "TOOL_CALL": "toolCallId",
             "REASONING_MESSAGE": "messageId", "REASONING": "messageId", "STEP": "stepName",
             "SUBAGENT": "subagentRunId"}
    active: dict[str, set[str]] = {kind: set() for kind in kinds}
    for position, event in enumerate(events[1:], 1):
        kind = event["type"]
        if "subagentRunId" in event and kind != "SUBAGENT_STARTED":
            assert event["subagentRunId"] in active["SUBAGENT"], f"outside its sub-agent: {event}"
        if kind in ("RUN_FINISHED", "RUN_ERROR"):
            assert position == len(events) - 1, f"{kind} is not last"
            if kind == "RUN_FINISHED":
                assert not any(active.values()), f"still open at the end: {active}"
            return
        for prefix, key in kinds.items():
            if kind in (f"{prefix}_START", f"{prefix}_STARTED"):
                assert event[key] not in active[prefix], f"{kind} twice: {event}"
                active[prefix].add(event[key])
            elif kind in (f"{prefix}_END", f"{prefix}_FINISHED"):
                assert event[key] in active[prefix], f"{kind} of nothing open: {event}"
                active[prefix].discard(event[key])
            elif kind in (f"{prefix}_CONTENT", f"{prefix}_ARGS"):
                assert event[key] in active[prefix], f"{kind} outside its start: {event}"
    raise AssertionError("the stream has no RUN_FINISHED or RUN_ERROR")


def normalized(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with each id (interrupts' too) replaced by its order of first appearance,
    and the request echoed in ``RUN_STARTED`` left out: two runs of one agent compare equal."""
    names: dict[str, str] = {}
    out = []
    for event in events:
        event = {key: value for key, value in event.items()
                 if key not in ("input", "timestamp")}
        for key in ID_FIELDS:
            if key in event:
                event[key] = names.setdefault(event[key], f"id{len(names)}")
        outcome = event.get("outcome") or {}
        if outcome.get("interrupts"):  # an interrupt's id comes from its thread's checkpoint
            event["outcome"] = {**outcome, "interrupts": [
                {**interrupt, "id": names.setdefault(interrupt["id"], f"id{len(names)}")}
                for interrupt in outcome["interrupts"]]}
        out.append(event)
    return out


def apply_patch(document: Any, patch: list[dict[str, Any]]) -> Any:
    """RFC 6902's add, remove and replace (what the mapping sends) applied to a copy."""
    document = copy.deepcopy(document)
    for op in patch:
        keys = [key.replace("~1", "/").replace("~0", "~")
                for key in op["path"].split("/")[1:]]
        if not keys:
            document = op.get("value")
            continue
        parent = document
        for key in keys[:-1]:
            parent = parent[int(key) if isinstance(parent, list) else key]
        last = keys[-1]
        if op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            parent[int(last) if isinstance(parent, list) else last] = op["value"]
    return document
