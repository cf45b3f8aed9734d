"""The seed's weather agent, ready to run on the embedded scripted model (no key, no network)."""

from __future__ import annotations

from ._agent import Agent, create_agent
from ._messages import AIMessage
from ._writer import get_stream_writer
from .chat_models._base import BaseChatModel
from .testing import ScriptedChatModel

__all__ = ["DEMO_QUESTION", "get_weather", "weather_agent", "weather_script"]

DEMO_QUESTION = "What is the weather in SF?"


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    writer = get_stream_writer()
    writer(f"Looking up data for city: {city}")
    writer(f"Acquired data for city: {city}")
    return f"It's always sunny in {city}!"


def weather_script() -> list[str | AIMessage]:
    """The replies a real model gives in the seed's example: one tool call, then the answer."""
    return [
        AIMessage(
            content="",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "San Francisco"}, "id": "call_weather_1"}
            ],
        ),
        "Here's what I got: \"It's always sunny in San Francisco!\"\n\n",
    ]


def weather_agent(model: BaseChatModel | str | None = None, *, delay: float = 0.0) -> Agent:
    """The weather agent of the seed docs; on the scripted model unless ``model`` is given."""
    if model is None:
        model = ScriptedChatModel(weather_script(), delay=delay)
    return create_agent(model, tools=[get_weather])
