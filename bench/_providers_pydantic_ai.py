"""PydanticAI's rows: its OpenAI and Anthropic models pointed at the base URL.

Model level: ``pydantic_ai.direct.model_request_stream`` (async) and
``model_request_stream_sync``, which yield the model's part events. Agent level:
``Agent.run_stream_events`` (every part delta of every model call, the counterpart of
``stream_mode="messages"``) and, sync, ``run_stream_sync(...).stream_text(delta=True)`` with
no debouncing; PydanticAI has no sync stream of a run's events, so the sync agent row exists
for text only.
"""

from __future__ import annotations

import warnings
from typing import Any

import _providers_wire as wire
from _providers_rows import API_KEY, LOOKUP_SCHEMA, QUESTION, Delivered, Row, lookup
from pydantic_ai import Agent
from pydantic_ai.direct import model_request_stream, model_request_stream_sync
from pydantic_ai.exceptions import DeprecatedModelWarning
from pydantic_ai.messages import (
    ModelRequest,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolCallPartDelta,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.tools import ToolDefinition

LIBRARY = "pydantic-ai"

# The model names are the ones every library is given; PydanticAI's list of retirements says
# nothing about a loopback server.
warnings.filterwarnings("ignore", category=DeprecatedModelWarning)


def _model(port: int, wire_name: str, kind: str, count: int) -> Any:
    url = wire.base_url(port, wire_name, kind, count)
    if wire_name == wire.OPENAI:
        return OpenAIChatModel(wire.OPENAI_MODEL,
                               provider=OpenAIProvider(base_url=url, api_key=API_KEY))
    return AnthropicModel(wire.ANTHROPIC_MODEL,
                          provider=AnthropicProvider(base_url=url, api_key=API_KEY))


def _take(event: Any, out: Delivered) -> None:
    if isinstance(event, PartDeltaEvent):
        delta = event.delta
        if isinstance(delta, TextPartDelta):
            if delta.content_delta:
                out.text.append(delta.content_delta)
        elif isinstance(delta, ToolCallPartDelta) and isinstance(delta.args_delta, str):
            out.args.append(delta.args_delta)
    elif isinstance(event, PartStartEvent):
        part = event.part
        if isinstance(part, TextPart):
            if part.content:
                out.text.append(part.content)
        elif isinstance(part, ToolCallPart) and isinstance(part.args, str) and part.args:
            out.args.append(part.args)


def rows(port: int, wire_name: str, kind: str, count: int) -> list[Row]:
    model = _model(port, wire_name, kind, count)
    messages = [ModelRequest.user_text_prompt(QUESTION)]
    parameters = ModelRequestParameters(
        function_tools=[ToolDefinition(name=wire.TOOL_NAME, description="Look the query up.",
                                       parameters_json_schema=LOOKUP_SCHEMA)]
        if kind == wire.TOOL else [])
    agent = Agent(model, tools=[lookup])

    def model_sync() -> Delivered:
        out = Delivered()
        with model_request_stream_sync(model, messages,
                                       model_request_parameters=parameters) as stream:
            for event in stream:
                _take(event, out)
        return out

    async def model_async() -> Delivered:
        out = Delivered()
        async with model_request_stream(model, messages,
                                        model_request_parameters=parameters) as stream:
            async for event in stream:
                _take(event, out)
        return out

    def agent_sync() -> Delivered:
        out = Delivered()
        with agent.run_stream_sync(QUESTION) as result:
            for text in result.stream_text(delta=True, debounce_by=None):
                if text:
                    out.text.append(text)
        return out

    async def agent_async() -> Delivered:
        out = Delivered()
        async with agent.run_stream_events(QUESTION) as events:
            async for event in events:
                _take(event, out)
        return out

    rows = [Row(wire_name, kind, "model", "sync", LIBRARY, "direct.model_request_stream_sync",
                model_sync),
            Row(wire_name, kind, "model", "async", LIBRARY, "direct.model_request_stream",
                model_async)]
    if kind == wire.TEXT:
        rows.append(Row(wire_name, kind, "agent", "sync", LIBRARY,
                        "Agent.run_stream_sync + stream_text(delta)", agent_sync))
    rows.append(Row(wire_name, kind, "agent", "async", LIBRARY, "Agent.run_stream_events",
                    agent_async))
    return rows
