"""The types of threads and interrupts (``langgraph.types``' home)::

    from rxagent.types import Command, interrupt

``interrupt(value)`` inside a tool stops the run to ask a human; ``agent.stream(Command(
resume=answer), config)`` goes on, and ``interrupt()`` returns the answer. ``get_state()``
gives a :class:`StateSnapshot`.
"""

from ._interrupts import Command, GraphOutput, Interrupt, interrupt
from ._thread_state import Durability
from ._thread_views import PregelTask, StateSnapshot

__all__ = [
    "Command",
    "Durability",
    "GraphOutput",
    "Interrupt",
    "PregelTask",
    "StateSnapshot",
    "interrupt",
]
