"""LangChain's message helpers: the same answers as langchain_core's own on the same
conversations (built once as dicts, read by each library)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from langchain_core import messages as lc

import rxagent
from rxagent import messages as rx


def conversation(seed: int) -> list[dict[str, Any]]:
    """A random conversation: a system prompt sometimes, turns of human, AI with or without
    tool calls, tool results; names and ids here and there."""
    rnd = random.Random(seed)
    words = ["sun", "rain", "Paris", "a", "longer-word", "é", "tool", "x" * 30]

    def text() -> str:
        return " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 12)))

    out: list[dict[str, Any]] = []
    if rnd.random() < 0.5:
        out.append({"role": "system", "content": text(), "id": "s"})
    for turn in range(rnd.randint(1, 6)):
        out.append({"role": "user", "content": text(), "id": f"h{turn}",
                    **({"name": "ann"} if rnd.random() < 0.3 else {})})
        if rnd.random() < 0.5:
            calls = [{"name": rnd.choice(["get", "look"]), "args": {"q": text()},
                      "id": f"c{turn}{n}"} for n in range(rnd.randint(1, 2))]
            out.append({"role": "assistant", "content": "", "tool_calls": calls,
                        "id": f"a{turn}"})
            out.extend({"role": "tool", "content": text(), "tool_call_id": call["id"],
                        "name": call["name"], "id": f"t{call['id']}"} for call in calls)
        out.append({"role": "assistant", "content": text(), "id": f"b{turn}",
                    **({"name": "bot"} if rnd.random() < 0.3 else {})})
    return out


def shapes(messages: list[Any]) -> list[tuple[Any, ...]]:
    return [(m.type, m.content, m.id, m.name,
             [c["id"] for c in getattr(m, "tool_calls", [])]) for m in messages]


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_approximate_token_counts_match_langchains(seed: int) -> None:
    dicts = conversation(seed)
    assert rx.count_tokens_approximately(dicts) == lc.utils.count_tokens_approximately(dicts)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("options", [
    {"strategy": "last"},
    {"strategy": "last", "start_on": "human"},
    {"strategy": "last", "start_on": "human", "end_on": ("human", "tool")},
    {"strategy": "last", "include_system": True},
    {"strategy": "last", "include_system": True, "start_on": "human"},
    {"strategy": "first"},
    {"strategy": "first", "end_on": "ai"},
])
def test_trim_keeps_what_langchain_keeps(seed: int, options: dict[str, Any]) -> None:
    dicts = conversation(seed)
    budget = random.Random(seed).randint(5, 120)
    ours = rx.trim_messages(dicts, max_tokens=budget, token_counter="approximate", **options)
    theirs = lc.trim_messages(lc.convert_to_messages(dicts), max_tokens=budget,
                              token_counter=lc.utils.count_tokens_approximately, **options)
    assert shapes(ours) == shapes(theirs)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("options", [
    {"include_types": ["human", "ai"]},
    {"exclude_types": [rx.ToolMessage]},
    {"include_names": ["ann"], "include_ids": ["b0"]},
    {"exclude_ids": ["h0", "b1"]},
    {"exclude_tool_calls": True},
    {"exclude_tool_calls": ["c00", "c11"]},
    {"include_types": ["ai"], "exclude_names": ["bot"]},
])
def test_filter_keeps_what_langchain_keeps(seed: int, options: dict[str, Any]) -> None:
    dicts = conversation(seed)
    lc_options = {key: [lc.ToolMessage] if value == [rx.ToolMessage] else value
                  for key, value in options.items()}
    ours = rx.filter_messages(dicts, **options)
    theirs = lc.filter_messages(lc.convert_to_messages(dicts), **lc_options)
    assert shapes(ours) == shapes(theirs)


def test_messages_to_and_from_dicts_round_trip_in_langchains_form() -> None:
    messages = rx.convert_to_messages(conversation(3))
    dicts = rx.messages_to_dict(messages)
    assert [d["type"] for d in dicts] == [m.type for m in messages]
    assert rx.messages_from_dict(dicts) == messages
    # LangChain reads them too.
    assert shapes(lc.messages_from_dict(dicts)) == shapes(messages)
    with pytest.raises(rxagent.UsageError, match="message dict"):
        rx.messages_from_dict([{"type": "robot", "data": {}}])


def test_trim_refuses_what_it_cannot_do() -> None:
    with pytest.raises(rxagent.UsageError, match="allow_partial"):
        rx.trim_messages(["hi"], max_tokens=3, token_counter=len, allow_partial=True)
    with pytest.raises(rxagent.UsageError, match="strategy='last'"):
        rx.trim_messages(["hi"], max_tokens=3, token_counter=len, strategy="first",
                         start_on="human")
    # A counter of our own: one token a message.
    assert [m.text for m in rx.trim_messages(["a", "b", "c"], max_tokens=2,
                                              token_counter=len)] == ["b", "c"]
