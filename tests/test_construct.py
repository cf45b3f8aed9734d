"""Building without validation: the fast builders must make what validation makes.

``make_chunk``, ``text_chunk`` and ``fragment_chunk`` skip pydantic validation on the
per-token path; ``build`` does for snapshots and finished messages. Every test here
compares with validated construction field by field, over every field the model has, so a
field added to a model is checked the moment it exists;
``test_a_field_added_to_a_model_reaches_its_builders`` adds some to show that the builders
follow.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, PrivateAttr

# The fast builders are private units, compared here with validated construction on purpose.
from rxagent._chunks import fragment_chunk, make_chunk, text_chunk
from rxagent._construct import build, compile_builder, fields_of
from rxagent.messages import AIMessage, AIMessageChunk, ToolCallChunk, ToolMessage


def assert_indistinguishable(fast: BaseModel, slow: BaseModel) -> None:
    """Equal field for field, in the same order and of the same types, with the same
    bookkeeping, and so with the same repr and dumps."""
    assert type(fast) is type(slow)
    assert list(fast.__dict__) == list(type(slow).model_fields) == list(slow.__dict__)
    for name in type(slow).model_fields:
        mine, theirs = fast.__dict__[name], slow.__dict__[name]
        assert mine == theirs, name
        assert type(mine) is type(theirs), name
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert repr(fast) == repr(slow)
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast == slow


def assert_fresh_containers(first: BaseModel, second: BaseModel) -> None:
    """Two instances built alike share no mutable field value."""
    for name, value in first.__dict__.items():
        if isinstance(value, (dict, list, set)):
            assert value is not second.__dict__[name], name


# -- strategies: what a provider or a test model hands the builders -------------------------

texts = st.text(min_size=1, max_size=8)
json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
blocks = st.one_of(
    texts,
    st.builds(lambda text: {"type": "text", "text": text}, texts),
    st.builds(lambda text: {"type": "reasoning", "reasoning": text, "index": 0}, texts),
    st.builds(lambda url: {"type": "image", "url": url}, texts),
)
contents = texts | st.lists(blocks, max_size=3)


@st.composite
def fragments(draw: st.DrawFn) -> ToolCallChunk:
    # Complete, keys in order, as make_chunk's callers vouch.
    return {
        "name": draw(st.none() | st.sampled_from(["get_weather", "search"])),
        "args": draw(st.none() | st.sampled_from(["", '{"', 'city": "SF"}', '{"a": 1}', "[1]"])),
        "id": draw(st.none() | st.sampled_from(["c1", "c2"])),
        "index": draw(st.none() | st.integers(0, 1)),
        "type": "tool_call_chunk",
    }


@st.composite
def usages(draw: st.DrawFn) -> dict[str, Any]:
    counts = draw(st.lists(st.integers(0, 100), min_size=2, max_size=2))
    usage: dict[str, Any] = {
        "input_tokens": counts[0],
        "output_tokens": counts[1],
        "total_tokens": sum(counts),
    }
    if draw(st.booleans()):
        usage["input_token_details"] = {"cache_read": draw(st.integers(0, 9))}
    return usage


# Each argument is either left out or given a value; None and "" would be given to validation
# but stand for "left out" in make_chunk.
make_chunk_arguments = st.fixed_dictionaries(
    {},
    optional={
        "content": contents,
        "id": texts,
        "name": texts,
        "tool_call_chunks": st.lists(fragments(), max_size=3),
        "chunk_position": st.just("last"),
        "usage_metadata": usages(),
        "response_metadata": st.dictionaries(st.text(max_size=4), json_values, max_size=3),
    },
)


# -- the per-token builders ------------------------------------------------------------------


@given(make_chunk_arguments)
def test_make_chunk_makes_what_validation_makes(arguments: dict[str, Any]) -> None:
    assert_indistinguishable(make_chunk(**arguments), AIMessageChunk(**arguments))


@given(st.none() | contents, st.none() | texts)
def test_text_chunk_makes_what_validation_makes(content: Any, id: str | None) -> None:
    given_fields = {"content": content, "id": id}
    arguments = {key: value for key, value in given_fields.items() if value is not None}
    fast = text_chunk(arguments.get("content", ""), arguments.get("id"))
    assert_indistinguishable(fast, AIMessageChunk(**arguments))


@given(st.lists(fragments(), min_size=1, max_size=3), st.none() | texts)
def test_fragment_chunk_makes_what_validation_makes(
    tool_call_chunks: list[ToolCallChunk], id: str | None
) -> None:
    arguments: dict[str, Any] = {"tool_call_chunks": tool_call_chunks}
    if id is not None:
        arguments["id"] = id
    assert_indistinguishable(fragment_chunk(tool_call_chunks, id), AIMessageChunk(**arguments))


@given(
    st.fixed_dictionaries(
        {},
        optional={"content": texts, "id": texts, "name": texts, "chunk_position": st.just("last")},
    )
)
def test_built_chunks_share_no_container(arguments: dict[str, Any]) -> None:
    # What is handed over is kept as it is, by contract; every default is a fresh container.
    assert_fresh_containers(make_chunk(**arguments), make_chunk(**arguments))
    content, id = arguments.get("content", ""), arguments.get("id")
    assert_fresh_containers(text_chunk(content, id), text_chunk(content, id))


# -- build: snapshots and finished messages --------------------------------------------------


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "content": st.just("") | contents,
            "id": st.none() | texts,
            "additional_kwargs": st.dictionaries(st.text(max_size=4), json_values, max_size=2),
            "tool_calls": st.lists(
                st.builds(
                    lambda name, id: {"name": name, "args": {}, "id": id, "type": "tool_call"},
                    texts,
                    st.none() | texts,
                ),
                max_size=2,
            ),
            "usage_metadata": st.none() | usages(),
        },
    )
)
def test_build_makes_what_validation_makes(values: dict[str, Any]) -> None:
    # What build counts as set is what differs from the default; validation counts what it is
    # given, so it is given just that.
    defaults = fields_of(AIMessage).defaults
    differing = {key: value for key, value in values.items() if value != defaults[key]}
    assert_indistinguishable(build(AIMessage, values), AIMessage(**differing))
    assert_fresh_containers(build(AIMessage, {}), build(AIMessage, {}))


def test_build_needs_required_fields() -> None:
    class Answer(BaseModel):
        to: str
        text: str = ""

    assert build(Answer, {"to": "x"}) == Answer(to="x")
    with pytest.raises(TypeError, match=r"needs \['to'\]"):
        build(Answer, {"text": "hi"})


# -- a model that grows ----------------------------------------------------------------------


class WiderChunk(AIMessageChunk):
    """AIMessageChunk with fields added: before, between and after the defaults' kinds."""

    tags: set[str] = Field(default_factory=set)
    notes: list[str] = Field(default_factory=list)
    score: float = 0.5
    label: str | None = None


@given(st.none() | texts, st.none() | st.lists(texts, max_size=2), st.none() | st.just(0.9))
def test_a_field_added_to_a_model_reaches_its_builders(
    content: str | None, notes: list[str] | None, score: float | None
) -> None:
    wide = compile_builder(WiderChunk, ("content", "notes", "score"), name="wide", doc="")
    given_fields = {"content": content, "notes": notes, "score": score}
    arguments = {key: value for key, value in given_fields.items() if value is not None}
    fast = wide(arguments.get("content", ""), arguments.get("notes"), arguments.get("score", 0.5))
    assert_indistinguishable(fast, WiderChunk(**arguments))
    assert_fresh_containers(wide("", None, 0.5), wide("", None, 0.5))
    defaults = fields_of(WiderChunk).defaults
    differing = {key: value for key, value in arguments.items() if value != defaults[key]}
    assert_indistinguishable(build(WiderChunk, arguments), WiderChunk(**differing))


def test_builders_refuse_what_they_cannot_build() -> None:
    class Secretive(BaseModel):
        _cache: dict[str, int] = PrivateAttr(default_factory=dict)

    with pytest.raises(TypeError, match="private attributes"):
        fields_of(Secretive)
    with pytest.raises(ValueError, match=r"has no fields \['colour'\]"):
        compile_builder(AIMessageChunk, ("colour",), name="bad", doc="")
    with pytest.raises(ValueError, match=r"needs \['tool_call_id'\]"):
        compile_builder(ToolMessage, ("content",), name="bad", doc="")
    with pytest.raises(TypeError, match=r"has no fields \['colour'\]"):
        build(AIMessage, {"content": "", "colour": "red"})
