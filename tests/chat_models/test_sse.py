"""The server-sent-events decoder: the spec's line rules, and any split of the bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagent import StreamProtocolError, UsageError
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, ServerSentEvent, SSEDecoder

from .loopback import Reply, serve


def decode(*pieces: bytes, max_event_size: int | None = 2**24) -> list[ServerSentEvent]:
    # Every case also checks feed_columns: the same events' names and data, fed alike.
    decoder = SSEDecoder(max_event_size=max_event_size)
    by_columns = SSEDecoder(max_event_size=max_event_size)
    events: list[ServerSentEvent] = []
    names: list[str] = []
    datas: list[str] = []
    for piece in pieces:
        events += decoder.feed(piece)
        more_names, more_datas = by_columns.feed_columns(piece)
        names += more_names
        datas += more_datas
    events += decoder.flush()
    more_names, more_datas = by_columns.flush_columns()
    assert ([e.event for e in events], [e.data for e in events]) == (
        names + more_names, datas + more_datas
    )
    return events


def test_data_events_with_and_without_the_space() -> None:
    events = decode(b"data: {\"a\": 1}\n\ndata:{\"b\": 2}\n\ndata:  two spaces\n\n")
    assert [e.data for e in events] == ['{"a": 1}', '{"b": 2}', " two spaces"]
    assert all(e.event == "message" and e.id is None and e.retry is None for e in events)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The events read whole (a data line, alone or after an event line) and their near
        # misses, which go line by line: each must come out as the general way reads it.
        ("event: \ndata: x\n\n", [ServerSentEvent("message", "x")]),  # an empty name
        ("event: a\ndata: x\n\n", [ServerSentEvent("a", "x")]),
        ("event: a\ndata: x\ndata: y\n\n", [ServerSentEvent("a", "x\ny")]),
        ("event: a\n\n", []),
        ("event: a\nid: 3\n\ndata: x\n\n", [ServerSentEvent("message", "x", "3")]),
        ("event:a\ndata:x\n\n", [ServerSentEvent("a", "x")]),
        ("data: x\nevent: a\n\n", [ServerSentEvent("a", "x")]),
        ("data: \n\ndata: : x\n\n", [ServerSentEvent("message", ""),
                                      ServerSentEvent("message", ": x")]),
        ("\n\n\ndata: x\n\n\n\n", [ServerSentEvent("message", "x")]),
        ("retry: 5\ndata: x\n\ndata: y\n\n", [ServerSentEvent("message", "x", retry=5),
                                               ServerSentEvent("message", "y")]),
    ],
)
def test_events_read_whole_come_out_as_read_line_by_line(
    text: str, expected: list[ServerSentEvent]
) -> None:
    raw = text.encode()
    assert decode(raw) == expected
    assert decode(*[raw[i:i + 1] for i in range(len(raw))]) == expected
    assert decode(b"data: 0\n\n" + raw) == [ServerSentEvent("message", "0"), *expected]


def test_lf_crlf_and_cr_line_endings_give_the_same_events() -> None:
    text = "event: a\ndata: 1\n\nevent: b\ndata: 2\ndata: 3\n\n"
    expected = [ServerSentEvent("a", "1"), ServerSentEvent("b", "2\n3")]
    for ending in ("\n", "\r\n", "\r"):
        assert decode(text.replace("\n", ending).encode()) == expected


def test_a_crlf_split_between_two_reads_is_one_line_end() -> None:
    assert decode(b"data: x\r", b"\n\r", b"\n") == [ServerSentEvent("message", "x")]
    # A lone CR at the end of a read, then more data: still one line end.
    assert decode(b"data: x\r", b"\rdata: y\r\r") == [
        ServerSentEvent("message", "x"), ServerSentEvent("message", "y")
    ]


def test_comments_are_skipped() -> None:
    events = decode(b": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: 1\n: note\ndata: 2\n\n")
    assert events == [ServerSentEvent("message", "1\n2")]


def test_multi_line_data_joins_with_newlines_and_empty_data_counts() -> None:
    assert decode(b"data: a\ndata:\ndata: b\n\n") == [ServerSentEvent("message", "a\n\nb")]
    assert decode(b"data\n\n") == [ServerSentEvent("message", "")]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\ndata: 1\n\n") == [ServerSentEvent("message", "1")]


def test_id_carries_over_and_retry_belongs_to_its_event() -> None:
    events = decode(b"id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert events == [
        ServerSentEvent("message", "a", "7", 1500),
        ServerSentEvent("message", "b", "7", None),
        ServerSentEvent("message", "c", "", None),
    ]


def test_invalid_id_and_retry_are_ignored() -> None:
    events = decode(b"id: a\0b\nretry: 12x\nretry: \xd9\xa3\ndata: a\n\n")
    assert events == [ServerSentEvent("message", "a", None, None)]


def test_unknown_fields_are_ignored_and_a_bare_field_name_has_an_empty_value() -> None:
    assert decode(b"foo: bar\nevent\ndata: 1\n\n") == [ServerSentEvent("message", "1")]


def test_utf8_split_inside_a_character() -> None:
    raw = "data: naïve 日本 🎉\n\n".encode()
    assert decode(*[raw[i:i + 1] for i in range(len(raw))]) == [
        ServerSentEvent("message", "naïve 日本 🎉")
    ]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: a\xffb\n\n") == [ServerSentEvent("message", "a\ufffdb")]


def test_a_leading_byte_order_mark_is_skipped_even_when_split() -> None:
    assert decode(b"\xef\xbb", b"\xbfdata: 1\n\n") == [ServerSentEvent("message", "1")]
    # Only at the very start.
    assert decode(b"data: \xef\xbb\xbf1\n\n") == [ServerSentEvent("message", "\ufeff1")]


def test_the_stream_ending_without_a_blank_line_still_flushes_the_last_event() -> None:
    assert decode(b"data: 1\n\ndata: 2") == [
        ServerSentEvent("message", "1"), ServerSentEvent("message", "2")
    ]
    assert decode(b"data: 1\n\ndata: 2\n") == [
        ServerSentEvent("message", "1"), ServerSentEvent("message", "2")
    ]
    assert decode(b"data: 1\r") == [ServerSentEvent("message", "1")]
    assert decode(b"") == []


def test_feed_returns_events_as_soon_as_they_are_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n") == []
    assert decoder.feed(b"\ndata: 2\n\nda") == [
        ServerSentEvent("message", "1"), ServerSentEvent("message", "2")
    ]
    assert decoder.feed(b"ta: 3\n\n") == [ServerSentEvent("message", "3")]
    assert decoder.flush() == []


# -- any split of the same bytes gives the same events ------------------------------------------

_values = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", categories=["L", "M", "N", "P", "S", "Zs"]),
    max_size=12,
)
_lines = st.one_of(
    st.builds(lambda v: f"data: {v}", _values),
    st.builds(lambda v: f"data:{v}", _values),
    st.builds(lambda v: f"event: {v}", _values),
    st.builds(lambda v: f"id: {v}", _values),
    st.builds(lambda v: f"retry: {v}", st.integers(0, 99999).map(str) | _values),
    st.builds(lambda v: f": {v}", _values),
    st.just(""),
    st.just("data"),
)
_endings = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(_lines, _endings), max_size=25))
    text = "".join(line + ending for line, ending in lines)
    if draw(st.booleans()):
        text += draw(_lines)  # an unterminated last line
    return ("\ufeff" if draw(st.booleans()) else "").encode() + text.encode()


@st.composite
def splits(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    raw = draw(streams())
    cuts = sorted(draw(st.sets(st.integers(0, len(raw)), max_size=12)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    return raw, pieces


@given(splits())
def test_any_split_of_the_same_bytes_gives_the_same_events(
    case: tuple[bytes, list[bytes]],
) -> None:
    raw, pieces = case
    assert decode(*pieces) == decode(raw)
    # Byte by byte is the finest split there is.
    assert decode(*[raw[i:i + 1] for i in range(len(raw))]) == decode(raw)


@given(streams())
def test_crlf_and_lf_streams_decode_alike(raw: bytes) -> None:
    text = raw.decode()
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    assert decode(text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode()) \
        == decode(normalised.encode())


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_lines_cut_at_every_byte_with_each_line_ending(ending: str) -> None:
    # Long lines, a multi-byte character and an unfinished line cut at every place: a line
    # whose pieces are kept across reads must come out whole, and the line end (CRLF split
    # between two reads included) seen once.
    text = f"event: a{ending}data: {'x' * 40}é{ending}data: 日本{ending}{ending}: c{ending}data: z"
    raw = text.encode()
    expected = [ServerSentEvent("a", f"{'x' * 40}é\n日本"), ServerSentEvent("message", "z")]
    assert decode(raw) == expected
    for i in range(len(raw) + 1):
        assert decode(raw[:i], raw[i:]) == expected, i
        for j in range(i, len(raw) + 1, 7):
            assert decode(raw[:i], raw[i:j], raw[j:]) == expected, (i, j)
    assert decode(*[raw[i:i + 1] for i in range(len(raw))]) == expected


def test_an_event_at_the_limit_passes_and_one_character_more_fails() -> None:
    assert decode(b"data: " + b"x" * 100 + b"\n\n", max_event_size=100) == [
        ServerSentEvent("message", "x" * 100)
    ]
    with pytest.raises(StreamProtocolError, match="max_event_size=100"):
        decode(b"data: " + b"x" * 101 + b"\n\n", max_event_size=100)
    # Its data lines count together (with the newlines that join them).
    with pytest.raises(StreamProtocolError):
        decode(b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n\n", max_event_size=100)
    # Many events, each under the limit, are fine whatever they add up to.
    assert len(decode(b"data: " + b"x" * 90 + b"\n\n" * 1, b"data: " + b"x" * 90 + b"\n\n",
                      max_event_size=100)) == 2


def test_a_line_that_never_ends_fails_as_soon_as_it_passes_the_limit() -> None:
    # A server that streams one endless line cannot fill the memory: the read that takes the
    # line past the limit raises, long before any line end.
    decoder = SSEDecoder(max_event_size=1000)
    for _ in range(9):
        assert decoder.feed(b"x" * 100) == []
    with pytest.raises(StreamProtocolError, match="max_event_size=1000"):
        decoder.feed(b"x" * 101)
    # A comment line counts too, and so do an open event's lines with its unfinished one.
    with pytest.raises(StreamProtocolError):
        SSEDecoder(max_event_size=10).feed(b": " + b"c" * 20)
    decoder = SSEDecoder(max_event_size=100)
    decoder.feed(b"data: " + b"a" * 60 + b"\n")
    with pytest.raises(StreamProtocolError):
        decoder.feed(b"data: " + b"b" * 50)


def test_no_limit_and_bad_limits() -> None:
    big = b"data: " + b"x" * 100_000 + b"\n\n"
    assert decode(big[:50_000], big[50_000:], max_event_size=None)[0].data == "x" * 100_000
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(UsageError):
            SSEDecoder(max_event_size=bad)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_model_s_max_event_size_fails_the_call_and_keeps_the_partial() -> None:
    first = 'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    huge = 'data: {"choices":[{"index":0,"delta":{"content":"' + "x" * 5000 + '"}}]}\n\n'
    async with serve(Reply([first, huge], piece=512)) as server:
        model = ChatOpenAI("m", api_key="k", base_url=server.url + "/v1", max_event_size=4096)
        with pytest.raises(StreamProtocolError, match="max_event_size=4096") as info:
            await model.ainvoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.content == "Hi"


def test_a_bad_max_event_size_fails_when_the_model_is_made() -> None:
    with pytest.raises(UsageError):
        ChatOpenAI("m", api_key="k", max_event_size=0)
    assert ChatAnthropic("m", api_key="k", max_event_size=None).max_event_size is None


# Reads made of the usual events (a data line, alone or after an event line), which
# feed_columns cuts whole, with a near miss mixed in or an unfinished event at the end.
_usual_events = st.lists(
    st.one_of(
        st.builds(lambda name, value: f"event: {name}\ndata: {value}\n\n", _values, _values),
        st.builds(lambda value: f"data: {value}\n\n", _values),
    ),
    min_size=1,
    max_size=12,
)
_near_misses = st.sampled_from(
    ["", "event: \ndata: x\n\n", "data: a\ndata: b\n\n", ": c\n\n", "id: 7\n\n", "\n",
     "data:x\n\n", "event: a\n\n", "retry: 5\ndata: r\n\n", "event: a\ndata: x\n", "data: y"]
)


@given(_usual_events, _near_misses, st.integers(0, 12), _endings)
def test_reads_of_usual_events_give_the_same_columns_as_events(
    events: list[str], miss: str, where: int, ending: str
) -> None:
    text = "".join([*events[:where], miss, *events[where:]]).replace("\n", ending)
    raw = text.encode()
    whole = decode(raw)  # decode() compares feed_columns with feed
    assert decode(*[raw[i:i + 7] for i in range(0, len(raw), 7)]) == whole


def test_a_read_of_usual_events_is_cut_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # Guard against a column path that is never taken: no event goes the general way.
    def general(*args: object) -> None:
        raise AssertionError("read event by event")

    monkeypatch.setattr(SSEDecoder, "_blocks", general)
    decoder = SSEDecoder()
    assert decoder.feed_columns(b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\nda") == (
        ["a", "b"], ["1", "2"]
    )
    assert SSEDecoder().feed_columns(b"data: 1\n\ndata: 2\n\ndata: 3") == (
        ["message", "message"], ["1", "2"]
    )
