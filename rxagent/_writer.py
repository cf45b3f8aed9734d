"""The stream writer: how a tool (or any code inside a run) sends custom data into the stream.

A run installs its writer in a context variable for the duration of each tool call; sync tools
that run in worker threads get a copy of that context, so ``get_stream_writer()`` finds it there
too. Outside a run the writer discards what it is given, so tools stay callable in unit tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from ._scheduler import note_reaches_run

__all__ = ["StreamWriter", "get_stream_writer"]


class StreamWriter:
    """Sends custom data into the ``custom`` stream mode of the run it belongs to.

    Call it with any value: ``writer("Fetched 10/100 records")``. A sync tool that asks for
    its writer runs in a worker thread, where the call waits while the run's consumer is too
    far behind, so memory stays bounded. An async tool cannot be held inside a plain call; it
    gets the same guarantee with ``await writer.asend(data)``.
    """

    __slots__ = ("_asend", "_send")

    def __init__(
        self,
        send: Callable[[Any], None] | None = None,
        asend: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send
        self._asend = asend

    def __call__(self, data: Any) -> None:
        """Send ``data`` into the stream (or discard it, outside a run)."""
        if self._send is not None:
            self._send(data)

    async def asend(self, data: Any) -> None:
        """Send ``data``, first waiting until the consumer has room for it."""
        if self._asend is not None:
            await self._asend(data)
        elif self._send is not None:
            self._send(data)

    @property
    def discards(self) -> bool:
        """True for the writer handed out outside a run, which drops everything."""
        return self._send is None and self._asend is None

    def __repr__(self) -> str:
        return "StreamWriter(discarding)" if self.discards else "StreamWriter()"


_DISCARDING = StreamWriter()
current_writer: ContextVar[StreamWriter] = ContextVar("rxagent_stream_writer", default=_DISCARDING)


def get_stream_writer() -> StreamWriter:
    """Return the writer of the run this code is executing in.

    Outside a run it returns a writer that discards what it is given (LangGraph raises there),
    so a tool that writes progress can still be called directly in a unit test.
    """
    note_reaches_run()  # a tool that writes must be able to wait for the consumer
    return current_writer.get()
