"""``TodoListMiddleware``: a ``write_todos`` tool and a ``todos`` state key for planning.

The model keeps a to-do list by calling ``write_todos`` with the whole list each time; the
list is written to the state's ``todos`` key (left out of the run's input) and acknowledged
with a ``ToolMessage``. The middleware adds a paragraph about the tool to the system message,
and answers with errors when one reply calls ``write_todos`` more than once (each call replaces
the whole list, so which one should win is unclear).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic needs it for a TypedDict before 3.12

from .._interrupts import Command
from .._messages import AIMessage, SystemMessage, ToolMessage
from .._state_schema import AgentState, OmitFromInput
from .._tools import BaseTool, ToolRuntime
from ..runtime import Runtime
from ._types import AgentMiddleware, ModelCallResult, ModelRequest, ModelResponse

__all__ = [
    "WRITE_TODOS_SYSTEM_PROMPT",
    "WRITE_TODOS_TOOL_DESCRIPTION",
    "PlanningState",
    "Todo",
    "TodoListMiddleware",
]

WRITE_TODOS_TOOL_DESCRIPTION = """Write your task list: the whole list each time, every item \
with a status (pending, in_progress or completed).

Use it for work of three or more steps, or when the user asks for a plan or gives several \
tasks; skip it for simple or conversational requests. Mark an item in_progress before you \
start it and completed as soon as it is fully done (not while errors or blockers remain); \
add items you discover and drop ones that no longer matter. Keep at least one item \
in_progress until all are done.

The list is not the answer: after your last call, reply to the user with the result itself."""
"""The ``write_todos`` tool's description, as the model reads it."""

WRITE_TODOS_SYSTEM_PROMPT = """## `write_todos`
You have a `write_todos` tool to plan and track multi-step work. Use it for complex tasks, \
not for simple ones. Mark each step completed as soon as it is done, revise the list as you \
learn more, and never call it several times in one reply. When everything is done, give the \
user the result in a message after your last `write_todos` call."""
"""What the middleware adds to the system message."""

PARALLEL_CALLS_ERROR = (
    "Error: The `write_todos` tool should never be called multiple times in parallel. Please "
    "call it only once per model invocation to update the todo list."
)


class Todo(TypedDict):
    """One item of the list."""

    content: str
    status: Literal["pending", "in_progress", "completed"]


class PlanningState(AgentState):
    """The agent's state with its ``todos``."""

    todos: NotRequired[Annotated[list[Todo], OmitFromInput]]


class WriteTodosInput(BaseModel):
    # (No docstring: pydantic would show it to the model as the arguments' description.)
    todos: list[Todo]


def _write_todos(todos: list[Todo], runtime: ToolRuntime[Any, Any]) -> Command:
    return Command(update={
        "todos": todos,
        "messages": [ToolMessage(content=f"Updated todo list to {todos}",
                                 tool_call_id=runtime.tool_call_id or "")],
    })


class TodoListMiddleware(AgentMiddleware[Any, Any]):
    """Give the agent a to-do list: the ``write_todos`` tool and the ``todos`` state key.

    Args:
        system_prompt: added to the system message (after a blank line), or made the system
            message when there is none.
        tool_description: the ``write_todos`` tool's description.
    """

    state_schema = PlanningState

    def __init__(
        self,
        *,
        system_prompt: str = WRITE_TODOS_SYSTEM_PROMPT,
        tool_description: str = WRITE_TODOS_TOOL_DESCRIPTION,
    ) -> None:
        self.system_prompt = system_prompt
        self.tool_description = tool_description
        self.tools = [BaseTool(_write_todos, name="write_todos", description=tool_description,
                               args_schema=WriteTodosInput)]

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse],
    ) -> ModelCallResult:
        """Call the model with the system message telling it about ``write_todos``."""
        return handler(request.override(system_message=self._system(request)))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse]],
    ) -> ModelCallResult:
        """As :meth:`wrap_model_call`, for the async handler."""
        return await handler(request.override(system_message=self._system(request)))

    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Answer every ``write_todos`` call of the last reply with an error when it has
        several (they do not run: their calls are answered)."""
        reply = next((m for m in reversed(state["messages"]) if isinstance(m, AIMessage)), None)
        if reply is None:
            return None
        calls = [call for call in reply.tool_calls if call["name"] == "write_todos"]
        if len(calls) < 2:
            return None
        return {"messages": [ToolMessage(content=PARALLEL_CALLS_ERROR,
                                         tool_call_id=call["id"] or "", status="error")
                             for call in calls]}

    async def aafter_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """As :meth:`after_model` (it only reads the state)."""
        return self.after_model(state, runtime)

    def _system(self, request: ModelRequest[Any]) -> SystemMessage:
        if request.system_message is None:
            return SystemMessage(content=[{"type": "text", "text": self.system_prompt}])
        return SystemMessage(content=[*request.system_message.content_blocks,
                                      {"type": "text", "text": f"\n\n{self.system_prompt}"}])

    def __repr__(self) -> str:
        return "TodoListMiddleware()"
