"""rxagent.notebook: the timeline of a run, the live view, and show()'s plain-text fallback."""

from __future__ import annotations

import html.parser
import importlib
import io
import sys
import types
from typing import Any

import anyio
import pytest
import reactivex
import reactivex.operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from rxagent import RxAgentError, UsageError, create_agent, get_stream_writer
from rxagent import operators as rxo
from rxagent._notebook import TICK, LiveView, in_jupyter, with_ticks  # its private units
from rxagent.messages import AIMessage
from rxagent.notebook import Span, Timeline, record, show
from rxagent.testing import ScriptedChatModel

QUESTION = {"messages": [{"role": "user", "content": "Write me a weather report for SF."}]}


def lookup(city: str) -> str:
    """Look the weather up."""
    get_stream_writer()(f"looking up {city}")
    return f"Sunny in {city}."


def researcher() -> Any:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "SF"},
                                           "id": "r1"}]),
        "It is sunny in SF.",
    ])
    return create_agent(model, tools=[lookup], name="researcher")


def writer(**options: Any) -> Any:
    return create_agent(ScriptedChatModel(["A bright day."], **options), name="writer")


def supervisor(*agents: Any) -> Any:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[
            {"name": "researcher", "args": {"request": "weather?"}, "id": "c1"},
            {"name": "writer", "args": {"request": "write it"}, "id": "c2"},
        ]),
        "Report: sunny.",
    ])
    return create_agent(model, tools=list(agents), name="supervisor")


def team(**writer_options: Any) -> Any:
    return supervisor(researcher(), writer(**writer_options))


# -- the timeline ------------------------------------------------------------------------------


def test_the_timeline_of_a_run_with_tools_and_sub_agents() -> None:
    timeline = record(team(), QUESTION)
    spans = timeline.spans
    assert [(s.kind, s.ns, s.name) for s in spans if s.kind == "tool"] == [
        ("tool", (), "researcher"),
        ("tool", (), "writer"),
        ("tool", ("tools:c1",), "lookup"),
    ]
    models = [s for s in spans if s.kind == "model"]
    # The sub-agents run concurrently, so only the first and last call have a set place.
    assert sorted((s.ns, s.agent or "") for s in models) == [
        ((), "supervisor"), ((), "supervisor"), (("tools:c1",), "researcher"),
        (("tools:c1",), "researcher"), (("tools:c2",), "writer"),
    ]
    assert models[0].ns == models[-1].ns == ()
    assert all(s.end is not None and s.end >= s.start for s in spans)
    assert {s.status for s in spans if s.kind == "tool"} == {"success"}
    assert {s.status for s in models} == {"done"}

    by_call = {s.call_id: s for s in spans if s.kind == "tool"}
    for call_id in ("c1", "c2"):
        nested = [s for s in spans if s.ns == (f"tools:{call_id}",)]
        assert nested, f"the sub-agent of {call_id} made calls"
        outer = by_call[call_id]
        assert outer.end is not None
        assert outer.start <= min(s.start for s in nested)
        assert max(s.end or 0.0 for s in nested) <= outer.end, "a sub-agent's tool span covers"
    first_model, last_model = models[0], models[-1]
    assert first_model.end is not None and first_model.end <= by_call["c1"].start
    assert by_call["c1"].end is not None and by_call["c1"].end <= last_model.start

    assert timeline.rows == [
        ((), "model"), ((), "tools"),
        (("tools:c1",), "model"), (("tools:c1",), "tools"),
        (("tools:c2",), "model"),
    ]
    assert timeline.agent_name(("tools:c1",)) == "researcher"
    assert timeline.state is not None
    assert timeline.state["messages"][-1].text == "Report: sunny."
    assert timeline.ended is not None and timeline.error is None


def test_events_carry_each_part_with_its_place_in_the_run() -> None:
    timeline = record(team(), QUESTION)
    events = timeline.events
    assert [e.part for e in events] == timeline.parts
    times = [e.time for e in events]
    assert times == sorted(times) and times[0] >= 0.0
    assert timeline.duration >= times[-1]

    tokens = [e for e in events if e.kind == "token"]
    by_ns: dict[tuple[str, ...], str] = {}
    for event in tokens:
        by_ns[event.ns] = by_ns.get(event.ns, "") + event.label
    assert by_ns == {
        (): "Report: sunny.",
        ("tools:c1",): "It is sunny in SF.",
        ("tools:c2",): "A bright day.",
    }
    assert all(e.node == "model" and e.mode == "messages" for e in tokens)
    (custom,) = [e for e in events if e.kind == "custom"]
    assert (custom.ns, custom.node, custom.label) == (("tools:c1",), "tools", "looking up SF")
    args = "".join(e.label for e in events if e.kind == "tool_args" and e.ns == ("tools:c1",))
    assert '"city"' in args and "SF" in args
    updates = [(e.ns, e.node) for e in events if e.kind == "update"]
    assert updates.count(((), "model")) == 2 and updates.count(((), "tools")) == 2
    assert {e.kind for e in events} >= {"values", "update", "token", "tool_args", "custom",
                                        "tool_message", "chunk"}


def test_a_whole_reply_and_an_unstreamed_model_still_get_spans() -> None:
    whole = record(team(disable_streaming=True), QUESTION)
    (message,) = [e for e in whole.events if e.kind == "message"]
    assert message.ns == ("tools:c2",) and message.label == "A bright day."
    assert any(s.kind == "model" and s.ns == ("tools:c2",) and s.end is not None
               for s in whole.spans)

    quiet = record(team(tags=["nostream"]), QUESTION)
    assert not [e for e in quiet.events if e.ns == ("tools:c2",) and e.mode == "messages"]
    (span,) = [s for s in quiet.spans if s.kind == "model" and s.ns == ("tools:c2",)]
    assert span.end is not None and span.end >= span.start


def test_a_failed_tool_and_an_unfinished_one() -> None:
    def broken(city: str) -> str:
        """Always fails."""
        raise RuntimeError("no data")

    failing = create_agent(ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "broken", "args": {"city": "SF"},
                                           "id": "x"}]),
        "Sorry.",
    ]), tools=[broken])
    (span,) = [s for s in record(failing, QUESTION).spans if s.kind == "tool"]
    assert (span.name, span.status) == ("broken", "error")

    async def wait_forever() -> str:
        """Never returns."""
        await anyio.sleep_forever()
        return "unreachable"

    stuck = create_agent(ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "wait_forever", "args": {}, "id": "w"}]),
    ]), tools=[wait_forever])
    def before_the_first_step_ends(part: Any) -> bool:
        return bool(part["type"] != "updates")

    timeline = Timeline()
    stuck.observe(QUESTION).pipe(  # leaves once the model has asked for the tool
        timeline.tap(), ops.take_while(before_the_first_step_ends), ops.to_list(),
    ).run()
    (tool,) = [s for s in timeline.spans if s.kind == "tool"]
    assert (tool.end, tool.status, tool.duration) == (None, "unfinished", None)


def test_tap_records_items_that_are_not_parts_and_passes_everything_on() -> None:
    timeline = Timeline()
    words = create_agent(ScriptedChatModel(["one two"])).observe(QUESTION).pipe(
        rxo.text(), timeline.tap(), ops.to_list()
    ).run()
    assert words == ["one", " two"]
    assert [(e.kind, e.label) for e in timeline.events] == [("item", "one"), ("item", " two")]
    assert timeline.spans == []


def test_a_failing_run_is_raised_and_its_timeline_keeps_the_error() -> None:
    exhausted = create_agent(ScriptedChatModel([]))
    with pytest.raises(RxAgentError):
        record(exhausted, QUESTION)
    timeline = Timeline()
    with pytest.raises(RxAgentError):
        exhausted.observe(QUESTION).pipe(timeline.tap()).run()
    assert isinstance(timeline.error, RxAgentError)


def test_show_and_record_check_what_they_are_given() -> None:
    with pytest.raises(UsageError, match="with its input"):
        record(team())
    with pytest.raises(UsageError, match="Agent"):
        record([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="already is a run"):
        show(team().observe(QUESTION), QUESTION)
    with pytest.raises(UsageError, match="refresh"):
        show(team(), QUESTION, refresh=0)
    with pytest.raises(UsageError, match="max_progress"):
        show(team(), QUESTION, max_progress=-1)


# -- show(): the plain-text fallback -------------------------------------------------------------


def test_show_prints_plain_text_outside_jupyter_and_returns_the_timeline() -> None:
    assert not in_jupyter()
    out = io.StringIO()
    timeline = show(team(), QUESTION, file=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "▶ model · step 1"
    assert '  ⚙ researcher({"request":"weather?"})' in lines
    assert "  ▶ researcher ▸ model · step 1" in lines
    assert "    · looking up SF" in lines
    assert "  ✓ writer → A bright day." in lines
    assert lines[-2:] == ["  Report: sunny.", "✔ done: 5 model calls, 3 tool calls, 10 text chunks"]
    assert "\x1b[" not in out.getvalue()
    assert isinstance(timeline, Timeline) and timeline.state is not None


def test_show_without_a_file_prints_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    show(create_agent(ScriptedChatModel(["Hello there."])), QUESTION)
    assert capsys.readouterr().out.splitlines() == [
        "▶ model · step 1", "  Hello there.", "✔ done: 1 model call, 0 tool calls, 2 text chunks",
    ]


def test_show_shows_a_pipeline_of_payloads_too() -> None:
    out = io.StringIO()
    agent = create_agent(ScriptedChatModel(["Just words."]))
    show(agent.observe(QUESTION).pipe(rxo.text()), file=out)
    assert out.getvalue().splitlines()[0] == "Just words."


def test_show_says_where_a_failing_run_stopped_then_raises() -> None:
    out = io.StringIO()
    with pytest.raises(RxAgentError):
        show(create_agent(ScriptedChatModel([])), QUESTION, file=out)
    assert out.getvalue().splitlines()[-1].startswith("✗ stopped (")


# -- show() in Jupyter, with IPython's display stood in for ----------------------------------------


class FakeHandle:
    def __init__(self, bundles: list[dict[str, str]]) -> None:
        self.bundles = bundles

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        assert raw
        self.bundles.append(bundle)


@pytest.fixture
def fake_jupyter(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    bundles: list[dict[str, str]] = []
    shell = types.SimpleNamespace(kernel=object())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    display_module = types.ModuleType("IPython.display")

    def display(bundle: dict[str, str], raw: bool = False, display_id: bool = False) -> Any:
        assert raw and display_id
        bundles.append(bundle)
        return FakeHandle(bundles)

    display_module.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    return bundles


def test_show_in_jupyter_redraws_one_output_until_the_run_is_done(
    fake_jupyter: list[dict[str, str]],
) -> None:
    assert in_jupyter()
    timeline = show(team(), QUESTION)
    first, last = fake_jupyter[0], fake_jupyter[-1]
    assert first["text/plain"].startswith("… running")
    assert last["text/plain"].endswith("✔ done: 5 model calls, 3 tool calls, 10 text chunks")
    assert "researcher ▸ model · step 1" in last["text/html"]
    assert timeline.state is not None


# -- the live view -------------------------------------------------------------------------------


def team_parts() -> list[Any]:
    parts: list[Any] = team().observe(QUESTION).pipe(ops.to_list()).run()
    return parts


def test_the_view_nests_sub_agents_inside_their_callers_tools_step() -> None:
    view = LiveView()
    for part in team_parts():
        view.feed(part)
    view.finish()
    assert view.text().splitlines() == [
        "▶ model · step 1",
        '  ⚙ researcher({"request":"weather?"})',
        '  ⚙ writer({"request":"write it"})',
        "▶ tools",
        "  ▶ researcher ▸ model · step 1",
        '    ⚙ lookup({"city":"SF"})',
        "  ▶ researcher ▸ tools",
        "    · looking up SF",
        "    ✓ lookup → Sunny in SF.",
        "  ▶ researcher ▸ model · step 3",
        "    It is sunny in SF.",
        "  ✓ researcher → It is sunny in SF.",
        "  ▶ writer ▸ model · step 1",
        "    A bright day.",
        "  ✓ writer → A bright day.",
        "▶ model · step 3",
        "  Report: sunny.",
        "✔ done: 5 model calls, 3 tool calls, 10 text chunks",
    ]


def test_a_tool_call_forms_as_its_arguments_arrive() -> None:
    view = LiveView()
    seen = []
    for part in create_agent(ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "SF"},
                                           "id": "a"}]),
        "Done.",
    ]), tools=[lookup]).observe(QUESTION).pipe(ops.to_list()).run():
        view.feed(part)
        lines = [line for line in view.text().splitlines() if "⚙" in line]
        if lines and lines[-1] not in seen:
            seen.append(lines[-1])
    assert seen[0] == "  ⚙ lookup(…"
    assert '  ⚙ lookup({"city…' in seen
    assert seen[-1] == '  ⚙ lookup({"city":"SF"})'


class TagChecker(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing open"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_is_balanced_and_escapes_what_the_model_says() -> None:
    view = LiveView()
    agent = create_agent(ScriptedChatModel(["Use <b>bold</b> & <script>x</script>"]))
    parts = agent.observe(QUESTION).pipe(ops.to_list()).run()
    for part in parts[:3]:
        view.feed(part)
    running = view.html()
    assert "▌" in running, "a cursor while the text grows"
    for part in parts[3:]:
        view.feed(part)
    view.finish()
    checker = TagChecker()
    checker.feed(view.html())
    checker.close()
    assert checker.open == []
    assert "<script>" not in view.html()
    assert "Use <b>bold</b> & <script>x</script>" in "".join(checker.text)
    assert "▌" not in view.html()


def test_many_progress_lines_are_cut_to_the_latest() -> None:
    def fetch(count: int) -> str:
        """Fetch records."""
        writer = get_stream_writer()
        for done in range(1, count + 1):
            writer(f"Fetched {done}/{count}")
        return "ok"

    agent = create_agent(ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "fetch", "args": {"count": 20}, "id": "f"}]),
        "Done.",
    ]), tools=[fetch])
    view = LiveView(max_progress=3)
    for part in agent.observe(QUESTION).pipe(ops.to_list()).run():
        view.feed(part)
    lines = view.text().splitlines()
    start = lines.index("▶ tools")
    assert lines[start + 1:start + 6] == [
        "  · … 17 earlier progress lines",
        "  · Fetched 18/20",
        "  · Fetched 19/20",
        "  · Fetched 20/20",
        "  ✓ fetch → ok",
    ]
    assert "Fetched 17/20" not in view.html() and "Fetched 18/20" in view.html()


def test_ticks_come_while_the_source_is_quiet_and_stop_with_it() -> None:
    scheduler = TestScheduler()
    source: Subject[str] = Subject()
    seen: list[Any] = []
    source.pipe(with_ticks(1.0, scheduler)).subscribe(
        seen.append, on_completed=lambda: seen.append("|")
    )
    scheduler.advance_to(2.5)
    source.on_next("a")
    source.on_completed()
    scheduler.advance_to(10.0)
    assert seen == [TICK, TICK, "a", "|"]


# -- the plot ------------------------------------------------------------------------------------


def test_plot_draws_a_figure_with_a_row_per_agent_and_node() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    timeline = record(team(), QUESTION)
    figure = timeline.plot(title="the team")
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels == ["model", "tools", "researcher ▸ model", "researcher ▸ tools",
                      "writer ▸ model"]
    assert axes.get_title(loc="left") == "the team"
    figure.savefig(io.BytesIO(), format="png")  # renders without a display


def test_plot_draws_into_given_axes() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figure = Figure()
    top, bottom = figure.subplots(2, 1)
    timeline = record(create_agent(ScriptedChatModel(["Hi."])), QUESTION)
    assert timeline.plot(ax=bottom, legend=False) is figure
    assert [label.get_text() for label in bottom.get_yticklabels()] == ["model"]
    assert bottom.get_title(loc="left") and not top.get_title(loc="left"), "top left alone"


def test_plot_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    timeline = record(create_agent(ScriptedChatModel(["Hi."])), QUESTION)
    with pytest.raises(ImportError, match=r"rxagent\[plot\]"):
        timeline.plot()


# -- the module -----------------------------------------------------------------------------------


def test_the_public_names_resolve() -> None:
    module = importlib.import_module("rxagent.notebook")
    assert sorted(module.__all__) == ["Span", "Timeline", "TimelineEvent", "record", "show"]
    assert all(hasattr(module, name) for name in module.__all__)
    assert Span.__dataclass_fields__  # plain data
    assert isinstance(reactivex.empty().pipe(Timeline().tap()), reactivex.Observable)
