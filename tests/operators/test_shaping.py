"""coalesce(), smooth() and throttle_latest(): in virtual time, as properties, and on real runs."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import reactivex
import reactivex.operators as ops
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import abc
from reactivex.disposable import BooleanDisposable, CompositeDisposable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.mockobserver import MockObserver

from rxagent import StreamPart, UsageError, create_agent
from rxagent.chat_models import make_chunk
from rxagent.messages import AIMessage, AIMessageChunk, ChunkAccumulator, ToolMessage
from rxagent.operators import coalesce, smooth, throttle_latest
from rxagent.testing import ScriptedChatModel

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

HI = {"messages": ["Hi"]}
CALL: dict[str, Any] = {"langgraph_node": "model", "langgraph_step": 1}
OTHER_CALL: dict[str, Any] = {"langgraph_node": "model", "langgraph_step": 3}
USAGE = {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}


class SpyScheduler(TestScheduler):
    """A TestScheduler that keeps a flag per timer, set when the timer is disposed."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[BooleanDisposable] = []

    def schedule_relative(
        self, duetime: Any, action: abc.ScheduledAction[Any], state: Any = None
    ) -> abc.DisposableBase:
        flag = BooleanDisposable()
        self.timers.append(flag)
        return CompositeDisposable(super().schedule_relative(duetime, action, state), flag)


def part(
    text: str = "",
    call: dict[str, Any] = CALL,
    *,
    last: bool = False,
    fragments: list[Any] | None = None,
    ns: tuple[str, ...] = (),
    message_id: str = "run-1",
) -> StreamPart:
    chunk = make_chunk(
        text,
        id=message_id,
        tool_call_chunks=fragments,
        chunk_position="last" if last else None,
        usage_metadata=dict(USAGE) if last else None,  # type: ignore[arg-type]
        response_metadata={"finish_reason": "stop"} if last else None,
    )
    return {"type": "messages", "ns": ns, "data": (chunk, call)}


def custom(data: Any) -> StreamPart:
    return {"type": "custom", "ns": (), "data": data}


def describe(item: Any) -> Any:
    """A part as something easy to compare: the chunk's text (``+L`` when last), or
    ``"type:data"``."""
    if isinstance(item, dict) and item.get("type") == "messages":
        chunk = item["data"][0]
        if isinstance(chunk, AIMessageChunk):
            return chunk.text + ("+L" if chunk.chunk_position == "last" else "")
    if isinstance(item, dict):
        return f"{item['type']}:{item['data']}"
    return item


def timeline(observer: MockObserver[Any]) -> list[tuple[float, Any]]:
    """The observer's messages as ``(time, description)``; ``"|"`` completes, an error is
    its exception."""
    out: list[tuple[float, Any]] = []
    for message in observer.messages:
        notification = message.value
        if notification.kind == "N":
            out.append((message.time, describe(notification.value)))
        elif notification.kind == "E":
            out.append((message.time, notification.exception))
        else:
            out.append((message.time, "|"))
    return out


def values(observer: MockObserver[Any]) -> list[Any]:
    return [m.value.value for m in observer.messages if m.value.kind == "N"]


def chunks_of(parts: Sequence[Any]) -> list[AIMessageChunk]:
    return [
        p["data"][0]
        for p in parts
        if p["type"] == "messages" and isinstance(p["data"][0], AIMessageChunk)
    ]


def merged(chunks: Sequence[AIMessageChunk]) -> AIMessage:
    accumulator = ChunkAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    return accumulator.to_message()


def run_hot(
    operator: Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]],
    *messages: Any,
    scheduler: TestScheduler | None = None,
    disposed: float | None = None,
) -> MockObserver[Any]:
    scheduler = scheduler or TestScheduler()
    source = scheduler.create_hot_observable(*messages)
    return scheduler.start(lambda: source.pipe(operator), disposed=disposed)


# -- coalesce ------------------------------------------------------------------------------------


def test_coalesce_merges_chunks_until_the_latency_runs_out() -> None:
    observer = run_hot(
        coalesce(5),
        on_next(210, part("a")), on_next(211, part("b")), on_next(212, part("c")),
        on_next(220, part("d")),
        on_completed(300),
    )
    assert timeline(observer) == [(215, "abc"), (225, "d"), (300, "|")]
    first = values(observer)[0]
    assert first["data"][1] is CALL, "the merged part keeps the call's metadata object"
    assert first["data"][0].id == "run-1"


def test_coalesce_flushes_every_max_items_chunks() -> None:
    observer = run_hot(
        coalesce(50, max_items=2),
        *[on_next(210 + i, part(str(i))) for i in range(5)],
        on_completed(230),
    )
    assert timeline(observer) == [(211, "01"), (213, "23"), (230, "4"), (230, "|")]


def test_coalesce_flushes_before_any_other_part_in_order() -> None:
    tool_message = ToolMessage(content="sunny", tool_call_id="call_1")
    tool_part: StreamPart = {"type": "messages", "ns": (), "data": (tool_message, OTHER_CALL)}
    observer = run_hot(
        coalesce(50),
        on_next(210, part("a")), on_next(211, part("b")),
        on_next(212, custom("progress")),
        on_next(213, part("c")),
        on_next(214, tool_part),
        on_completed(230),
    )
    assert timeline(observer) == [
        (212, "ab"), (212, "custom:progress"), (214, "c"), (214, describe(tool_part)),
        (230, "|"),
    ]
    assert values(observer)[3] is tool_part


def test_coalesce_keeps_calls_apart() -> None:
    observer = run_hot(
        coalesce(5),
        on_next(210, part("a", CALL)), on_next(211, part("b", CALL)),
        on_next(212, part("x", OTHER_CALL)), on_next(213, part("y", OTHER_CALL)),
        on_next(214, part("c", CALL)),
        on_completed(230),
    )
    assert timeline(observer) == [(212, "ab"), (214, "xy"), (219, "c"), (230, "|")]
    assert [p["data"][1] for p in values(observer)] == [CALL, OTHER_CALL, CALL]
    assert values(observer)[1]["data"][1] is OTHER_CALL


def test_coalesce_tells_calls_apart_by_identity_not_equality() -> None:
    twin = dict(CALL)  # equal, but another call
    observer = run_hot(
        coalesce(5),
        on_next(210, part("a", CALL)), on_next(211, part("b", twin)),
        on_completed(230),
    )
    assert timeline(observer) == [(211, "a"), (216, "b"), (230, "|")]


def test_coalesce_flushes_at_the_last_chunk_which_stays_last_with_its_usage() -> None:
    header = {"name": "get_weather", "args": "", "id": "call_1", "index": 0,
              "type": "tool_call_chunk"}
    args = {"name": None, "args": '{"city": "SF"}', "id": None, "index": 0,
            "type": "tool_call_chunk"}
    observer = run_hot(
        coalesce(50),
        on_next(210, part("Let me check.")),
        on_next(211, part(fragments=[header])),
        on_next(212, part(fragments=[args])),
        on_next(213, part(last=True)),
        on_next(214, custom("after")),
        on_completed(230),
    )
    assert timeline(observer) == [(213, "Let me check.+L"), (214, "custom:after"), (230, "|")]
    chunk = values(observer)[0]["data"][0]
    assert chunk.chunk_position == "last"
    assert chunk.usage_metadata == USAGE
    assert chunk.response_metadata["finish_reason"] == "stop"
    assert chunk.tool_calls == [
        {"name": "get_weather", "args": {"city": "SF"}, "id": "call_1", "type": "tool_call"}
    ]


def test_a_group_of_one_goes_out_as_the_part_it_came_in() -> None:
    alone = part("a")
    observer = run_hot(coalesce(5), on_next(210, alone), on_completed(230))
    assert values(observer)[0] is alone


def test_coalesce_flushes_at_completion() -> None:
    observer = run_hot(
        coalesce(50), on_next(210, part("a")), on_next(211, part("b")), on_completed(212)
    )
    assert timeline(observer) == [(212, "ab"), (212, "|")]


def test_coalesce_flushes_before_an_error() -> None:
    boom = RuntimeError("boom")
    observer = run_hot(
        coalesce(50), on_next(210, part("a")), on_next(211, part("b")), on_error(212, boom)
    )
    assert timeline(observer) == [(212, "ab"), (212, boom)]


def test_coalesce_passes_anything_else_through() -> None:
    observer = run_hot(
        coalesce(5), on_next(210, 1), on_next(211, part("a")), on_next(212, "x"),
        on_completed(230),
    )
    assert timeline(observer) == [(210, 1), (212, "a"), (212, "x"), (230, "|")]


def test_coalesce_uses_its_own_scheduler_when_given() -> None:
    own = TestScheduler()
    outer = TestScheduler()
    got: list[Any] = []
    source = outer.create_hot_observable(on_next(210, part("a")), on_next(211, part("b")))
    source.pipe(coalesce(5, scheduler=own)).subscribe(got.append, scheduler=outer)
    outer.advance_to(400)
    assert got == [], "the latency timer is on the other scheduler"
    own.advance_to(5)
    assert [describe(v) for v in got] == ["ab"]


def test_disposing_coalesce_cancels_its_timer() -> None:
    scheduler = SpyScheduler()
    observer = run_hot(
        coalesce(50), on_next(210, part("a")), scheduler=scheduler, disposed=220
    )
    assert observer.messages == []
    assert len(scheduler.timers) == 1
    assert scheduler.timers[0].is_disposed


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0,), "max_latency"), ((-1,), "max_latency"), ((float("nan"),), "max_latency"),
        ((float("inf"),), "max_latency"), (("1",), "max_latency"), ((True,), "max_latency"),
        ((1, 0), "max_items"), ((1, 2.0), "max_items"), ((1, True), "max_items"),
    ],
)
def test_coalesce_checks_its_arguments(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        coalesce(*args)


# Each event: a text chunk, a tool-call argument fragment, or a custom part; then a gap.
_events = st.lists(
    st.tuples(
        st.one_of(
            st.tuples(st.just("text"), st.text(max_size=6)),
            st.tuples(st.just("args"), st.text(alphabet='{}":ab ', max_size=4)),
            st.tuples(st.just("custom"), st.integers(0, 9)),
        ),
        st.integers(0, 7),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    events=_events,
    max_items=st.one_of(st.none(), st.integers(1, 6)),
    max_latency=st.integers(1, 12),
    ends_with_last=st.booleans(),
)
def test_coalesce_never_changes_the_message_or_the_order(
    events: list[tuple[tuple[str, Any], int]],
    max_items: int | None,
    max_latency: int,
    ends_with_last: bool,
) -> None:
    parts: list[StreamPart] = []
    started_call = False
    for (kind, value), _gap in events:
        if kind == "text":
            parts.append(part(value))
        elif kind == "args":
            fragment = {"name": None if started_call else "f", "args": value,
                        "id": None if started_call else "call_1", "index": 0,
                        "type": "tool_call_chunk"}
            started_call = True
            parts.append(part(fragments=[fragment]))
        else:
            parts.append(custom(value))
    if ends_with_last:
        parts.append(part(last=True))
    times = [201]
    for _, gap in events:
        times.append(times[-1] + gap)
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        *[on_next(at, p) for at, p in zip(times, parts, strict=False)],
        on_completed(times[-1] + 1),
    )
    observer = scheduler.start(
        lambda: source.pipe(coalesce(max_latency, max_items)), disposed=100_000
    )
    out = values(observer)
    assert observer.messages[-1].value.kind == "C"

    def text_before_each_custom(items: Sequence[Any]) -> list[tuple[str, Any]]:
        seen, marks = "", []
        for item in items:
            if item["type"] == "custom":
                marks.append((seen, item["data"]))
            else:
                seen += item["data"][0].text
        return marks

    assert text_before_each_custom(out) == text_before_each_custom(parts)
    assert "".join(c.text for c in chunks_of(out)) == "".join(c.text for c in chunks_of(parts))
    assert merged(chunks_of(out)) == merged(chunks_of(parts))
    assert len(chunks_of(out)) <= len(chunks_of(parts))
    if max_items is not None:
        assert len(chunks_of(out)) >= -(-len(chunks_of(parts)) // max_items)
    if ends_with_last and chunks_of(out):
        last = chunks_of(out)[-1]
        assert last.chunk_position == "last" and last.usage_metadata == USAGE
        assert all(c.chunk_position is None for c in chunks_of(out)[:-1])


def test_coalesce_calls_the_observer_one_at_a_time() -> None:
    # The source pushes from its own thread while latency timers fire on timer threads.
    inside = 0
    overlaps = 0
    got: list[str] = []
    done = threading.Event()

    def record(item: StreamPart) -> None:
        nonlocal inside, overlaps
        inside += 1
        if inside > 1:
            overlaps += 1
        time.sleep(0.001)  # a slow consumer: another thread would get in now, if it could
        got.append(item["data"][0].text)
        inside -= 1

    def produce(observer: abc.ObserverBase[StreamPart], scheduler: Any = None
                ) -> abc.DisposableBase:
        def push() -> None:
            for i in range(200):
                observer.on_next(part(f"{i} "))
                if i % 3 == 0:
                    time.sleep(0.0003)
            observer.on_completed()

        threading.Thread(target=push).start()
        return reactivex.disposable.Disposable()

    reactivex.create(produce).pipe(coalesce(0.0001)).subscribe(
        record, on_completed=done.set
    )
    assert done.wait(30)
    assert overlaps == 0
    assert "".join(got) == "".join(f"{i} " for i in range(200))


def test_coalesce_on_a_real_run_gives_fewer_chunks_and_the_same_reply() -> None:
    text = "It's always sunny in San Francisco, and the fog rolls in every afternoon."

    def run(*operators: Any) -> list[StreamPart]:
        agent = create_agent(ScriptedChatModel([text]))
        result: list[StreamPart] = agent.observe(HI).pipe(*operators, ops.to_list()).run()
        return result

    plain = run()
    coalesced = run(coalesce(60, max_items=4))
    assert "".join(c.text for c in chunks_of(coalesced)) == text
    assert len(chunks_of(plain)) >= 14  # 13 words and the last chunk, at least
    assert len(chunks_of(coalesced)) == -(-len(chunks_of(plain)) // 4)
    assert merged(chunks_of(coalesced)).content == merged(chunks_of(plain)).content == text
    last = chunks_of(coalesced)[-1]
    assert last.chunk_position == "last"
    assert last.response_metadata["finish_reason"] == "stop"
    assert last.usage_metadata == chunks_of(plain)[-1].usage_metadata
    assert [p["type"] for p in coalesced if p["type"] != "messages"] == [
        p["type"] for p in plain if p["type"] != "messages"
    ]


# -- smooth --------------------------------------------------------------------------------------


def smoothed(operator: Any, *messages: Any, **options: Any) -> MockObserver[Any]:
    return run_hot(operator, *messages, **options)


def test_smooth_releases_one_word_per_delay() -> None:
    observer = smoothed(
        smooth("word", 2),
        on_next(210, part("The quick brown fox")),
        on_next(250, part(last=True)),
        on_completed(260),
    )
    assert timeline(observer) == [
        (210, "The "), (212, "quick "), (214, "brown "), (250, "fox"), (250, "+L"), (260, "|"),
    ]


def test_smooth_joins_words_split_across_chunks() -> None:
    observer = smoothed(
        smooth("word", 2),
        on_next(210, part("Hel")), on_next(211, part("lo wor")), on_next(220, part("ld and")),
        on_completed(230),
    )
    assert timeline(observer) == [(211, "Hello "), (220, "world "), (230, "and"), (230, "|")]


def test_smooth_lets_text_without_spaces_flow() -> None:
    observer = smoothed(
        smooth("word", 1), on_next(210, part("你好\uff0c世界")), on_next(211, part("こんにちは")),
        on_completed(300),
    )
    assert timeline(observer) == [
        (210, "你"), (211, "好"), (212, "\uff0c"), (213, "世"), (214, "界"),
        (215, "こ"), (216, "ん"), (217, "に"), (218, "ち"), (219, "は"), (300, "|"),
    ]


def test_smooth_by_line() -> None:
    observer = smoothed(
        smooth("line", 5), on_next(210, part("one\ntwo\n\nthr")), on_next(211, part("ee\n")),
        on_completed(300),
    )
    assert timeline(observer) == [(210, "one\n"), (215, "two\n\n"), (220, "three\n"),
                                  (300, "|")]


@pytest.mark.parametrize("pattern", [r"[.!?]\s*", re.compile(r"[.!?]\s*")])
def test_smooth_by_regular_expression(pattern: str | re.Pattern[str]) -> None:
    observer = smoothed(
        smooth(pattern, 5), on_next(210, part("Hi. How are you? Fi")), on_next(211, part("ne")),
        on_completed(300),
    )
    assert timeline(observer) == [(210, "Hi. "), (215, "How are you? "), (300, "Fine"),
                                  (300, "|")]


def test_smooth_pieces_keep_the_id_the_metadata_object_and_the_namespace() -> None:
    observer = smoothed(
        smooth("word", 1),
        on_next(210, part("a b ", OTHER_CALL, ns=("tools:1",), message_id="run-7")),
        on_completed(300),
    )
    out = values(observer)
    assert [describe(p) for p in out] == ["a ", "b "]
    for item in out:
        chunk, metadata = item["data"]
        assert metadata is OTHER_CALL
        assert chunk == AIMessageChunk(content=chunk.text, id="run-7")
        assert item["ns"] == ("tools:1",)


def test_anything_but_text_releases_the_buffer_at_once_then_passes_unchanged() -> None:
    header = {"name": "f", "args": "{}", "id": "call_1", "index": 0, "type": "tool_call_chunk"}
    tool_chunk = part(fragments=[header])
    observer = smoothed(
        smooth("word", 10),
        on_next(210, part("a b c d")),
        on_next(212, custom("progress")),
        on_next(213, part("e f g")),
        on_next(214, tool_chunk),
        on_completed(300),
    )
    assert timeline(observer) == [
        (210, "a "), (212, "b c d"), (212, "custom:progress"), (214, "e f g"), (214, ""),
        (300, "|"),
    ]
    assert values(observer)[-1] is tool_chunk


def test_a_new_call_releases_the_previous_calls_text() -> None:
    observer = smoothed(
        smooth("word", 10),
        on_next(210, part("a b c", CALL)), on_next(212, part("x y", OTHER_CALL)),
        on_completed(300),
    )
    assert timeline(observer) == [(210, "a "), (212, "b c"), (220, "x "), (300, "y"),
                                  (300, "|")]
    assert [p["data"][1] for p in values(observer)] == [CALL, CALL, OTHER_CALL, OTHER_CALL]


def test_smooth_releases_the_buffer_before_an_error() -> None:
    boom = RuntimeError("boom")
    observer = smoothed(smooth("word", 10), on_next(210, part("a b c")), on_error(212, boom))
    assert timeline(observer) == [(210, "a "), (212, "b c"), (212, boom)]


def test_smooth_with_no_delay_only_re_cuts() -> None:
    scheduler = SpyScheduler()
    observer = smoothed(
        smooth("word", 0), on_next(210, part("a b c")), on_next(211, part(" d ")),
        on_completed(300), scheduler=scheduler,
    )
    assert timeline(observer) == [(210, "a "), (210, "b "), (211, "c "), (211, "d "), (300, "|")]
    assert scheduler.timers == []


def test_smooth_drops_empty_text_chunks() -> None:
    observer = smoothed(
        smooth("word", 1), on_next(210, part("")), on_next(211, part("a")), on_completed(300)
    )
    assert timeline(observer) == [(300, "a"), (300, "|")]


def test_disposing_smooth_cancels_its_timer() -> None:
    scheduler = SpyScheduler()
    observer = smoothed(
        smooth("word", 50), on_next(210, part("a b c")), scheduler=scheduler, disposed=220
    )
    assert timeline(observer) == [(210, "a ")]
    assert len(scheduler.timers) == 1
    assert scheduler.timers[0].is_disposed


def test_a_pattern_that_matches_an_empty_string_later_fails_the_stream() -> None:
    observer = smoothed(smooth(r"\b", 1), on_next(210, part("ab")), on_completed(300))
    (when, error), = timeline(observer)
    assert when == 210
    assert isinstance(error, UsageError) and "empty string" in str(error)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("(",), "regular expression"),
        ((r"\s*",), "empty string"),
        ((42,), "regular expression"),
        ((re.compile(b"x"),), "regular expression"),
        (("word", -1), "delay"),
        (("word", float("nan")), "delay"),
    ],
)
def test_smooth_checks_its_arguments(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        smooth(*args)


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(max_size=12), max_size=15),
    gaps=st.lists(st.integers(0, 5), min_size=15, max_size=15),
    chunking=st.sampled_from(["word", "line", r"[,.]"]),
    delay=st.integers(0, 4),
)
def test_smooth_never_changes_the_text_or_the_message(
    texts: list[str], gaps: list[int], chunking: str, delay: int
) -> None:
    parts = [part(text) for text in texts] + [part(last=True)]
    times = [201]
    for gap in gaps[: len(parts) - 1]:
        times.append(times[-1] + gap)
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        *[on_next(at, p) for at, p in zip(times, parts, strict=True)],
        on_completed(times[-1] + 1),
    )
    observer = scheduler.start(lambda: source.pipe(smooth(chunking, delay)), disposed=100_000)
    out = values(observer)
    assert "".join(c.text for c in chunks_of(out)) == "".join(texts)
    assert merged(chunks_of(out)) == merged(chunks_of(parts))
    assert chunks_of(out)[-1] is chunks_of(parts)[-1]
    assert all(c.text for c in chunks_of(out)[:-1]), "no empty pieces"


def test_smooth_on_a_real_run_re_cuts_the_words() -> None:
    text = "It's always sunny in San Francisco!"
    agent = create_agent(ScriptedChatModel([text]))
    # No pacing: how the pieces fall would otherwise depend on the wall clock.
    result = agent.observe(HI).pipe(smooth("word", 0), ops.to_list()).run()
    chunks = chunks_of(result)
    assert [c.text for c in chunks] == [
        "It's ", "always ", "sunny ", "in ", "San ", "Francisco!", "",
    ]
    assert chunks[-1].chunk_position == "last"
    assert merged(chunks).content == text


# -- throttle_latest -----------------------------------------------------------------------------


def test_throttle_latest_gives_the_first_at_once_then_the_latest_per_window() -> None:
    observer = run_hot(
        throttle_latest(5),
        on_next(210, "a"), on_next(211, "b"), on_next(212, "c"),
        on_next(222, "d"), on_next(224, "e"),
        on_completed(225),
    )
    assert timeline(observer) == [
        (210, "a"), (215, "c"), (222, "d"), (225, "e"), (225, "|"),
    ]


def test_throttle_latest_gives_at_most_one_item_per_interval() -> None:
    # An item every tick; windows of 4.3 ticks end between items.
    observer = run_hot(
        throttle_latest(4.3),
        *[on_next(at, at) for at in range(210, 230)],
        on_completed(230),
    )
    out = timeline(observer)
    assert [value for _, value in out] == [210, 214, 218, 222, 227, 229, "|"]
    assert [when for when, _ in out] == pytest.approx([210, 214.3, 218.6, 222.9, 227.2, 230, 230])


def test_throttle_latest_sends_the_pending_item_before_an_error() -> None:
    boom = RuntimeError("boom")
    observer = run_hot(
        throttle_latest(5), on_next(210, 1), on_next(211, 2), on_error(212, boom)
    )
    assert timeline(observer) == [(210, 1), (212, 2), (212, boom)]


def test_disposing_throttle_latest_cancels_its_timer() -> None:
    scheduler = SpyScheduler()
    run_hot(throttle_latest(50), on_next(210, 1), scheduler=scheduler, disposed=220)
    assert len(scheduler.timers) == 1 and scheduler.timers[0].is_disposed


@pytest.mark.parametrize("interval", [0, -1, float("inf"), "1"])
def test_throttle_latest_checks_its_interval(interval: Any) -> None:
    with pytest.raises(UsageError, match="interval"):
        throttle_latest(interval)
