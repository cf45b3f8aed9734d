"""Adding chunks up: ``chunk + chunk``, the accumulator, and the properties they must keep.

The properties: merging is associative (any grouping of the same chunks gives the same chunk),
re-splitting the text or the arguments anywhere gives the same message, and the accumulator
gives what the ``+`` fold gives.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import operator
import weakref
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxagent.chat_models import make_chunk
from rxagent.messages import (
    AIMessage,
    AIMessageChunk,
    ChunkAccumulator,
    ToolCall,
    ToolCallChunk,
    UsageMetadata,
)


def fragment(
    args: str | None, *, index: int | None = 0, id: str | None = None, name: str | None = None
) -> ToolCallChunk:
    return {"name": name, "args": args, "id": id, "index": index, "type": "tool_call_chunk"}


def calls_chunk(*fragments: ToolCallChunk, last: bool = False) -> AIMessageChunk:
    return make_chunk(
        "", id="run-1", tool_call_chunks=list(fragments), chunk_position="last" if last else None
    )


def fold(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return functools.reduce(operator.add, chunks)


def usage(i: int, o: int, **details: dict[str, int]) -> UsageMetadata:
    result: dict[str, Any] = {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}
    result.update(details)
    return result  # type: ignore[return-value]


LAST = make_chunk("", id="run-1", chunk_position="last")


# -- text and content ------------------------------------------------------------------------


def test_text_concatenates() -> None:
    merged = fold([make_chunk(t, id="run-1") for t in ["It's", " always", " sunny"]] + [LAST])
    assert merged.content == "It's always sunny"
    assert merged.to_message() == AIMessage(content="It's always sunny", id="run-1")


def test_adjacent_text_and_reasoning_blocks_merge() -> None:
    chunks = [
        make_chunk([{"type": "reasoning", "reasoning": "Let me"}]),
        make_chunk([{"type": "reasoning", "reasoning": " think"}]),
        make_chunk([{"type": "text", "text": "Sun"}]),
        make_chunk([{"type": "text", "text": "ny"}]),
    ]
    assert fold(chunks).content == [
        {"type": "reasoning", "reasoning": "Let me think"},
        {"type": "text", "text": "Sunny"},
    ]


def test_blocks_with_different_indexes_stay_apart() -> None:
    merged = make_chunk([{"type": "text", "text": "a", "index": 0}]) + make_chunk(
        [{"type": "text", "text": "b", "index": 2}]
    )
    assert merged.content == [
        {"type": "text", "text": "a", "index": 0},
        {"type": "text", "text": "b", "index": 2},
    ]


def test_anthropic_thinking_blocks_merge_and_keep_their_signature() -> None:
    merged = fold(
        [
            make_chunk([{"type": "thinking", "thinking": "hm", "index": 0}]),
            make_chunk([{"type": "thinking", "thinking": "m", "index": 0}]),
            make_chunk([{"type": "thinking", "thinking": "", "signature": "sig", "index": 0}]),
        ]
    )
    assert merged.content == [
        {"type": "thinking", "thinking": "hmm", "index": 0, "signature": "sig"}
    ]


def test_a_string_next_to_a_list_becomes_a_text_block() -> None:
    listed = make_chunk([{"type": "text", "text": "b"}])
    assert (make_chunk("a") + listed).content == [{"type": "text", "text": "ab"}]
    assert (listed + make_chunk("c")).content == [{"type": "text", "text": "bc"}]
    assert (make_chunk("") + listed).content == [{"type": "text", "text": "b"}], "empty drops"
    image = make_chunk([{"type": "image", "url": "u"}])
    assert (make_chunk("a") + image + make_chunk("")).content == [
        {"type": "text", "text": "a"},
        {"type": "image", "url": "u"},
    ]


def test_strings_inside_lists_merge_as_text_blocks() -> None:
    assert (make_chunk(["a"]) + make_chunk(["b"])).content == [{"type": "text", "text": "ab"}]


# -- tool calls ------------------------------------------------------------------------------


def test_the_seeds_tool_call_stream_merges_into_one_call() -> None:
    pieces = ['{"', "city", '":"', "San", " Francisco", '"}']
    chunks = [calls_chunk(fragment("", id="call_1", name="get_weather"))]
    chunks += [calls_chunk(fragment(piece)) for piece in pieces]
    merged = fold([*chunks, LAST])
    assert merged.tool_call_chunks == [
        fragment('{"city":"San Francisco"}', id="call_1", name="get_weather")
    ]
    expected: ToolCall = {
        "name": "get_weather",
        "args": {"city": "San Francisco"},
        "id": "call_1",
        "type": "tool_call",
    }
    assert merged.tool_calls == [expected]
    assert fold(chunks).tool_calls == [], "not parsed before the last chunk"
    assert merged.to_message().tool_calls == [expected]


def test_a_reused_index_with_a_new_id_starts_a_second_call() -> None:
    merged = fold(
        [
            calls_chunk(fragment("", id="call_a", name="f")),
            calls_chunk(fragment('{"x": 1}')),
            calls_chunk(fragment("", id="call_b", name="g")),  # index 0 again
            calls_chunk(fragment('{"y": 2}')),
            LAST,
        ]
    )
    assert [(c["id"], c["name"], c["args"]) for c in merged.tool_calls] == [
        ("call_a", "f", {"x": 1}),
        ("call_b", "g", {"y": 2}),
    ]


def test_a_repeated_id_on_the_same_index_continues_the_call() -> None:
    merged = fold(
        [
            calls_chunk(fragment('{"x"', id="call_a", name="f")),
            calls_chunk(fragment(": 1}", id="call_a")),
            LAST,
        ]
    )
    assert merged.tool_calls == [
        {"name": "f", "args": {"x": 1}, "id": "call_a", "type": "tool_call"}
    ]


def test_the_first_name_and_id_of_a_call_stay() -> None:
    merged = calls_chunk(fragment('{"a": 1}', id="c1", name="f")) + calls_chunk(
        fragment("", name="renamed"), last=True
    )
    assert merged.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]


def test_fragments_without_index_are_keyed_by_id() -> None:
    merged = fold(
        [
            calls_chunk(fragment('{"x"', index=None, id="call_a", name="f")),
            calls_chunk(fragment('{"y"', index=None, id="call_b", name="g")),
            calls_chunk(fragment(": 1}", index=None, id="call_a")),
            calls_chunk(fragment(": 2}", index=None, id="call_b")),
            LAST,
        ]
    )
    assert [(c["id"], c["args"]) for c in merged.tool_calls] == [
        ("call_a", {"x": 1}),
        ("call_b", {"y": 2}),
    ]


def test_fragments_with_neither_index_nor_id_stand_alone() -> None:
    merged = calls_chunk(fragment("{}", index=None, name="f")) + calls_chunk(
        fragment("{}", index=None, name="g")
    )
    assert [c["name"] for c in merged.tool_call_chunks] == ["f", "g"]


def test_args_arriving_whole_in_one_chunk() -> None:
    merged = fold(
        [
            make_chunk("Checking.", id="run-1"),
            calls_chunk(fragment('{"city": "SF"}', id="call_1", name="get_weather", index=1)),
            LAST,
        ]
    )
    assert merged.to_message() == AIMessage(
        content="Checking.",
        id="run-1",
        tool_calls=[{"name": "get_weather", "args": {"city": "SF"}, "id": "call_1"}],
    )


def test_truncated_args_become_an_invalid_tool_call_with_the_parse_error() -> None:
    merged = fold(
        [
            calls_chunk(fragment("", id="call_1", name="get_weather")),
            calls_chunk(fragment('{"city": "San Fr')),
            LAST,
        ]
    )
    try:
        json.loads('{"city": "San Fr')
    except ValueError as exc:
        error = str(exc)
    assert merged.tool_calls == []
    [bad] = merged.invalid_tool_calls
    assert bad["name"] == "get_weather" and bad["id"] == "call_1"
    assert bad["args"] == '{"city": "San Fr'
    assert bad["error"] is not None and error in bad["error"]
    assert merged.to_message().invalid_tool_calls == [bad]


def test_args_that_are_not_an_object_are_invalid() -> None:
    merged = calls_chunk(fragment("[1, 2]", id="c", name="f"), last=True)
    assert merged.tool_calls == []
    assert merged.invalid_tool_calls[0]["error"] == "the arguments must be a JSON object, got list"


def test_empty_args_are_an_empty_object_and_a_nameless_call_is_invalid() -> None:
    merged = calls_chunk(
        fragment("", id="c1", name="f"), fragment(None, id="c2", index=1), last=True
    )
    assert merged.tool_calls == [{"name": "f", "args": {}, "id": "c1", "type": "tool_call"}]
    assert merged.invalid_tool_calls[0]["error"] == "the tool call has no name"


def test_derived_calls_are_never_merged_only_rederived() -> None:
    last = calls_chunk(fragment('{"a": 1}', id="c1", name="f"), last=True)
    stale = last.model_copy(update={"tool_call_chunks": []})  # tool_calls left behind
    assert stale.content_blocks == [], "blocks are derived afresh"
    assert (stale + make_chunk("x")).tool_calls == []
    # Same index and id: one call whose args arrived twice, not two copies of the parsed call.
    twice = last + last
    assert twice.tool_calls == []
    assert [bad["args"] for bad in twice.invalid_tool_calls] == ['{"a": 1}{"a": 1}']


def test_to_message_parses_even_without_a_last_chunk() -> None:
    chunk = calls_chunk(fragment('{"a": 1}', id="c1", name="f"))
    assert chunk.tool_calls == []
    assert chunk.to_message().tool_calls == [
        {"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}
    ]


# -- usage and metadata ------------------------------------------------------------------


def test_usage_sums_with_details() -> None:
    first = make_chunk("a", usage_metadata=usage(10, 0, input_token_details={"cache_read": 4}))
    second = make_chunk("b")
    third = make_chunk(
        "",
        usage_metadata=usage(
            0, 7, input_token_details={"audio": 1}, output_token_details={"reasoning": 5}
        ),
    )
    merged = first + second + third
    assert merged.usage_metadata == {
        "input_tokens": 10,
        "output_tokens": 7,
        "total_tokens": 17,
        "input_token_details": {"cache_read": 4, "audio": 1},
        "output_token_details": {"reasoning": 5},
    }
    assert (second + second).usage_metadata is None
    assert (second + first).usage_metadata == first.usage_metadata


def test_metadata_merges_recursively_and_later_values_win() -> None:
    first = make_chunk(
        "", response_metadata={"model_name": "m", "token_usage": {"a": 1}, "finish_reason": None}
    )
    second = make_chunk(
        "", response_metadata={"token_usage": {"b": 2}, "finish_reason": "stop", "model_name": None}
    )
    assert (first + second).response_metadata == {
        "model_name": "m",
        "token_usage": {"a": 1, "b": 2},
        "finish_reason": "stop",
    }
    extra = AIMessageChunk(additional_kwargs={"k": {"x": 1}}) + AIMessageChunk(
        additional_kwargs={"k": {"x": 2}}
    )
    assert extra.additional_kwargs == {"k": {"x": 2}}


def test_the_first_id_and_name_win_and_last_is_sticky() -> None:
    merged = make_chunk("a") + make_chunk("b", id="one", name="n") + make_chunk("c", id="two")
    assert (merged.id, merged.name) == ("one", "n")
    assert (LAST + make_chunk("x")).chunk_position == "last"


# -- no mutation, no aliasing --------------------------------------------------------------


def test_adding_changes_neither_operand_and_shares_nothing_with_them() -> None:
    left = make_chunk(
        [{"type": "text", "text": "a", "extras": {"k": [1]}}],
        id="r",
        tool_call_chunks=[fragment('{"a"', id="c1", name="f")],
        response_metadata={"nested": {"x": 1}},
        usage_metadata=usage(1, 1, input_token_details={"cache_read": 1}),
    )
    right = make_chunk(
        [{"type": "text", "text": "b"}],
        tool_call_chunks=[fragment(": 1}")],
        response_metadata={"nested": {"y": 2}},
        usage_metadata=usage(1, 1, input_token_details={"cache_read": 1}),
        chunk_position="last",
    )
    before = (copy.deepcopy(left.__dict__), copy.deepcopy(right.__dict__))
    merged = left + right
    assert (left.__dict__, right.__dict__) == before
    merged.content[0]["extras"]["k"].append(2)  # type: ignore[index,union-attr]
    merged.response_metadata["nested"]["x"] = 99
    assert merged.usage_metadata is not None
    merged.usage_metadata["input_token_details"]["cache_read"] = 99
    merged.tool_call_chunks[0]["args"] = "changed"
    assert (left.__dict__, right.__dict__) == before


def test_only_chunks_add() -> None:
    with pytest.raises(TypeError):
        make_chunk("a") + AIMessage(content="b")


# -- the accumulator ---------------------------------------------------------------------


def test_the_accumulator_starts_empty_and_clears() -> None:
    accumulator = ChunkAccumulator()
    assert accumulator.empty and accumulator.snapshot() == AIMessageChunk()
    accumulator.add(make_chunk("a", id="r"))
    assert not accumulator.empty
    accumulator.clear()
    assert accumulator.empty and accumulator.to_message() == AIMessage()


def test_the_accumulator_keeps_no_chunk_alive() -> None:
    accumulator = ChunkAccumulator()
    chunk = make_chunk(
        [{"type": "text", "text": "a"}],
        id="r",
        tool_call_chunks=[fragment("{}", id="c", name="f")],
        response_metadata={"a": {"b": 1}},
        usage_metadata=usage(1, 2),
    )
    alive = weakref.ref(chunk)
    accumulator.add(chunk)
    del chunk
    assert alive() is None
    assert accumulator.to_message().tool_calls[0]["name"] == "f"


def test_snapshots_are_independent_of_the_accumulator() -> None:
    accumulator = ChunkAccumulator()
    image = {"type": "image", "url": "u"}
    accumulator.add(
        make_chunk([dict(image), {"type": "text", "text": "a"}], response_metadata={"m": {"x": 1}})
    )
    first = accumulator.snapshot()
    for block in first.content:
        block["changed"] = True  # type: ignore[index]
    first.response_metadata["m"]["x"] = 2
    accumulator.add(make_chunk("b"))
    assert accumulator.snapshot().content == [image, {"type": "text", "text": "ab"}]
    assert accumulator.snapshot().response_metadata == {"m": {"x": 1}}
    assert accumulator.snapshot() == accumulator.snapshot()


def test_the_accumulators_message_is_the_folds_message() -> None:
    chunks = [
        make_chunk("Let me", id="r"),
        make_chunk(" check.", id="r"),
        calls_chunk(fragment("", id="c1", name="f")),
        calls_chunk(fragment('{"q": "x"}')),
        make_chunk("", id="r", chunk_position="last", usage_metadata=usage(3, 4)),
    ]
    accumulator = ChunkAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    assert accumulator.snapshot() == fold(chunks)
    assert accumulator.to_message() == fold(chunks).to_message()


# -- properties ------------------------------------------------------------------------------
#
# Two generators: realistic replies (text, reasoning, tool calls in each provider style, usage,
# a last chunk), whose merged message is known in advance, and free-form chunks that combine
# fields no provider would, to look for grouping-dependent corner cases.

WORDS = st.text(alphabet='ab "{}:,', max_size=6)
ARG_VALUES = st.one_of(st.integers(-5, 5), st.text(alphabet='xy "\\', max_size=4), st.none())


@dataclass
class Call:
    name: str
    args: dict[str, Any]
    id: str
    style: str  # "indexed", "reused" (index 0), "by_id" (no index), "whole"
    truncated: bool = False

    @property
    def json(self) -> str:
        text = json.dumps(self.args)
        return text[:-1] if self.truncated else text


@dataclass
class Reply:
    reasoning: str | None
    text: str
    calls: list[Call]
    usage_parts: list[tuple[int, int]]
    finish: str
    blocks: bool = False  # list content (Anthropic-like) instead of strings
    extra: dict[str, Any] = field(default_factory=dict)


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    blocks = draw(st.booleans())
    reasoning = draw(st.one_of(st.none(), st.text(max_size=10))) if blocks else None
    text = draw(st.text(max_size=20))
    style = draw(st.sampled_from(["indexed", "reused", "by_id", "whole"]))
    count = draw(st.integers(0, 3))
    calls = [
        Call(
            name=draw(st.sampled_from(["get_weather", "search"])),
            args=draw(st.dictionaries(st.sampled_from(["city", "q", "n"]), ARG_VALUES, max_size=3)),
            id=f"call_{i}",
            style=style,
        )
        for i in range(count)
    ]
    if draw(st.booleans()) and calls:
        calls[-1].truncated = True
    usage_parts = draw(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=3))
    return Reply(reasoning, text, calls, usage_parts, "tool_calls" if calls else "stop", blocks)


def split(data: st.DataObject, text: str) -> list[str]:
    """``text`` cut at random places (possibly into empty pieces)."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=4)))
    edges = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


def stream(data: st.DataObject, reply: Reply) -> list[AIMessageChunk]:
    """The chunks a provider could send for ``reply``, cut at random places."""
    chunks: list[AIMessageChunk] = []
    if reply.reasoning is not None:
        chunks += [
            make_chunk([{"type": "thinking", "thinking": piece, "index": 0}], id="run-1")
            for piece in split(data, reply.reasoning)
        ]
    for piece in split(data, reply.text):
        content: Any = [{"type": "text", "text": piece, "index": 1}] if reply.blocks else piece
        chunks.append(make_chunk(content, id="run-1"))
    for position, call in enumerate(reply.calls):
        index = {"indexed": position, "reused": 0, "by_id": None, "whole": position}[call.style]
        if call.style == "whole":
            chunks.append(calls_chunk(fragment(call.json, index=index, id=call.id, name=call.name)))
            continue
        chunks.append(calls_chunk(fragment("", index=index, id=call.id, name=call.name)))
        # Without an index, every fragment carries the call's id; with one, none does.
        fragment_id = call.id if index is None else None
        chunks += [
            calls_chunk(fragment(piece, index=index, id=fragment_id))
            for piece in split(data, call.json)
        ]
    chunks += [
        make_chunk("", id="run-1", usage_metadata=usage(*part)) for part in reply.usage_parts
    ]
    chunks.append(
        make_chunk(
            "", id="run-1", chunk_position="last", response_metadata={"finish_reason": reply.finish}
        )
    )
    return chunks


def expected_message(reply: Reply) -> AIMessage:
    content: Any = reply.text
    if reply.blocks:
        content = []
        if reply.reasoning is not None:
            content.append({"type": "thinking", "thinking": reply.reasoning, "index": 0})
        # Even an empty block is kept: it carries an index.
        content.append({"type": "text", "text": reply.text, "index": 1})
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for call in reply.calls:
        if call.truncated:
            try:
                json.loads(call.json)
            except ValueError as exc:
                error = f"the arguments are not valid JSON: {exc}"
            invalid.append({"name": call.name, "args": call.json, "id": call.id, "error": error})
        else:
            calls.append({"name": call.name, "args": call.args, "id": call.id})
    total_in = sum(i for i, _ in reply.usage_parts)
    total_out = sum(o for _, o in reply.usage_parts)
    return AIMessage.model_validate(
        {
            "content": content,
            "id": "run-1",
            "response_metadata": {"finish_reason": reply.finish},
            "tool_calls": calls,
            "invalid_tool_calls": invalid,
            "usage_metadata": usage(total_in, total_out) if reply.usage_parts else None,
        }
    )


def grouped(data: st.DataObject, chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """The chunks added up under a random bracketing."""
    if len(chunks) == 1:
        return chunks[0]
    cut = data.draw(st.integers(1, len(chunks) - 1))
    return grouped(data, chunks[:cut]) + grouped(data, chunks[cut:])


def assert_same(one: AIMessageChunk | AIMessage, other: AIMessageChunk | AIMessage) -> None:
    assert one == other
    assert repr(one) == repr(other), "equal, and with dict keys in the same order"


PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(replies(), st.data())
def test_any_grouping_of_a_reply_gives_the_same_message(reply: Reply, data: st.DataObject) -> None:
    chunks = stream(data, reply)
    left = functools.reduce(operator.add, chunks)
    right = functools.reduce(lambda acc, chunk: chunk + acc, reversed(chunks))
    assert_same(left, right)
    assert_same(left, grouped(data, chunks))
    assert_same(left.to_message(), expected_message(reply))


@PROPERTY_SETTINGS
@given(replies(), st.data())
def test_resplitting_text_and_args_anywhere_gives_the_same_message(
    reply: Reply, data: st.DataObject
) -> None:
    first = fold(stream(data, reply))
    second = fold(stream(data, reply))
    assert_same(first, second)
    assert_same(first.to_message(), second.to_message())


@PROPERTY_SETTINGS
@given(replies(), st.data())
def test_the_accumulator_equals_the_fold(reply: Reply, data: st.DataObject) -> None:
    chunks = stream(data, reply)
    accumulator = ChunkAccumulator()
    for position, chunk in enumerate(chunks):
        accumulator.add(chunk)
        if data.draw(st.booleans()):  # snapshots along the way change nothing
            assert_same(accumulator.snapshot(), fold(chunks[: position + 1]))
    assert_same(accumulator.snapshot(), fold(chunks))
    assert_same(accumulator.to_message(), fold(chunks).to_message())


# Free-form chunks: fields combined as no provider would, few distinct indexes so that calls
# share them. The tool-call fragments are well formed, which is what associativity needs: an
# id names one call, and the calls on one index follow each other rather than interleave.
ARGS_PIECES = st.one_of(st.none(), st.text(alphabet='{}"a1', max_size=3))


@st.composite
def well_formed_fragments(draw: st.DrawFn) -> list[ToolCallChunk]:
    lanes: dict[Any, list[list[ToolCallChunk]]] = {}
    for number in range(draw(st.integers(0, 4))):
        index = draw(st.sampled_from([None, 0, 1]))
        lane = lanes.setdefault(index if index is not None else f"solo{number}", [])
        # A call after another on the same index must say, with its id, that it is new.
        id = f"c{number}" if lane or index is None else draw(st.sampled_from([None, f"c{number}"]))
        name = draw(st.sampled_from([None, "f", "g"]))
        size = 1 if index is None and id is None else draw(st.integers(1, 4))
        call = [fragment(draw(ARGS_PIECES), index=index, id=id, name=name)]
        for _ in range(size - 1):
            # Continuations may repeat the id (and must, without an index) and the name.
            again = id if index is None else draw(st.sampled_from([None, id]))
            call.append(
                fragment(
                    draw(ARGS_PIECES),
                    index=index,
                    id=again,
                    name=draw(st.sampled_from([None, name])),
                )
            )
        lane.append(call)
    queues = [[piece for call in calls for piece in call] for calls in lanes.values()]
    sequence: list[ToolCallChunk] = []
    while any(queues):
        queue = draw(st.sampled_from([q for q in queues if q]))
        sequence.append(queue.pop(0))
    return sequence


FREE_BLOCKS = st.one_of(
    st.text(alphabet="ab", max_size=2),
    st.builds(
        lambda kind, text, index: {
            "type": kind,
            kind: text,
            **({} if index is None else {"index": index}),
        },
        st.sampled_from(["text", "reasoning", "thinking"]),
        st.text(alphabet="ab", max_size=2),
        st.sampled_from([None, 0, 1]),
    ),
    st.just({"type": "image", "url": "u"}),
)
FREE_USAGE = st.one_of(
    st.none(),
    st.builds(
        lambda i, o, details: usage(i, o, **({"input_token_details": details} if details else {})),
        st.integers(0, 9),
        st.integers(0, 9),
        st.dictionaries(st.sampled_from(["audio", "cache_read"]), st.integers(0, 9), max_size=2),
    ),
)
FREE_METADATA = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["m1", "m2", None]),
        "nested": st.dictionaries(
            st.sampled_from(["x", "y"]), st.one_of(st.none(), st.integers(0, 3))
        ),
    },
)
FREE_CONTENT = st.one_of(st.text(alphabet="ab", max_size=3), st.lists(FREE_BLOCKS, max_size=3))


@st.composite
def free_chunks(draw: st.DrawFn) -> list[AIMessageChunk]:
    fragments = draw(well_formed_fragments())
    chunks: list[AIMessageChunk] = []
    while fragments or not chunks or draw(st.booleans()):
        take = draw(st.integers(0, min(3, len(fragments))))
        carried, fragments = fragments[:take], fragments[take:]
        chunks.append(
            make_chunk(
                draw(FREE_CONTENT),
                id=draw(st.sampled_from([None, "r1", "r2"])),
                tool_call_chunks=carried or draw(st.sampled_from([None, []])),
                chunk_position=draw(st.sampled_from([None, None, None, "last"])),
                usage_metadata=draw(FREE_USAGE),
                response_metadata=draw(st.one_of(st.none(), FREE_METADATA)),
                name=draw(st.sampled_from([None, "bot"])),
            )
        )
        if len(chunks) >= 8 and not fragments:
            break
    return chunks


@PROPERTY_SETTINGS
@given(free_chunks(), st.data())
def test_merging_free_form_chunks_is_associative(
    chunks: list[AIMessageChunk], data: st.DataObject
) -> None:
    before = [copy.deepcopy(chunk.__dict__) for chunk in chunks]
    # A free-form first chunk may not be in merged form; start from an empty chunk.
    left = functools.reduce(operator.add, chunks, AIMessageChunk())
    right = functools.reduce(lambda acc, chunk: chunk + acc, reversed(chunks), AIMessageChunk())
    assert_same(left, right)
    assert_same(left, AIMessageChunk() + grouped(data, chunks))
    accumulator = ChunkAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    assert_same(accumulator.snapshot(), left)
    assert_same(accumulator.to_message(), left.to_message())
    assert [chunk.__dict__ for chunk in chunks] == before, "no operand changed"


def test_a_long_reply_accumulates_across_snapshots_and_a_switch_to_blocks() -> None:
    pieces = [f"t{i} " for i in range(1_300)]  # past two folds of pieces into runs
    accumulator = ChunkAccumulator()
    for piece in pieces[:1_100]:
        accumulator.add(AIMessageChunk(content=piece))
    assert accumulator.snapshot().text == "".join(pieces[:1_100])
    for piece in pieces[1_100:]:
        accumulator.add(AIMessageChunk(content=piece))
    assert accumulator.snapshot().text == "".join(pieces)
    accumulator.add(AIMessageChunk(content=[{"type": "reasoning", "reasoning": "hm"}]))
    message = accumulator.to_message()
    assert message.content_blocks[0] == {"type": "text", "text": "".join(pieces)}
    assert message.content_blocks[1]["type"] == "reasoning"
