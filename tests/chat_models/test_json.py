"""The wire parsers' JSON step gives what json.loads gives, value or error, for any text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagent.chat_models._json import loads

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
WHITESPACE = st.text(alphabet=" \t\n\r", max_size=2)


def outcome(parse: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", parse(text)
    except ValueError as error:
        return "error", (type(error), str(error))


@given(JSON_VALUES, WHITESPACE, WHITESPACE, st.sampled_from(["", "x", "}", " 1", "[]"]))
def test_the_same_value_or_error_as_json_loads(
    value: Any, before: str, after: str, tail: str
) -> None:
    text = before + json.dumps(value, separators=(",", ":")) + after + tail
    assert outcome(loads, text) == outcome(json.loads, text)


@given(st.text(max_size=30))
def test_any_text_fails_or_parses_as_json_loads_does(text: str) -> None:
    assert outcome(loads, text) == outcome(json.loads, text)


@pytest.mark.parametrize("text", ["", " ", "{", '{"a":1}{"b":2}', "NaN", '"\\ud800"'])
def test_edge_cases(text: str) -> None:
    assert outcome(loads, text) == outcome(json.loads, text)
