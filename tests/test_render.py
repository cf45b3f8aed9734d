"""Reading a run's parts (rxagent._render), once for the terminal, the live view and the timeline.

The parts here are made by hand, to reach what a scripted run never sends: tool calls whose
fragments interleave, reasoning, a reply seen only in an update, a namespace given as a list.
"""

from __future__ import annotations

import io
from typing import Any

# The renderers' shared reading is a private unit, tested here on purpose.
from rxagent._cli import TerminalRenderer
from rxagent._notebook import LiveView
from rxagent._render import ModelCall, Part, PartReader, read_part
from rxagent._timeline import Timeline
from rxagent.messages import AIMessage, AIMessageChunk, ToolMessage

META = {"langgraph_node": "model", "langgraph_step": 1, "lc_agent_name": "boss"}


def fragment(index: int, id: str | None = None, name: str | None = None,
             args: str | None = None) -> dict[str, Any]:
    return {"type": "tool_call_chunk", "index": index, "id": id, "name": name, "args": args}


def chunk(metadata: dict[str, Any], ns: Any = (), **fields: Any) -> dict[str, Any]:
    return {"type": "messages", "ns": ns,
            "data": (AIMessageChunk(id="m1", **fields), metadata)}


def interleaved_calls(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """One reply whose two tool calls stream their arguments in turns."""
    return [
        chunk(metadata, content="Let me look. "),
        chunk(metadata, tool_call_chunks=[fragment(0, "a", "lookup", '{"city":')]),
        chunk(metadata, tool_call_chunks=[fragment(1, "b", "lookup", '{"city":')]),
        chunk(metadata, tool_call_chunks=[fragment(0, args='"SF"}')]),
        chunk(metadata, tool_call_chunks=[fragment(1, args='"LA"}')]),
        chunk(metadata, chunk_position="last"),
    ]


def test_a_model_call_gathers_text_reasoning_and_interleaved_tool_calls() -> None:
    call = ModelCall.streamed((), META)
    for part in interleaved_calls(META):
        call.add_chunk(part["data"][0])
    call.add_chunk(AIMessageChunk(content=[{"type": "reasoning", "reasoning": "hm"},
                                           {"type": "reasoning"}]))
    assert call.text == ["Let me look. "]
    assert call.reasoning == ["hm", ""], "an empty reasoning block still counts"
    assert [(d.id, d.name, d.args) for d in call.tool_calls.values()] == [
        ("a", "lookup", '{"city":"SF"}'), ("b", "lookup", '{"city":"LA"}'),
    ]
    assert call.done
    assert call.title("·") == "model · step 1"
    assert ModelCall.unstreamed((), "agent").title("·") == "agent (not streamed)"


def test_only_calls_with_an_id_and_a_name_are_requested() -> None:
    call = ModelCall.streamed((), META)
    call.add_chunk(AIMessageChunk(tool_call_chunks=[fragment(0, "a", "one", "{}"),
                                                    fragment(1, None, "two", "{}"),
                                                    fragment(2, "c", None, "{}")]))
    assert [draft.name for draft in call.requested()] == ["one"]


class Recorder(PartReader):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Any, ...]] = []

    def feed(self, item: Any) -> None:
        self._read(item)

    def _on_item(self, item: Any) -> None:
        self.seen.append(("item", item))

    def _on_values(self, part: Part) -> None:
        self.seen.append(("values", part.ns))

    def _on_custom(self, part: Part) -> None:
        self.seen.append(("custom", part.ns, part.data))

    def _on_call_start(self, part: Part, call: ModelCall) -> None:
        self.seen.append(("start", call.title("·"), self._heading(part.ns, "x")))

    def _on_chunk(self, part: Part, call: ModelCall, chunk: AIMessageChunk) -> None:
        self.seen.append(("chunk", chunk.text))

    def _on_whole(self, part: Part, call: ModelCall, message: AIMessage) -> None:
        self.seen.append(("whole", message.text))

    def _on_other_message(self, part: Part, message: Any, metadata: dict[str, Any]) -> None:
        self.seen.append(("other", type(message).__name__))

    def _on_tool_result(self, part: Part, message: ToolMessage) -> None:
        self.seen.append(("result", message.name))


def test_the_reader_calls_a_hook_for_each_thing_it_reads() -> None:
    nested = {"langgraph_node": "model", "langgraph_step": 3, "lc_agent_name": "helper"}
    reader = Recorder()
    for item in [
        "free text",
        {"type": "values", "ns": ["tools:a"], "data": {}},
        chunk(nested, ns=["tools:a"], content="Hi"),
        chunk(nested, ns=("tools:a",), content=" there"),
        {"type": "messages", "ns": (),
         "data": (ToolMessage(content="ok", tool_call_id="a", name="lookup"), {})},
        {"type": "custom", "ns": ("tools:b",), "data": {"n": 1}},
        {"type": "updates", "ns": (), "data": {
            "model": {"messages": [AIMessage(content="Hi there", id="m1"),
                                   AIMessage(content="quiet", id="q1")]},
            "tools": {"messages": [ToolMessage(content="ok", tool_call_id="a", name="lookup")]},
            "odd": None,
        }},
        {"type": "debug", "ns": (), "data": None},
    ]:
        reader.feed(item)
    assert reader.seen == [
        ("item", "free text"),
        ("values", ("tools:a",)),
        ("start", "model · step 3", "helper ▸ x"),
        ("chunk", "Hi"),
        ("chunk", " there"),
        ("other", "ToolMessage"),
        ("custom", ("tools:b",), {"n": 1}),
        # m1 came by in messages; q1 did not, so it is read as a call of its own, whole.
        ("start", "model (not streamed)", "x"),
        ("whole", "quiet"),
        ("result", "lookup"),
        ("item", {"type": "debug", "ns": (), "data": None}),
    ]
    assert reader._counts.phrases() == ("2 model calls", "1 tool call", "4 text chunks")


def test_only_the_four_modes_with_a_namespace_and_data_are_parts() -> None:
    assert read_part({"type": "custom", "ns": ["a"], "data": 1}) == Part(
        "custom", ("a",), 1, {"type": "custom", "ns": ["a"], "data": 1})
    assert read_part({"type": "custom", "data": 1}) is None
    assert read_part({"type": "tasks", "ns": (), "data": 1}) is None
    assert read_part(("custom", 1)) is None


def test_the_terminal_picks_an_interleaved_call_up_again() -> None:
    out = io.StringIO()
    renderer = TerminalRenderer(out)
    for part in interleaved_calls(META):
        renderer.feed(part)
    renderer.close()
    assert out.getvalue().splitlines() == [
        "▶ model · step 1",
        "  Let me look. ",
        '  ⚙ lookup({"city":)',
        '  ⚙ lookup({"city":)',
        '  ⚙ lookup(…"SF"})',
        '  ⚙ lookup(…"LA"})',
        "✔ done: 1 model call, 0 tool calls, 1 text chunk",
    ]


def test_the_live_view_shows_reasoning_and_each_call_whole() -> None:
    view = LiveView()
    view.feed(chunk(META, content=[{"type": "reasoning", "reasoning": "Thinking."}]))
    for part in interleaved_calls(META):
        view.feed(part)
    view.finish()
    assert view.text().splitlines() == [
        "▶ model · step 1",
        "  Thinking.",
        "  Let me look. ",
        '  ⚙ lookup({"city":"SF"})',
        '  ⚙ lookup({"city":"LA"})',
        "✔ done: 1 model call, 0 tool calls, 1 text chunk",
    ]
    assert "font-style: italic\">Thinking.</div>" in view.html()


def test_the_timeline_starts_each_interleaved_call_when_the_reply_ends() -> None:
    timeline = Timeline()
    for moment, part in enumerate(interleaved_calls(META)):
        timeline.add(part, at=float(moment))
    assert [(s.kind, s.name, s.call_id, s.start, s.end) for s in timeline.spans] == [
        ("model", "model", None, 0.0, 5.0),
        ("tool", "lookup", "a", 5.0, None),
        ("tool", "lookup", "b", 5.0, None),
    ]
    assert [e.kind for e in timeline.events] == ["token", "tool_args", "tool_args",
                                                 "tool_args", "tool_args", "chunk"]
    assert timeline.agent_name(()) == "boss"


def test_a_nested_agent_is_named_after_its_model_call_in_all_three() -> None:
    nested = {"langgraph_node": "model", "langgraph_step": 1, "lc_agent_name": "helper"}
    parts = [chunk(nested, ns=["tools:a"], content="Hi"),
             {"type": "custom", "ns": ["tools:a"], "data": "working"}]
    out = io.StringIO()
    renderer, view, timeline = TerminalRenderer(out), LiveView(), Timeline()
    for part in parts:
        renderer.feed(part)
        view.feed(part)
        timeline.add(part, at=0.0)
    assert "  ▶ helper ▸ tools" in out.getvalue().splitlines()
    assert "  ▶ helper ▸ tools" in view.text().splitlines()
    assert [e.agent for e in timeline.events] == ["helper", "helper"]
