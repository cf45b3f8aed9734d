"""The mode operators: errors in a stage go to on_error and end the stream, as in Rx."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.subject import Subject

from rxagent import UsageError
from rxagent import operators as rxo


def test_a_malformed_part_is_an_error_and_nothing_follows_it() -> None:
    source: Subject[Any] = Subject()
    got: list[Any] = []
    source.pipe(rxo.messages()).subscribe(got.append, got.append, lambda: got.append("|"))
    source.on_next({"type": "messages", "ns": (), "data": ("a", {})})
    source.on_next({"ns": ()})  # no "type"
    source.on_next({"type": "messages", "ns": (), "data": ("b", {})})
    source.on_completed()
    assert got[0] == ("a", {})
    assert isinstance(got[1], KeyError)
    assert len(got) == 2, "after the error: no item, no completion"


def test_a_failing_projection_cancels_the_source() -> None:
    source: Subject[Any] = Subject()
    got: list[Any] = []

    def boom(part: Any) -> Any:
        raise ValueError("bad part")

    from rxagent.operators._modes import select  # the private stage itself, on purpose

    source.pipe(select(lambda part: True, boom)).subscribe(got.append, got.append)
    source.on_next({"type": "custom", "ns": (), "data": 1})
    assert isinstance(got[0], ValueError)
    assert not source.observers, "the stage let go of its source"


def test_stream_mode_shapes() -> None:
    source: Subject[Any] = Subject()
    single: list[Any] = []
    labelled: list[Any] = []
    nested: list[Any] = []
    source.pipe(rxo.stream_mode("custom")).subscribe(single.append)
    source.pipe(rxo.stream_mode("custom", labelled=True)).subscribe(labelled.append)
    source.pipe(rxo.stream_mode("custom", "updates", subgraphs=True)).subscribe(nested.append)
    source.on_next({"type": "custom", "ns": ("tools:1",), "data": "x"})
    source.on_next({"type": "values", "ns": (), "data": {}})
    assert single == ["x"]
    assert labelled == [("custom", "x")]
    assert nested == [(("tools:1",), "custom", "x")]


def test_unknown_modes_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="stream_mode"):
        rxo.stream_mode("tokens")
    with pytest.raises(UsageError):
        rxo.parts("values", "nope")
