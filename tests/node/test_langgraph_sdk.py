"""``@langchain/langgraph-sdk`` (Node) streams runs on ``rxagent serve`` and joins them with
``Last-Event-ID``: each join gets exactly the events after the id it names, as the Python
SDK's do (tests/server/)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rxagent.server import create_app

from ..server.agents import token_agent, weather_agent
from ..server.conftest import ServerThread
from .conftest import run_script

MODES = ["values", "updates", "messages-tuple", "custom"]


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    app = create_app({"weather": weather_agent(), "tokens": token_agent(400)})
    with ServerThread(app) as running:
        yield running


def ids(parts: list[dict[str, Any]]) -> list[int]:
    return [int(part["id"]) for part in parts]


def test_a_run_is_streamed_and_joined_after_any_event(node: str, served: ServerThread) -> None:
    result = run_script(node, "sdk_join.mjs", {
        "url": served.url, "assistantId": "weather", "streamMode": MODES,
        "input": {"messages": [{"role": "user", "content": "weather?"}]},
        "after": [1, 7, 20, -1], "cutAfter": 5,
    })
    streamed = result["streamed"]
    assert ids(streamed) == list(range(1, len(streamed) + 1))
    assert [part["event"] for part in streamed][:2] == ["metadata", "values"]
    assert {part["event"] for part in streamed} == {
        "metadata", "values", "updates", "messages", "custom"}
    custom = [part["data"] for part in streamed if part["event"] == "custom"]
    assert custom == ["Looking up data for city: SF", "Acquired data for city: SF"]
    text = "".join(part["data"][0]["content"] for part in streamed
                   if part["event"] == "messages" and part["data"][0]["type"] == "AIMessageChunk")
    assert text == "The weather: It's always sunny in SF!"
    for after, joined in result["joins"].items():
        start = max(int(after), 0)
        assert joined == streamed[start:], f"a join after {after}"


def test_a_client_that_leaves_joins_again_where_it_left(node: str, served: ServerThread) -> None:
    result = run_script(node, "sdk_join.mjs", {
        "url": served.url, "assistantId": "tokens", "streamMode": ["messages-tuple"],
        "input": {"messages": [{"role": "user", "content": "count"}]},
        "after": [], "cutAfter": 30,
    })
    cut, rejoined, replayed = result["cut"], result["rejoined"], result["replayed"]
    assert len(cut) == 30
    # Nothing lost, nothing repeated: the part before the cut and the join are the run.
    assert cut + rejoined == replayed
    assert ids(replayed) == list(range(1, len(replayed) + 1))
    tokens = [part["data"][0]["content"] for part in replayed if part["event"] == "messages"]
    assert "".join(tokens) == " ".join(f"t{i}" for i in range(400))
