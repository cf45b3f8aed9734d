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

Decoding takes time linear in the bytes, however a line is split: the pieces of a line whose
end has not arrived are kept in a list and joined once, when it does (re-joining and
re-splitting the unfinished line on every read made one 10 MB line cost seconds; see
``bench/sse_decoding.py``). One event may hold at most ``max_event_size`` characters (16 MiB by
default), so a server that never ends a line cannot fill the memory: past it the decoder raises
:class:`~rxagent.StreamProtocolError`.

A reader that needs only each event's name and data (the wire parsers) calls
:meth:`SSEDecoder.feed_columns` instead of :meth:`SSEDecoder.feed`: the same events as two
lists of strings, cut whole from a read of usual events (a data line, alone or after an event
line) with no object made per event.

Example::

    decoder = SSEDecoder()
    events = decoder.feed(b"event: ping\\ndata: {}\\n\\ndata: hel")
    events += decoder.feed(b"lo\\n\\n")
    events += decoder.flush()
    assert [e.data for e in events] == ["{}", "hello"]
"""

from __future__ import annotations

import codecs
import operator
from typing import NamedTuple

from .._exceptions import StreamProtocolError, UsageError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
"""The most characters one event may hold (its data, or any one line) unless told otherwise:
far above any chunk a provider sends, low enough that a runaway line cannot exhaust memory."""

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


# A NamedTuple's own __new__ is a Python function: building the tuple directly skips its frame.
_new_event = tuple.__new__
# A line's value after "event: " and after "data: ", mapped over a column of lines in C.
_after_event = operator.itemgetter(slice(7, None))
_after_data = operator.itemgetter(slice(6, None))


class SSEDecoder:
    """Turns the bytes of an event stream into :class:`ServerSentEvent` objects.

    Feed the bytes in whatever pieces they arrive; any split of the same bytes gives the same
    events. Call :meth:`flush` once at the end of the stream.

    Args:
        max_event_size: the most characters one event's data (or any one line) may hold;
            ``None`` for no limit. Past it :meth:`feed` raises
            :class:`~rxagent.StreamProtocolError`, as soon as the excess has arrived.
    """

    __slots__ = ("_counted", "_data", "_data_size", "_decoder", "_event", "_last_id", "_limit",
                 "_pending", "_pending_size", "_retry", "_skip_lf", "_started")

    def __init__(self, *, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size is not None and (
            isinstance(max_event_size, bool)
            or not isinstance(max_event_size, int)
            or max_event_size <= 0
        ):
            raise UsageError(
                f"max_event_size must be a positive int or None, got {max_event_size!r}"
            )
        self._limit = max_event_size
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # The pieces of a line whose end has not arrived yet, joined once it does.
        self._pending: list[str] = []
        self._pending_size = 0
        self._skip_lf = False  # the last piece ended in CR: an LF first in the next one is its pair
        self._started = False  # whether text came yet (a BOM is skipped only at the very start)
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0  # the characters of self._data[:self._counted]
        self._counted = 0
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode the next piece of the stream; the events it completes, in order.

        Raises:
            StreamProtocolError: an event (or a line) is larger than ``max_event_size``.
        """
        events: list[ServerSentEvent] = []
        text = self._open_event(self._text(self._decoder.decode(data)), events)
        if text:
            self._blocks(text, events)
        return events

    def feed_columns(self, data: bytes) -> tuple[list[str], list[str]]:
        """:meth:`feed`, as two lists: the events' names and their data, in order (each
        event's id and retry left out), with no object made per event.

        For a reader that needs nothing else of an event, as the wire parsers do: a read
        whose events all have the usual shape (a data line, alone or after an event line)
        is cut into these lists by a few whole-text operations, where :meth:`feed` reads each
        event in Python (its per-event cost about halves, ``bench/instructions.py``, the wire
        workloads), and no event tuple is kept alive for the collector to walk. The lists are
        exactly :meth:`feed`'s events' names and data, for any split of the bytes
        (``tests/chat_models/test_sse.py`` checks every case both ways).

        Raises:
            StreamProtocolError: an event (or a line) is larger than ``max_event_size``.
        """
        events: list[ServerSentEvent] = []
        text = self._open_event(self._text(self._decoder.decode(data)), events)
        names = [event[0] for event in events]
        datas = [event[1] for event in events]
        if text and not self._columns(text, names, datas):
            events = []
            self._blocks(text, events)
            names += [event[0] for event in events]
            datas += [event[1] for event in events]
        return names, datas

    def flush(self) -> list[ServerSentEvent]:
        """End the stream: the events still pending (an unterminated last line or event)."""
        events: list[ServerSentEvent] = []
        text = self._open_event(self._text(self._decoder.decode(b"", final=True)), events)
        if text:
            self._blocks(text, events)
        if self._pending:
            tail = "".join(self._pending)
            self._pending = []
            self._pending_size = 0
            self._line(tail, events)
        self._skip_lf = False
        self._dispatch(events)
        return events

    def flush_columns(self) -> tuple[list[str], list[str]]:
        """:meth:`flush`, as :meth:`feed_columns` gives the events."""
        events = self.flush()
        return [event[0] for event in events], [event[1] for event in events]

    def _text(self, text: str) -> str:
        # The new text with its line ends made LF, less a CRLF's LF and a leading BOM.
        if not text:
            return text
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return text
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return text
        if "\r" in text:
            # Only the new text: a CRLF split between two reads is _skip_lf's business.
            self._skip_lf = text[-1] == "\r"
            # The same line ends as splitting on CRLF|CR|LF, at str.split's speed.
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def _open_event(self, text: str, events: list[ServerSentEvent]) -> str:
        # Inside a line or an event: up to its end (a blank line) the general way. The rest,
        # which starts an event with nothing pending.
        if text and (self._pending or self._data or self._event or self._retry is not None):
            end = text.find("\n\n") + 2
            if end == 1:
                self._lines(text, events)
                return ""
            self._lines(text[:end], events)
            return text[end:]
        return text

    def _columns(self, text: str, names: list[str], datas: list[str]) -> bool:
        # From the start of an event, with nothing pending: the whole events, when every one
        # is a data line after an event line (Anthropic's) or a data line alone (OpenAI's),
        # appended as columns; False, with nothing read, for any other text. A line holds no
        # LF, so joining a column's lines with LF and counting LF + a field's prefix counts
        # the lines that start with it, at C speed.
        end = text.rfind("\n\n") + 2
        if end < 2:
            return self._keep_tail(text)  # no event ends here
        if self._limit is not None and end > self._limit:
            return False  # the general way checks each event's size
        lines = text[:end - 1].split("\n")  # [..., "event: a", "data: x", ""] per event
        step = 3 if lines[0][:7] == "event: " else 2
        count = len(lines) // step
        if len(lines) != count * step or lines[step - 1::step].count("") != count:
            return False
        data_lines = lines[step - 2::step]
        if ("\n" + "\n".join(data_lines)).count("\ndata: ") != count:
            return False
        if step == 3:
            name_lines = lines[0::3]
            if ("\n" + "\n".join(name_lines)).count("\nevent: ") != count or (
                "event: " in name_lines  # an empty name, "message": the general way
            ):
                return False
            names += map(_after_event, name_lines)
        else:
            names += ["message"] * count
        datas += map(_after_data, data_lines)
        return self._keep_tail(text[end:])

    def _keep_tail(self, tail: str) -> bool:
        # The start of an event that has not ended: nothing in it dispatches yet.
        if tail:
            self._lines(tail, [])
        return True

    def _blocks(self, text: str, events: list[ServerSentEvent]) -> None:
        # From the start of an event, with nothing pending: whole events at a time. The usual
        # one, a data line alone or after an event line, is read here; any other goes line by
        # line through _lines. Reading each event line by line costs twice as much per event
        # (a token, on every provider); feeding any split of the same bytes gives the same
        # events (tests/chat_models/test_sse.py, byte by byte against whole).
        blocks = text.split("\n\n")
        tail = blocks.pop()  # not ended yet
        limit = self._limit
        for block in blocks:
            if block[:6] == "data: " and "\n" not in block:
                name, data = "message", block[6:]
            elif block[:7] == "event: " and (newline := block.find("\n")) > 0 and block[
                newline + 1:newline + 7
            ] == "data: " and block.find("\n", newline + 1) < 0:
                name, data = block[7:newline] or "message", block[newline + 7:]
            else:
                self._lines(block + "\n\n", events)
                continue
            if limit is not None and len(data) > limit:
                self._too_large()
            events.append(_new_event(ServerSentEvent, (name, data, self._last_id, None)))
        if tail:
            self._lines(tail, events)

    def _lines(self, text: str, events: list[ServerSentEvent]) -> None:
        # str.split, not splitlines(): that one also breaks at \x0b, \x1c, \u2028 and more.
        lines = text.split("\n")
        tail = lines.pop()
        if not lines:
            # Still inside one line: keep the piece, and touch none of the earlier ones.
            self._pending.append(tail)
            self._pending_size += len(tail)
            self._check_size()
            return
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = "".join(self._pending)
            self._pending = []
        if tail:
            self._pending.append(tail)
        self._pending_size = len(tail)
        data = self._data
        for line in lines:
            # The usual lines first, without the general field parsing: a data line, and the
            # blank line that ends an event (_dispatch, inlined: this runs once per token).
            if line[:6] == "data: ":
                data.append(line[6:])
            elif not line and data:
                joined = data[0] if len(data) == 1 else "\n".join(data)
                if self._limit is not None and len(joined) > self._limit:
                    self._too_large()  # an event that arrived whole within one piece
                events.append(_new_event(
                    ServerSentEvent, (self._event or "message", joined, self._last_id, self._retry)
                ))
                data = self._data = []
                self._data_size = self._counted = 0
                self._event = ""
                self._retry = None
            else:
                self._line(line, events)
                data = self._data
        if data:
            # An event still open at the end of this piece: count the lines it gained.
            self._data_size += sum(map(len, data[self._counted:]))
            self._counted = len(data)
        self._check_size()

    def _check_size(self) -> None:
        limit = self._limit
        if limit is not None and self._data_size + self._pending_size > limit:
            self._too_large()

    def _too_large(self) -> None:
        raise StreamProtocolError(
            f"the stream sent an event larger than max_event_size={self._limit} characters; "
            "pass a larger max_event_size to the model if such events are expected"
        )

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
            data = "\n".join(self._data)
            if self._limit is not None and len(data) > self._limit:
                self._too_large()  # an event that arrived whole within one piece
            events.append(_new_event(
                ServerSentEvent, (self._event or "message", data, self._last_id, self._retry)
            ))
            self._data = []
            self._data_size = self._counted = 0
        self._event = ""
        self._retry = None
