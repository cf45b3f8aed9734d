"""Interrupts: a tool stops the run to ask a human, and the run resumed with the answer gives it
back (LangGraph's ``interrupt()`` and ``Command(resume=...)``).

``interrupt(value)`` in a tool raises :class:`GraphInterrupt`. The tools node catches it, the
run saves its state with the interrupt and ends normally. Resumed, the tools node runs the
interrupted tool again from its start, and this time the tool's ``interrupt()`` calls give back,
in order, the values the human answered: the first call the first answer, and so on. A call past
the answers stops the run again. So a tool must do the same calls to ``interrupt()`` in the same
order each time it runs, as in LangGraph.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._exception_roots import RxAgentError
from ._exceptions import UsageError

__all__ = [
    "Command",
    "GraphInterrupt",
    "GraphOutput",
    "Interrupt",
    "ResumeRejected",
    "TaskInterrupts",
    "current_task_interrupts",
    "interrupt",
]


@dataclass(frozen=True, slots=True)
class Interrupt:
    """What a run stopped to ask: the ``value`` given to ``interrupt()``, the ``id`` that a
    resume answers it by (``Command(resume={interrupt.id: answer})``), and the JSON schema of
    the answer it expects, if ``interrupt()`` was given one."""

    value: Any
    id: str
    response_schema: dict[str, Any] | None = None


class ResumeRejected(BaseException):
    """Carries an answer's ``ValidationError`` out of the tool or hook that asked, past any
    ``except Exception``, to the step, which raises the error itself out of the run."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class GraphInterrupt(RxAgentError):
    """Raised by :func:`interrupt` to stop the run; not an error. The run catches it, so code
    outside a tool never sees it. A tool must not swallow it (``except Exception`` around an
    ``interrupt()`` call would)."""

    def __init__(self, interrupts: Sequence[Interrupt]) -> None:
        super().__init__(interrupts)
        self.interrupts = tuple(interrupts)


@dataclass(frozen=True)
class Command:
    """What to run next on a thread, given as a run's input instead of ``{"messages": ...}``.

    Attributes:
        resume: the answer to the thread's interrupt; with several interrupts pending, a dict
            from each interrupt's ``id`` to its answer.
        update: a state update to apply before going on (``{"messages": [...]}``).
        goto: not supported by rxagent's agents (LangGraph's node jumps); given, it is an error.
        graph: not supported either (LangGraph's parent-graph commands).
    """

    graph: str | None = None
    update: Any = None
    resume: Any = None
    goto: Any = field(default=())


@dataclass(frozen=True)
class GraphOutput:
    """What ``invoke(..., version="v2")`` returns: the final state and the interrupts that
    stopped the run, apart (LangGraph's).

    Attributes:
        value: the final state, ``{"messages": [...], ...}``.
        interrupts: the interrupts that stopped the run (empty if it finished).
    """

    value: dict[str, Any]
    interrupts: tuple[Interrupt, ...] = ()


class TaskInterrupts:
    """One tool call's interrupts in this run: the answers it has, and how many it asked."""

    __slots__ = ("answers", "asked", "id_prefix")

    def __init__(self, id_prefix: str, answers: Sequence[Any]) -> None:
        self.id_prefix = id_prefix
        self.answers = list(answers)
        self.asked = 0

    def interrupt_id(self, index: int) -> str:
        """The id of the task's ``index``-th interrupt: the same each time the task runs."""
        return hashlib.sha256(f"{self.id_prefix}|{index}".encode()).hexdigest()[:32]


current_task_interrupts: ContextVar[TaskInterrupts | None] = ContextVar(
    "rxagent_task_interrupts", default=None
)
"""The interrupts of the tool call that code runs in, when its run has a checkpointer."""


def interrupt(value: Any, *, response_schema: Any = None) -> Any:
    """Stop the run to ask a human ``value``; the answer, once the run is resumed.

    Call it inside a tool (or a middleware hook) of an agent made with a ``checkpointer``. The
    first time, it stops the run: the stream's ``updates`` give ``{"__interrupt__":
    (Interrupt(value=..., id=...),)}`` and ``get_state(config).interrupts`` holds it.
    ``agent.stream(Command(resume=answer), config)`` then runs the tool again, and this call
    returns ``answer``.

    Args:
        value: what to ask; JSON-able (it is saved with the thread).
        response_schema: what the answer must be: a JSON schema dict (shown to clients as it
            is, answers not checked), or a type pydantic validates (a model, a ``TypedDict``,
            a union of them), whose JSON schema the interrupt shows and against which the
            answer is checked; the validated answer is returned.

    Raises:
        UsageError: called outside a tool of a run with a checkpointer, or ``value`` is not
            JSON-able.
        pydantic.ValidationError: the answer does not fit ``response_schema`` (raised out of
            the run, as LangGraph raises it); nothing of it is kept, so the interrupt can be
            answered again.
    """
    adapter = None
    if response_schema is not None and not isinstance(response_schema, dict):
        adapter = TypeAdapter(response_schema)
    task = current_task_interrupts.get()
    if task is None:
        raise UsageError(
            "interrupt() stops a run to ask a human, so it needs a run that can be resumed: call "
            "it inside a tool of an agent made with create_agent(..., checkpointer=...), run "
            "with config={'configurable': {'thread_id': ...}}"
        )
    index = task.asked
    task.asked += 1
    if index < len(task.answers):
        answer = task.answers[index]
        if adapter is None:
            return answer
        try:
            return adapter.validate_python(answer)
        except ValidationError as exc:
            # Past the tool's own error handling, which would make it the tool's result.
            raise ResumeRejected(exc) from None
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"interrupt()'s value is saved with the thread, so it is JSON-able; got {value!r}"
        ) from exc
    schema = adapter.json_schema() if adapter is not None else response_schema
    raise GraphInterrupt([Interrupt(value, task.interrupt_id(index), schema)])


def resume_answers(resume: Any, pending: Sequence[Interrupt]) -> dict[str, Any]:
    """The answer to each pending interrupt by id, from a ``Command``'s ``resume``.

    Raises:
        UsageError: nothing is pending, or several are and ``resume`` does not name them.
    """
    if not pending:
        raise UsageError("Command(resume=...) answers an interrupt, and this thread has none")
    ids = {item.id for item in pending}
    if isinstance(resume, Mapping) and resume and set(resume) <= ids:
        return dict(resume)
    if len(pending) == 1:
        return {pending[0].id: resume}
    raise UsageError(
        f"the thread has {len(pending)} interrupts pending; resume them with a dict from each "
        "interrupt's id to its answer, Command(resume={interrupt.id: answer, ...}); their ids: "
        f"{sorted(ids)}"
    )
