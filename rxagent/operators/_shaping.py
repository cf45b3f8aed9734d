"""Shaping a run's stream for whoever shows it: fewer parts, steadier text, calmer progress.

- :func:`coalesce` merges the chunks of a model call into fewer, bigger ones (a UI that
  redraws per part redraws less), without changing the message they add up to.
- :func:`smooth` re-cuts the text of a model call into words (or lines, or regex matches) and
  releases them at a steady pace, as Vercel's ``smoothStream`` does.
- :func:`throttle_latest` lets at most one item through per interval, the latest one, for
  progress-like custom events.

Timers run on a scheduler (the one given, else the subscription's, else reactivex's
``TimeoutScheduler``), so all three can be tested in virtual time. Timer callbacks come from
other threads: every observer call is made under a per-subscription lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from .._chunks import make_chunk
from .._exceptions import UsageError
from .._messages import AIMessageChunk, ChunkAccumulator
from .._types import StreamPart
from ._timeouts import check_seconds, pick_scheduler

__all__ = ["coalesce", "smooth", "throttle_latest"]

_T = TypeVar("_T")

PartOperator = Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[StreamPart]]


def _model_chunk(part: Any) -> tuple[AIMessageChunk, Any] | None:
    """``(chunk, metadata)`` when ``part`` is a ``messages`` part carrying a model's chunk."""
    if not isinstance(part, dict) or part.get("type") != "messages":
        return None
    data = part.get("data")
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], AIMessageChunk):
        return data[0], data[1]
    return None


# -- coalesce ----------------------------------------------------------------------------------


def coalesce(
    max_latency: float,
    max_items: int | None = None,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> PartOperator:
    """Merge consecutive chunks of one model call into one ``messages`` part.

    Chunks of the same call (the same metadata object) that follow each other are added up
    (``c1 + c2 + ...``), so the merged chunks add up to the same message as the originals. A
    merged part goes out when ``max_latency`` seconds have passed since its first chunk
    arrived, when it holds ``max_items`` chunks, when the call's last chunk arrives (which
    stays the last, with its finish reason and usage), when any other part arrives (the
    merged part first, then that one), or when the source ends or fails (before the error:
    nothing is lost). A group of one chunk goes out as the part it came in.

    ::

        -a-b-u-c-d-e-f-L-|     a..f, L: chunks of one model call (L its last); u: an update
             coalesce(5, max_items=3)
        -----X-----Y---Z-|     X: a+b, then u;  Y: c+d+e (max_items);  Z: f+L (the last)

    Args:
        max_latency: the longest a chunk waits for others to join it, in seconds.
        max_items: the most chunks merged into one part; ``None`` for no limit.
        scheduler: where the latency timer runs.

    Raises:
        UsageError: ``max_latency`` is not a positive number, or ``max_items`` not a positive
            int.
    """
    latency = check_seconds("max_latency", max_latency)
    if max_items is not None and (
        isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1
    ):
        raise UsageError(f"max_items must be a positive int or None, got {max_items!r}")
    limit = max_items if max_items is not None else 0

    def operator(source: reactivex.Observable[StreamPart]) -> reactivex.Observable[StreamPart]:
        def subscribe(
            observer: abc.ObserverBase[StreamPart],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, subscribe_scheduler)
            lock = threading.RLock()
            timer = SerialDisposable()
            accumulator = ChunkAccumulator()
            first: StreamPart | None = None  # the group's first part; None: no group open
            first_chunk: AIMessageChunk | None = None
            metadata: Any = None
            count = 0
            group = 0  # numbers the groups, so that a late timer leaves the next one alone
            stopped = False

            def flush() -> None:
                # With the lock held.
                nonlocal first, first_chunk, count
                if first is None:
                    return
                part = first
                if count > 1:
                    part = {**first, "data": (accumulator.snapshot(), metadata)}
                    accumulator.clear()
                first = first_chunk = None
                count = 0
                timer.disposable = Disposable()
                observer.on_next(part)

            def on_timer(due: int) -> Callable[[abc.SchedulerBase, Any], None]:
                def fire(_: abc.SchedulerBase, __: Any = None) -> None:
                    with lock:
                        if not stopped and group == due:
                            flush()

                return fire

            def on_next(part: StreamPart) -> None:
                nonlocal first, first_chunk, metadata, count, group
                with lock:
                    found = _model_chunk(part)
                    if found is None:
                        flush()
                        observer.on_next(part)
                        return
                    chunk, call = found
                    if first is not None and call is not metadata:
                        flush()
                    if first is None:
                        first, first_chunk, metadata, count = part, chunk, call, 1
                        group += 1
                    else:
                        if count == 1:
                            assert first_chunk is not None
                            accumulator.add(first_chunk)
                        accumulator.add(chunk)
                        count += 1
                    if chunk.chunk_position == "last" or count == limit:
                        flush()
                    elif count == 1:
                        timer.disposable = clock.schedule_relative(latency, on_timer(group))

            def on_error(error: Exception) -> None:
                with lock:
                    flush()
                    observer.on_error(error)

            def on_completed() -> None:
                with lock:
                    flush()
                    observer.on_completed()

            def stop() -> None:
                nonlocal stopped
                stopped = True

            upstream = source.subscribe(
                on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(Disposable(stop), timer, upstream)

        return reactivex.create(subscribe)

    return operator


# -- smooth ------------------------------------------------------------------------------------

# Scripts written without spaces between words: each character is a word of its own.
# (CJK radicals, symbols and punctuation, Hiragana, Katakana, Bopomofo, Hangul, CJK
# ideographs and their extensions, fullwidth forms; U+3000, the ideographic space, is left
# to be whitespace.)
_CJK = (
    "\u1100-\u11ff\u2e80-\u2fff\u3001-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u4dbf"
    "\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0003134f"
)
# Matched at the start of the buffered text, so a long word costs one scan per chunk, not
# one per starting position. Possessive quantifiers keep a failed attempt linear.
_WORD = re.compile(rf"\s*+(?:[{_CJK}]|[^\s{_CJK}]++(?:\s++|(?=[{_CJK}])))")
_LINE = re.compile(r"[^\n]*+\n++")


def _cutter(chunking: str | re.Pattern[str]) -> Callable[[str], int]:
    """A function giving the length of the first complete piece of a text (0: none yet)."""
    if chunking == "word" or chunking == "line":
        anchored = _WORD if chunking == "word" else _LINE

        def cut_anchored(text: str) -> int:
            match = anchored.match(text)
            return match.end() if match is not None else 0

        return cut_anchored
    if isinstance(chunking, str):
        try:
            pattern = re.compile(chunking)
        except re.error as error:
            raise UsageError(
                f"chunking is 'word', 'line' or a regular expression; {chunking!r} is none "
                f"({error})"
            ) from error
    elif isinstance(chunking, re.Pattern) and isinstance(chunking.pattern, str):
        pattern = chunking
    else:
        raise UsageError(
            f"chunking is 'word', 'line' or a regular expression, got {chunking!r}"
        )
    if pattern.search("") is not None:
        raise UsageError(
            f"the chunking pattern {pattern.pattern!r} matches the empty string; it must "
            "match at least one character"
        )

    def cut(text: str) -> int:
        # A piece is everything up to the end of the first match, as in smoothStream.
        match = pattern.search(text)
        if match is None:
            return 0
        if match.end() == 0:
            raise UsageError(
                f"the chunking pattern {pattern.pattern!r} matched an empty string at the "
                "start of the text; it must match at least one character"
            )
        return match.end()

    return cut


def _plain_text(chunk: AIMessageChunk) -> str | None:
    """The chunk's text when it carries nothing but text and an id, else ``None``."""
    fields = chunk.__dict__
    content = fields["content"]
    if (
        not isinstance(content, str)
        or fields["tool_call_chunks"]
        or fields["chunk_position"] is not None
        or fields["usage_metadata"] is not None
        or fields["response_metadata"]
        or fields["additional_kwargs"]
        or fields["name"] is not None
    ):
        return None
    return content


def smooth(
    chunking: Literal["word", "line"] | str | re.Pattern[str] = "word",
    delay: float = 0.01,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> PartOperator:
    """Re-cut each model call's text into pieces and release them at a steady pace.

    The text of a model call's chunks is buffered and released one piece at a time, with
    ``delay`` seconds between two pieces: a piece goes out as soon as it is complete and the
    previous one is ``delay`` old. Pieces, as in Vercel's ``smoothStream``:

    - ``"word"``: a word with the whitespace before and after it (``" brown "``); characters
      of scripts written without spaces (Chinese, Japanese, Korean) are words on their own,
      so such text flows too;
    - ``"line"``: everything up to and including a run of newlines;
    - a regular expression (``str`` or compiled): everything up to the end of its first match.

    Pieces go out as ``messages`` parts with ``AIMessageChunk(content=piece, id=<the
    chunk's id>)`` and the call's own metadata object. A chunk that carries anything else
    (tool-call fragments, ``chunk_position="last"`` with the finish reason and usage, block
    content, metadata) and any other part first release all the buffered text at once, as
    one piece, then pass through unchanged; so does the end of the stream, and an error.
    Empty text chunks are dropped. The pieces add up to the same message as the originals.

    ::

        -T---------L-|      T: "The quick brown fox";  L: the call's last chunk
           smooth("word", 2)
        -a-b-c-----L-|      a: "The ", b: "quick ", c: "brown ";  at L: "fox", then L

    Args:
        chunking: ``"word"``, ``"line"``, or a regular expression.
        delay: seconds between two pieces; 0 re-cuts without pacing.
        scheduler: where the pacing timer runs.

    Raises:
        UsageError: an unknown or invalid ``chunking`` (or one that matches the empty string),
            or a negative ``delay``.
    """
    cut = _cutter(chunking)
    pause = check_seconds("delay", delay, allow_zero=True)

    def operator(source: reactivex.Observable[StreamPart]) -> reactivex.Observable[StreamPart]:
        def subscribe(
            observer: abc.ObserverBase[StreamPart],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, subscribe_scheduler)
            lock = threading.RLock()
            timer = SerialDisposable()
            buffer = ""  # the current call's text not released yet
            ns: tuple[str, ...] = ()
            metadata: Any = None
            message_id: str | None = None
            cooling = False  # a piece went out less than ``delay`` ago
            stopped = False

            def emit(piece: str) -> None:
                observer.on_next(
                    {"type": "messages", "ns": ns, "data": (make_chunk(piece, id=message_id),
                                                            metadata)}
                )

            def release() -> None:
                # With the lock held and not cooling: the next complete piece, if any.
                nonlocal buffer, cooling
                end = cut(buffer)
                if not end:
                    return
                piece, buffer = buffer[:end], buffer[end:]
                emit(piece)
                cooling = True
                timer.disposable = clock.schedule_relative(pause, on_tick)

            def release_all() -> None:
                nonlocal buffer
                while pause == 0 and buffer:
                    end = cut(buffer)
                    if not end:
                        break
                    piece, buffer = buffer[:end], buffer[end:]
                    emit(piece)

            def flush() -> None:
                nonlocal buffer
                if buffer:
                    rest, buffer = buffer, ""
                    emit(rest)

            def on_tick(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal cooling
                with lock:
                    cooling = False
                    if stopped:
                        return
                    try:
                        release()
                    except Exception as error:
                        fail(error)

            def fail(error: Exception) -> None:
                nonlocal stopped, buffer
                stopped = True
                buffer = ""
                timer.dispose()
                upstream.dispose()
                observer.on_error(error)

            def on_next(part: StreamPart) -> None:
                nonlocal buffer, ns, metadata, message_id
                with lock:
                    if stopped:
                        return
                    found = _model_chunk(part)
                    text = _plain_text(found[0]) if found is not None else None
                    if found is None or text is None:
                        flush()
                        observer.on_next(part)
                        return
                    if not text:
                        return
                    chunk, call = found
                    if call is not metadata or chunk.id != message_id:
                        flush()
                        ns, metadata, message_id = part["ns"], call, chunk.id
                    buffer += text
                    try:
                        if pause == 0:
                            release_all()
                        elif not cooling:
                            release()
                    except Exception as error:
                        fail(error)

            def on_error(error: Exception) -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    stopped = True
                    timer.dispose()
                    flush()
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    stopped = True
                    timer.dispose()
                    flush()
                    observer.on_completed()

            def stop() -> None:
                nonlocal stopped
                stopped = True

            upstream = SerialDisposable()
            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(Disposable(stop), timer, upstream)

        return reactivex.create(subscribe)

    return operator


# -- throttle_latest ---------------------------------------------------------------------------


def throttle_latest(
    interval: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[reactivex.Observable[_T]], reactivex.Observable[_T]]:
    """At most one item per ``interval``: the first at once, then the latest of each window.

    An item arriving when no window is open goes out at once and opens a window of
    ``interval`` seconds; items arriving during the window replace each other, and the
    latest goes out when the window ends (opening the next one). Nothing is lost at the end:
    a pending item goes out before ``on_completed`` (and before an error).

    ::

        -abc------de---|
          throttle_latest(4)
        -a---c----d---e|

    Args:
        interval: the window, in seconds.
        scheduler: where the window timer runs.

    Raises:
        UsageError: ``interval`` is not a positive number.
    """
    window = check_seconds("interval", interval)

    def operator(source: reactivex.Observable[_T]) -> reactivex.Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, subscribe_scheduler)
            lock = threading.RLock()
            timer = SerialDisposable()
            open_window = False
            has_latest = False
            latest: Any = None
            stopped = False

            def take_latest() -> Any:
                nonlocal has_latest, latest
                value, latest, has_latest = latest, None, False
                return value

            def on_window_end(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal open_window
                with lock:
                    if stopped:
                        return
                    if not has_latest:
                        open_window = False
                        return
                    observer.on_next(take_latest())
                    timer.disposable = clock.schedule_relative(window, on_window_end)

            def on_next(item: _T) -> None:
                nonlocal open_window, has_latest, latest
                with lock:
                    if stopped:
                        return
                    if open_window:
                        latest, has_latest = item, True
                        return
                    open_window = True
                    observer.on_next(item)
                    timer.disposable = clock.schedule_relative(window, on_window_end)

            def finish(end: Callable[[], None]) -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    stopped = True
                    timer.dispose()
                    if has_latest:
                        observer.on_next(take_latest())
                    end()

            def on_error(error: Exception) -> None:
                finish(lambda: observer.on_error(error))

            def on_completed() -> None:
                finish(observer.on_completed)

            def stop() -> None:
                nonlocal stopped
                stopped = True

            upstream = source.subscribe(
                on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(Disposable(stop), timer, upstream)

        return reactivex.create(subscribe)

    return operator
