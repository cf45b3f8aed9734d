"""The reply delivered so far: what a model call hands its consumer, kept for the partial reply.

One :class:`DeliveredReply` per call (``_http.py``'s ``_Call`` holds it). Every chunk goes out
through it, so it alone knows whether the reply has started (then no retry) and what the
:class:`~rxagent.ModelCallError` of a failure carries as ``partial``.

**The per-token fast path, and why it is here.** On the wire, most events are a token of
text or a piece of a tool call's arguments, and a call per event for parsing it, one for
delivering it and one for adding it to the partial reply cost more than the JSON itself
(``bench/instructions.py``, the wire workloads). So a wire parser may take a whole read's
events in one loop (``on_events``; both of ours do, and take them as two columns of names
and data with ``on_columns``, as ``SSEDecoder.feed_columns`` cuts them, so that no object is
made per event) and, for those two kinds of event:

- emit the chunk :func:`~rxagent._chunks.text_chunk` or :func:`~rxagent._chunks.fragment_chunk`
  builds, itself, with :attr:`DeliveredReply.emit`;
- append the text to :attr:`~DeliveredReply.texts` or the fragment to
  :attr:`~DeliveredReply.fragments`, instead of adding the chunk to an accumulator;
- or append a further piece of a begun call's arguments straight to that call's pieces
  (:meth:`~DeliveredReply.arguments_of`, looked up once per run of pieces of one call), so
  that a read keeps no fragment dict alive until it ends: a read's worth of them (500 and
  more) kept the young collections busy on a sync stream, whose consumer holds up to 64
  chunks besides (``bench/providers.py``'s Anthropic tool call through ``stream()``).

This duplicates :meth:`DeliveredReply.deliver` (``ChunkAccumulator.add``, then ``emit``) for
those two chunk shapes. The pieces are merged once per read (:meth:`~DeliveredReply.settle`),
and always before any other chunk, through ``ChunkMerger.add_pieces``, which gives what
``add`` on each chunk would; a piece appended to its call's pieces is merged at once, as
``add`` would merge it. ``tests/chat_models/test_fast_path.py`` checks, for each wire
format and every kind of event, that a stream read through the fast path delivers the same
chunks, and keeps the same partial reply, as one read an event at a time through
``on_event`` and :meth:`~DeliveredReply.deliver`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._exceptions import RxAgentError
from .._messages import AIMessageChunk, ChunkAccumulator, ToolCallChunk
from ._errors import wire_failure

__all__ = ["DeliveredReply", "EventsReader", "events_reader"]

EventsReader = Callable[[Sequence[Any], "DeliveredReply"], bool]
"""Delivers the chunks of one read's events, up to the end marker; whether any went out."""


class _Parser(Protocol):
    # WireParser, as far as reading events goes (``_http.py`` defines it and imports this).
    @property
    def finished(self) -> bool: ...

    def on_event(self, event: Any) -> AIMessageChunk | None: ...


class DeliveredReply:
    """A call's chunks on their way out, and the partial reply they add up to.

    Args:
        emit: hands a chunk to the consumer.
        keep: the accumulator to keep the reply in (a fresh one if ``None``): a caller that
            wants the whole reply reads it there once the call has ended, and adds up no
            chunk itself (``BaseChatModel._reply_prepared``).

    Attributes:
        emit: hands a chunk to the consumer.
        texts: the text tokens a fast path emitted since the last :meth:`settle`.
        fragments: the tool-call fragments a fast path emitted since then.
        piece_id: the message id of those chunks (set by the fast path).
    """

    __slots__ = ("_accumulator", "emit", "fragments", "opened", "piece_id", "texts")

    def __init__(
        self, emit: Callable[[AIMessageChunk], None], keep: ChunkAccumulator | None = None
    ) -> None:
        self.emit = emit
        self.texts: list[str] = []
        self.fragments: list[ToolCallChunk] = []
        self.piece_id: str | None = None
        # ``keep``: the caller's own, which then needs no chunk of its own (an agent's step).
        self._accumulator = ChunkAccumulator() if keep is None else keep
        self.opened = False

    def open(self, chunk: AIMessageChunk) -> None:
        """Hand the consumer the empty chunk a reply opens with, once per call (a retried
        attempt opens again): it neither starts the reply (a failure may still be retried,
        the first-token deadline still runs) nor joins the partial reply."""
        if not self.opened:
            self.opened = True
            self.emit(chunk)

    @property
    def started(self) -> bool:
        """Whether a chunk has gone out (then no retry)."""
        return bool(self.texts or self.fragments) or not self._accumulator.empty

    def deliver(self, chunk: AIMessageChunk) -> None:
        """Keep a chunk for the partial reply, and hand it to the consumer."""
        if self.texts or self.fragments:
            self.settle()
        self._accumulator.add(chunk)
        self.emit(chunk)

    def settle(self) -> None:
        """Merge the pieces a fast path emitted into the partial reply (once per read)."""
        texts, fragments = self.texts, self.fragments
        if texts or fragments:
            self._accumulator.add_pieces(texts, fragments, self.piece_id)  # type: ignore[arg-type]
            texts.clear()
            fragments.clear()

    def arguments_of(self, index: int) -> list[str] | None:
        """Where a fast path appends a further piece of the arguments of the latest tool call
        of ``index``, once its chunk has gone out: ``ChunkAccumulator.arguments_of``, after the
        pieces kept so far are merged. Valid until the next :meth:`deliver` or :meth:`settle`
        (which may begin another call of that index); ``None``: keep the fragment in
        :attr:`fragments`."""
        self.settle()
        return self._accumulator.arguments_of(index)

    def snapshot(self) -> AIMessageChunk:
        """The reply delivered so far, as one merged chunk."""
        self.settle()
        return self._accumulator.snapshot()


def events_reader(parser: _Parser, label: str) -> EventsReader:
    """How a read's events reach the reply: the parser's own ``on_events`` (the fast path
    above), or else each event through ``on_event`` and :meth:`DeliveredReply.deliver`.

    Either way, an exception from outside the tree that parsing raises becomes
    :func:`~._errors.wire_failure` (``label`` names the provider); one that delivering
    raises (the consumer's) goes on as it is.
    """
    fast: EventsReader | None = getattr(parser, "on_events", None)
    if fast is not None:
        return fast
    on_event = parser.on_event

    def each(events: Sequence[Any], reply: DeliveredReply) -> bool:
        produced = False
        for event in events:
            try:
                chunk = on_event(event)
            except RxAgentError:
                raise
            except Exception as exc:
                raise wire_failure(label, exc) from exc
            if chunk is not None:
                reply.deliver(chunk)
                produced = True
            elif getattr(parser, "opening", None) is not None:  # (see WireParser.opening)
                reply.open(parser.opening)  # type: ignore[attr-defined]
                parser.opening = None  # type: ignore[attr-defined]
            if parser.finished:
                break
        return produced

    return each
