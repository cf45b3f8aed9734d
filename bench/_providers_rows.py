"""What every library's rows in ``bench/providers.py`` share: the row type, the question, the tool.

A library module (``_providers_floor``, ``_providers_sdks``, ``_providers_langchain``,
``_providers_pydantic_ai``, ``_providers_rxagent``) has a ``rows(port, wire, kind, count)``
that returns its :class:`Row` objects for one wire format and one kind of reply. Everything
set up once (clients, models, agents) is built there, outside the timing, and reused by every
run, as an application would; each run makes one model call (or one agent run) and returns
what it :class:`Delivered`: the text pieces and the tool-call argument pieces, in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

QUESTION = "Count for me."
API_KEY = "sk-bench-0123456789"


def lookup(q: str) -> str:
    """Look the query up."""
    return "found"


# The tool's JSON schema, for the APIs that take one rather than a function.
LOOKUP_SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


@dataclass
class Delivered:
    """The pieces a run delivered, in order: text and tool-call arguments."""

    text: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)


SyncRun = Callable[[], Delivered]
AsyncRun = Callable[[], Awaitable[Delivered]]


@dataclass
class Row:
    """One measured line of the table: a library's API on one wire, kind, level and mode."""

    wire: str
    kind: str
    level: str  # "model" (one call) or "agent" (a whole run)
    mode: str  # "sync" or "async"
    library: str
    api: str
    run: SyncRun | AsyncRun

    @property
    def name(self) -> str:
        """What ``--only`` matches: ``openai-text-model-sync-rxagent``."""
        return f"{self.wire}-{self.kind}-{self.level}-{self.mode}-{self.library}"


def sync_and_async(wire: str, kind: str, level: str, library: str, api: tuple[str, str],
                   sync: SyncRun | None, run_async: AsyncRun | None) -> list[Row]:
    """The sync and async rows of one library at one level (``None``: it has no such API)."""
    rows = []
    if sync is not None:
        rows.append(Row(wire, kind, level, "sync", library, api[0], sync))
    if run_async is not None:
        rows.append(Row(wire, kind, level, "async", library, api[1], run_async))
    return rows
