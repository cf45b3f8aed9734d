"""The partial reader: reading a document as it grows gives what reading each prefix whole
gives, wherever the document is cut (the invariant behind ``partial_structured``)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from rxagent._structured import SchemaSpec
from rxagent._structured_partial import IncrementalJSON, PartialReader, read_prefix

_UNSET_NAME = "_UNSET"

scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
           | st.floats(allow_nan=False, allow_infinity=False, width=32)
           | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                     max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
documents = st.lists(values, max_size=4) | st.dictionaries(st.text(max_size=5), values,
                                                            max_size=5)


def dumped(value: Any, style: int) -> str:
    if style == 0:
        return json.dumps(value)
    if style == 1:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value, indent=2)


@settings(max_examples=300, deadline=None)
@given(documents, st.integers(0, 2), st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_growing_reads_agree_with_whole_reads_at_every_cut(
    document: Any, style: int, sizes: list[int]
) -> None:
    text = dumped(document, style)
    reader = IncrementalJSON()
    at = 0
    turn = 0
    while at < len(text):
        size = sizes[turn % len(sizes)]
        turn += 1
        piece = text[at:at + size]
        at += size
        got = reader.feed(piece)
        expected = read_prefix(text[:at])
        if type(expected).__name__ == "object":  # nothing read yet, either way
            assert type(got).__name__ == "object"
        else:
            assert got == expected, (text[:at], got, expected)
    assert reader.feed(" ") == json.loads(text)


class Inner(BaseModel):
    a: int
    b: str


class Outer(BaseModel):
    name: str
    count: int = Field(ge=0)
    tags: list[str]
    inner: Inner


def test_partial_objects_of_a_model_are_its_twin_and_the_last_is_the_model() -> None:
    text = json.dumps({"name": 'a "q" \\ \u00e9', "count": 12, "tags": ["x", "yz"],
                       "inner": {"a": 345, "b": "w"}})
    reader = PartialReader(SchemaSpec(Outer))
    seen = [p for p in (reader.feed(ch) for ch in text) if p is not None]
    assert type(seen[0]).__name__ == "PartialOuter"
    assert all(p.count in (None, 12) for p in seen)  # 1 of 12 never shows
    assert all(p.inner is None or p.inner.a in (None, 345) for p in seen)
    assert reader.finish() == Outer.model_validate_json(text)


def test_a_value_the_schema_refuses_gives_nothing_until_it_is_fixed() -> None:
    reader = PartialReader(SchemaSpec(Outer))
    assert reader.feed('{"count": -') is not None  # the number waits; the object so far
    assert reader.feed("1,") is None  # -1 is refused by ge=0


class Deep(BaseModel):
    title: str
    items: list[Inner]
    matrix: list[list[int]]
    note: str | None = None
    outer: Outer | None = None


DEEP = {"title": "t \\\" é", "items": [{"a": 1, "b": "x"}, {"a": 22, "b": "yy"}],
        "matrix": [[1, 2], [], [345]], "note": None,
        "outer": {"name": "n", "count": 3, "tags": ["p", "q"], "inner": {"a": 9, "b": ""}}}


def test_validating_member_by_member_agrees_with_validating_the_whole_at_every_cut() -> None:
    from rxagent._structured_partial import _adapter_of, _partial_type, _shape_of

    for document, schema in ((DEEP, Deep), (json.loads(json.dumps(DEEP["outer"])), Outer)):
        text = json.dumps(document)
        twin = _adapter_of(schema)
        shape = _shape_of(_partial_type(schema))
        reader = IncrementalJSON()
        compared = 0
        for at in range(1, len(text) + 1):
            raw = reader.feed(text[at - 1])
            if type(raw).__name__ == "object":
                continue
            whole = twin.validate_python(raw, experimental_allow_partial="trailing-strings")
            piecewise = reader.validated(shape)
            if type(piecewise).__name__ != "object":
                assert piecewise == whole, text[:at]
                compared += 1
        assert compared > len(text) // 2  # the piecewise path is the one taken


def test_a_refused_member_is_refused_either_way() -> None:
    reader = PartialReader(SchemaSpec(Deep))
    assert reader.feed('{"title": "x", "items": [{"a": 1, "b": "x"}, {"a": "no",') is None


@settings(max_examples=300, deadline=None)
@given(documents, st.integers(0, 2), st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_advance_says_changed_exactly_when_the_reading_changed(
    document: Any, style: int, sizes: list[int]
) -> None:
    text = dumped(document, style)
    reader = IncrementalJSON()
    at, turn = 0, 0
    before = read_prefix("")
    while at < len(text):
        size = sizes[turn % len(sizes)]
        turn += 1
        changed = reader.advance(text[at:at + size])
        at += size
        now = read_prefix(text[:at])
        assert changed == (now != before), (text[:at], before, now)
        before = now


def test_equal_members_in_a_row_are_each_shown() -> None:
    reader = PartialReader(SchemaSpec(Outer))
    shown = [reader.feed(piece) for piece in ['{"tags": ["x', '", "x', '", "x', '"]']]
    assert [p.tags for p in shown if p is not None] == [["x"], ["x", "x"], ["x", "x", "x"]]
