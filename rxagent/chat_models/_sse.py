"""Server-sent events, decoded from bytes with no I/O: feed what the socket gave, get events.

One decoder serves every provider. It follows the WHATWG event-stream rules: lines end in LF,
CRLF or CR (a CRLF split across two reads is still one line end); lines starting with ``:`` are
comments (``: keep-alive``, ``: OPENROUTER PROCESSING``); ``field:value`` loses one space after
the colon, if there is one; ``data`` lines of one event join with ``"\\n"``; a blank line
dispatches the event; a leading byte-order mark is skipped. Bytes are decoded with an
incremental UTF-8 decoder, so a character split across two reads comes out whole.

One deliberate departure from the spec: at the end of the stream (:meth:`SSEDecoder.flush`)
an event whose blank line never came is still dispatched, because servers that close the
connection right after their last ``data:`` line mean that event to count.

Example::

    decoder = SSEDecoder()
    events = decoder.feed(b"event: ping\\ndata: {}\\n\\ndata: hel")
    events += decoder.feed(b"lo\\n\\n")
    events += decoder.flush()
    assert [e.data for e in events] == ["{}", "hello"]
"""

from __future__ import annotations

import codecs
from typing import NamedTuple

__all__ = ["SSEDecoder", "ServerSentEvent"]

class ServerSentEvent(NamedTuple):
    """One dispatched event.

    Attributes:
        event: the event type, ``"message"`` when the stream named none.
        data: the ``data`` lines joined with ``"\\n"``.
        id: the last event id the stream set (it carries over to later events), if any.
        retry: the reconnection time in milliseconds, when this event set one.
    """

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns the bytes of an event stream into :class:`ServerSentEvent` objects.

    Feed the bytes in whatever pieces they arrive; any split of the same bytes gives the same
    events. Call :meth:`flush` once at the end of the stream.
    """

    __slots__ = ("_data", "_decoder", "_event", "_last_id", "_retry", "_skip_lf", "_started",
                 "_tail")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""  # the start of a line whose end has not arrived yet
        self._skip_lf = False  # the last piece ended in CR: an LF first in the next one is its pair
        self._started = False  # whether text came yet (a BOM is skipped only at the very start)
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode the next piece of the stream; the events it completes, in order."""
        return self._feed_text(self._decoder.decode(data))

    def flush(self) -> list[ServerSentEvent]:
        """End the stream: the events still pending (an unterminated last line or event)."""
        events = self._feed_text(self._decoder.decode(b"", final=True))
        if self._tail:
            tail, self._tail = self._tail, ""
            self._line(tail, events)
        self._skip_lf = False
        self._dispatch(events)
        return events

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        if not text:
            return events
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return events
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return events
        if self._tail:
            text = self._tail + text
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            # The same line ends as splitting on CRLF|CR|LF, at str.split's speed.
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        # str.split, not splitlines(): that one also breaks at \x0b, \x1c, \u2028 and more.
        lines = text.split("\n")
        self._tail = lines.pop()
        data = self._data
        for line in lines:
            # The usual line first, without the general field parsing.
            if line[:6] == "data: ":
                data.append(line[6:])
            else:
                self._line(line, events)
                data = self._data
        return events

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return  # a comment: keep-alives and progress notes
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # Any other field is ignored, as the spec says.

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        if self._data:
            events.append(
                ServerSentEvent(
                    self._event or "message", "\n".join(self._data), self._last_id, self._retry
                )
            )
            self._data = []
        self._event = ""
        self._retry = None
