"""A run body's ``context`` reaches the agent's tools as its ``context_schema``."""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

import httpx
import pydantic
import pytest
from langgraph_sdk.client import SyncLangGraphClient

from rxagent import create_agent
from rxagent.server._runs import run_context
from rxagent.testing import FunctionChatModel

SAY = {"messages": [{"role": "user", "content": "who am I?"}]}


def test_the_tools_get_the_context_as_the_schema(client: SyncLangGraphClient) -> None:
    thread = client.threads.create()["thread_id"]
    final = client.runs.wait(thread, "context", input=SAY, context={"user": "ada"})
    assert isinstance(final, dict)
    assert final["messages"][-1]["content"] == "You are Caller: ada"
    # Streamed, and stateless, the same.
    parts = list(client.runs.stream(None, "context", input=SAY, context={"user": "bob"},
                                    stream_mode="values"))
    assert parts[-1].data["messages"][-1]["content"] == "You are Caller: bob"


def test_a_context_that_does_not_fit_is_a_422(url: str) -> None:
    for context in ({"nobody": 1}, "ada"):
        response = httpx.post(f"{url}/runs/stream", timeout=10, json={
            "assistant_id": "context", "input": SAY, "context": context})
        assert response.status_code == 422, response.text
        assert "context" in response.json()["detail"]


@dataclasses.dataclass
class AsDataclass:
    user: str


class AsModel(pydantic.BaseModel):
    user: str


class AsTypedDict(TypedDict):
    user: str


@pytest.mark.parametrize(("schema", "expected"), [
    (AsDataclass, AsDataclass("ada")), (AsModel, AsModel(user="ada")),
    (AsTypedDict, {"user": "ada"}), (None, {"user": "ada"}),
])
def test_run_context_makes_the_schema(schema: Any, expected: Any) -> None:
    agent = create_agent(FunctionChatModel(lambda messages, tools: "ok"), [],
                         context_schema=schema)
    assert run_context(agent, {"user": "ada"}) == expected
    assert run_context(agent, None) is None
