"""Tools: plain functions, sync or async, that the model can call.

Any function can be given to an agent as it is; :func:`tool` (or :func:`as_tool`) makes the
:class:`BaseTool` explicitly, to choose its name and description or to call it in a test::

    from rxagent.tools import StreamWriter, tool

    @tool
    def get_weather(city: str, writer: StreamWriter) -> str:
        \"\"\"Get weather for a given city.

        Args:
            city: the city, e.g. "San Francisco".
        \"\"\"
        writer(f"Looking up data for city: {city}")
        return f"It's always sunny in {city}!"

    get_weather.tool_spec()  # {"name": "get_weather", "description": ..., "parameters": ...}
    get_weather.invoke({"city": "SF"})  # "It's always sunny in SF!"

The schema comes from the type hints (pydantic types and models included) and the docstring's
``Args:`` section. A tool reaches the run's ``custom`` stream through a parameter annotated
:class:`StreamWriter`, which the model never sees, or through :func:`get_stream_writer`; outside
a run the writer discards what it is given. Parameters annotated :class:`ToolRuntime`,
``Annotated[..., InjectedState]``, ``Annotated[..., InjectedStore()]`` and
``Annotated[str, InjectedToolCallId]`` get the run's state, store and the call's id, and are
never shown to the model either (``langgraph.prebuilt``'s names).
"""

from ._tools import (
    BaseTool,
    InjectedState,
    InjectedStore,
    InjectedToolCallId,
    ToolRuntime,
    as_tool,
    tool,
)
from ._writer import StreamWriter, get_stream_writer

__all__ = [
    "BaseTool",
    "InjectedState",
    "InjectedStore",
    "InjectedToolCallId",
    "StreamWriter",
    "ToolRuntime",
    "as_tool",
    "get_stream_writer",
    "tool",
]
