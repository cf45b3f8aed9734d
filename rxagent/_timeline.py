"""A run's timeline: its parts with the time each arrived, model and tool spans, and a plot.

:class:`Timeline` records parts as they pass (``timeline.tap()`` in a pipeline) and derives, as
it goes, one :class:`TimelineEvent` per item and the :class:`Span` of every model call and tool
call. All of it is plain data; :meth:`Timeline.plot` draws it with matplotlib, imported only
then (``pip install 'rxagent[plot]'``).

Where a span starts and ends:

- a model call: from the step's start (the ``values`` part before it, in its namespace) or, for
  a model called from inside a tool, its first chunk; to its last chunk (or its whole reply,
  or the step's ``updates`` part when its chunks were not seen);
- a tool call: from the end of the model call that asked for it (its last chunk, or the
  model step's ``updates`` part), which is when the tools node starts; to the ToolMessage that
  answers it. An agent used as a tool spans its whole nested run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import reactivex
from reactivex import abc

from ._messages import AIMessage, AIMessageChunk, ToolMessage
from ._render import ModelCall, Part, PartReader, as_text, plural, reasoning_parts, shorten

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Span", "Timeline", "TimelineEvent"]

_T = TypeVar("_T")

_NODE_ORDER = {"model": 0, "tools": 1}

EventKind = Literal[
    "token", "reasoning", "tool_args", "chunk", "message", "tool_message", "update", "values",
    "custom", "item",
]


@dataclass(frozen=True)
class TimelineEvent:
    """One item of a run, when it arrived and where it came from.

    Attributes:
        time: seconds since the recording started (the subscription).
        mode: the part's stream mode (``"messages"``, ``"updates"``, ``"custom"``,
            ``"values"``); ``""`` for an item that is not a part.
        kind: what it carries: ``"token"`` (a chunk with text), ``"reasoning"``,
            ``"tool_args"`` (a tool-call fragment), ``"chunk"`` (any other chunk, e.g. the
            last one), ``"message"`` (a whole reply, ``disable_streaming=True``),
            ``"tool_message"``, ``"update"``, ``"values"``, ``"custom"``, or ``"item"``.
        ns: the namespace: ``()`` for the top-level agent, ``("tools:<call id>",)`` for an
            agent it runs as a tool, and so on.
        node: ``"model"`` or ``"tools"`` (custom events come from tools); ``""`` for
            ``values`` parts and other items.
        agent: the agent's name, when the part tells it (``lc_agent_name``).
        label: a short text: the token, the fragment, the tool or node name, the custom data.
        part: the item itself.
    """

    time: float
    mode: str
    kind: EventKind
    ns: tuple[str, ...]
    node: str
    agent: str | None
    label: str
    part: Any = field(repr=False, compare=False)


@dataclass(frozen=True)
class Span:
    """A model call or a tool call, from start to end.

    Attributes:
        kind: ``"model"`` or ``"tool"``.
        ns: the namespace of the agent that made the call.
        node: the row it belongs to: ``"model"`` for model calls of the agent's model node,
            ``"tools"`` for tool calls and for models called from inside a tool.
        name: the model's name (``ls_model_name``) or the tool's.
        start: seconds since the recording started.
        end: when it ended; ``None`` if it never did (the run failed or was cancelled).
        status: ``"success"`` or ``"error"`` for a tool call that ended, ``"done"`` for a
            model call that ended, ``"unfinished"`` otherwise.
        call_id: the tool call's id (``None`` for a model call).
        agent: the calling agent's name, when known.
    """

    kind: Literal["model", "tool"]
    ns: tuple[str, ...]
    node: str
    name: str
    start: float
    end: float | None
    status: str
    call_id: str | None = None
    agent: str | None = None

    @property
    def duration(self) -> float | None:
        """``end - start``, or ``None`` while unfinished."""
        return None if self.end is None else self.end - self.start


class _OpenSpan:
    __slots__ = ("agent", "call_id", "end", "kind", "name", "node", "ns", "start", "status")

    def __init__(self, kind: Literal["model", "tool"], ns: tuple[str, ...], node: str,
                 name: str, start: float, call_id: str | None, agent: str | None) -> None:
        self.kind: Literal["model", "tool"] = kind
        self.ns = ns
        self.node = node
        self.name = name
        self.start = start
        self.end: float | None = None
        self.status = "unfinished"
        self.call_id = call_id
        self.agent = agent

    def freeze(self) -> Span:
        return Span(self.kind, self.ns, self.node, self.name, self.start, self.end,
                    self.status, self.call_id, self.agent)


class Timeline(PartReader):
    """The parts of a run with the time each arrived, and the spans of its calls.

    Record a run with :func:`rxagent.notebook.record` (or :func:`rxagent.notebook.show`,
    which returns the timeline of what it showed), or tap a pipeline::

        timeline = Timeline()
        agent.observe(inputs).pipe(timeline.tap(), rxo.text()).run()
        timeline.spans      # model and tool calls, start to end
        timeline.plot()     # a matplotlib Figure

    Tap it before operators that turn parts into payloads: it understands parts, and
    records anything else as ``"item"`` events.
    """

    def __init__(self) -> None:
        super().__init__()
        self.started: float | None = None
        """``time.perf_counter()`` when the recording started."""
        self.ended: float | None = None
        """Seconds since the start when the stream ended (``None`` while it runs)."""
        self.error: Exception | None = None
        """The error the stream ended with, if any."""
        self._lock = threading.Lock()
        self._events: list[TimelineEvent] = []
        self._spans: list[_OpenSpan] = []
        self._model_spans: dict[ModelCall, _OpenSpan] = {}
        self._tools: dict[str, _OpenSpan] = {}  # tool call id -> span
        self._step_start: dict[tuple[str, ...], float] = {}  # last ``values`` part, per ns
        self._state: dict[str, Any] | None = None
        self._moment = 0.0  # when the item being read arrived

    # -- recording ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the clock (once; later calls do nothing). ``tap()`` calls it on subscribe."""
        with self._lock:
            if self.started is None:
                self.started = time.perf_counter()

    def now(self) -> float:
        """Seconds since the start (starting the clock if needed)."""
        if self.started is None:
            self.start()
        assert self.started is not None
        return time.perf_counter() - self.started

    def add(self, item: Any, at: float | None = None) -> None:
        """Record one item of the stream.

        Args:
            item: a part (``{"type", "ns", "data"}``) or any other item.
            at: when it arrived, in seconds since the start; now when ``None``.
        """
        moment = self.now() if at is None else at
        with self._lock:
            self._fold(item, moment)

    def finish(self, error: Exception | None = None) -> None:
        """Mark the end of the stream (``tap()`` calls it on completion or error)."""
        moment = self.now()
        with self._lock:
            self.ended = moment
            self.error = error

    def tap(self) -> Callable[[reactivex.Observable[_T]], reactivex.Observable[_T]]:
        """An operator that records every item passing through, and passes it on unchanged.

        The clock starts at the first subscription. ::

            --p1--p2--p3--|   tap()   --p1--p2--p3--|   (each recorded with its time)
        """

        def operator(source: reactivex.Observable[_T]) -> reactivex.Observable[_T]:
            def subscribe(
                observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
            ) -> abc.DisposableBase:
                self.start()

                def on_next(item: _T) -> None:
                    try:
                        self.add(item)
                    except Exception as error:  # a bug of ours must not hide the run's items
                        observer.on_error(error)
                        return
                    observer.on_next(item)

                def on_error(error: Exception) -> None:
                    self.finish(error)
                    observer.on_error(error)

                def on_completed() -> None:
                    self.finish()
                    observer.on_completed()

                return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

            return reactivex.create(subscribe)

        return operator

    # -- the plain-data view -----------------------------------------------------------------

    @property
    def events(self) -> list[TimelineEvent]:
        """Every recorded item as an event, in the order they arrived."""
        with self._lock:
            return list(self._events)

    @property
    def spans(self) -> list[Span]:
        """The model calls and tool calls, in the order they started."""
        with self._lock:
            return [span.freeze() for span in self._spans]

    @property
    def parts(self) -> list[Any]:
        """The recorded items themselves."""
        return [event.part for event in self.events]

    @property
    def state(self) -> dict[str, Any] | None:
        """The top-level agent's last state (its last ``values`` part), if one was seen."""
        return self._state

    @property
    def duration(self) -> float:
        """Seconds from the start to the end of the stream (or to the last event so far)."""
        if self.ended is not None:
            return self.ended
        events = self._events
        return events[-1].time if events else 0.0

    @property
    def rows(self) -> list[tuple[tuple[str, ...], str]]:
        """The ``(namespace, node)`` rows of the plot, in order: namespaces as they first
        appeared, each with its ``model`` row before its ``tools`` row."""
        with self._lock:
            return _rows(self._events, self._spans)

    def agent_name(self, ns: tuple[str, ...]) -> str | None:
        """The name of the agent running in namespace ``ns``, when the parts told it."""
        return self._agents.get(ns)

    def _row_label(self, row: tuple[tuple[str, ...], str]) -> str:
        ns, node = row
        return "  " * max(len(ns) - 1, 0) + self._heading(ns, node)

    def __repr__(self) -> str:
        spans = self.spans
        models = sum(span.kind == "model" for span in spans)
        tools = sum(span.kind == "tool" for span in spans)
        return (f"Timeline({len(self._events)} events over {self.duration:.3f} s: "
                f"{models} model calls, {tools} tool calls)")

    # -- the plot ------------------------------------------------------------------------------

    def plot(self, *, ax: Axes | None = None, title: str | None = None,
             width: float = 10.0, legend: bool = True) -> Figure:
        """Draw the timeline: one row per (namespace, node), time across.

        Model calls are light bars with a tick per token (text blue, tool-call fragments
        orange, reasoning grey); tool calls are bars on the ``tools`` row (stacked when they
        run in parallel; red when they failed, hatched when unfinished); custom events are
        purple diamonds; each model step's end (its ``updates`` part) is a black bar.

        Args:
            ax: draw into these axes; by default a new figure is made (no pyplot involved).
            title: the title; by default a summary of the run.
            width: the new figure's width in inches.
            legend: draw a legend of what appears (below a new figure, right of ``ax``).

        Returns:
            The figure drawn into. In Jupyter it shows as an image when it is a cell's value.

        Raises:
            ImportError: matplotlib is not installed (``pip install 'rxagent[plot]'``).
        """
        return _plot(self, ax=ax, title=title, width=width, legend=legend)

    # -- folding parts into events and spans ---------------------------------------------------

    def _fold(self, item: Any, moment: float) -> None:
        self._moment = moment
        self._read(item)

    def _event(self, part: Part, kind: EventKind, node: str, label: str) -> None:
        self._events.append(TimelineEvent(self._moment, part.mode, kind, part.ns, node,
                                          self._agents.get(part.ns), label, part.item))

    def _on_item(self, item: Any) -> None:
        self._events.append(
            TimelineEvent(self._moment, "", "item", (), "", None, as_text(item), item)
        )

    def _on_values(self, part: Part) -> None:
        self._step_start[part.ns] = self._moment
        if part.ns == () and isinstance(part.data, dict):
            self._state = part.data
        self._event(part, "values", "", "")

    def _on_custom(self, part: Part) -> None:
        self._event(part, "custom", "tools", shorten(as_text(part.data), 80))

    def _on_update(self, part: Part, node: str, value: Any) -> None:
        self._event(part, "update", node, node)
        super()._on_update(part, node, value)

    def _on_other_message(self, part: Part, message: Any, metadata: dict[str, Any]) -> None:
        self._note_agent(part.ns, metadata)
        node = _node(metadata)
        if isinstance(message, ToolMessage):
            self._event(part, "tool_message", node, message.name or "")
            self._end_tool(message)
        else:  # pragma: no cover - runs emit no other kind
            self._event(part, "chunk", node, repr(message))

    def _on_call_start(self, part: Part, call: ModelCall) -> None:
        metadata = call.metadata or {}
        node = _node(metadata)
        start = self._moment
        if node == "model":
            start = self._step_start.pop(part.ns, start)
        span = _OpenSpan("model", part.ns, node or "model",
                         str(metadata.get("ls_model_name") or "model"), start, None,
                         metadata.get("lc_agent_name"))
        self._spans.append(span)
        self._model_spans[call] = span

    def _on_whole(self, part: Part, call: ModelCall, message: AIMessage) -> None:
        self._event(part, "message", _node(call.metadata or {}), message.text)
        self._end_model(self._model_spans[call])
        for tool_call in message.tool_calls:
            self._start_tool(part.ns, tool_call.get("id"), tool_call["name"])

    def _on_chunk(self, part: Part, call: ModelCall, chunk: AIMessageChunk) -> None:
        kind, label = _chunk_event(chunk)
        self._event(part, kind, _node(call.metadata or {}), label)
        if chunk.chunk_position == "last":
            self._end_model(self._model_spans[call])
            for draft in call.requested():
                self._start_tool(part.ns, draft.id, draft.name)

    def _end_model(self, span: _OpenSpan) -> None:
        if span.end is None:
            span.end = self._moment
            span.status = "done"

    def _on_tool_result(self, part: Part, message: ToolMessage) -> None:
        self._end_tool(message)

    def _on_reply(self, part: Part, node: str, message: AIMessage) -> None:
        # The model step's update: its calls end, and the tools node starts on what it asked.
        if node != "model":
            return
        self._end_model_step(part.ns, message)
        for tool_call in message.tool_calls:
            self._start_tool(part.ns, tool_call.get("id"), tool_call["name"])

    def _end_model_step(self, ns: tuple[str, ...], message: AIMessage) -> None:
        open_spans = [s for s in self._spans if s.kind == "model" and s.ns == ns
                      and s.node == "model" and s.end is None]
        for span in open_spans:
            self._end_model(span)
        step_start = self._step_start.pop(ns, None)
        if not open_spans and step_start is not None:
            # The model's chunks never came by (a "nostream" model, or a filter).
            name = str(message.response_metadata.get("model_name") or "model")
            span = _OpenSpan("model", ns, "model", name, step_start, None,
                             self._agents.get(ns))
            self._end_model(span)
            self._spans.append(span)

    def _start_tool(self, ns: tuple[str, ...], call_id: str | None, name: str) -> None:
        if not call_id or call_id in self._tools:
            return
        span = _OpenSpan("tool", ns, "tools", name, self._moment, call_id,
                         self._agents.get(ns))
        self._tools[call_id] = span
        self._spans.append(span)

    def _end_tool(self, message: ToolMessage) -> None:
        span = self._tools.get(message.tool_call_id)
        if span is None or span.end is not None:
            return
        span.end = self._moment
        span.status = message.status


def _node(metadata: dict[str, Any]) -> str:
    return str(metadata.get("langgraph_node") or "")


def _chunk_event(chunk: AIMessageChunk) -> tuple[EventKind, str]:
    """What a chunk carries, for its event: text, else tool-call fragments, else reasoning."""
    if chunk.text:
        return "token", chunk.text
    fragments = chunk.tool_call_chunks
    if fragments:
        args = "".join(fragment.get("args") or "" for fragment in fragments)
        return "tool_args", args or _names(fragments)
    if reasoning_parts(chunk):
        return "reasoning", ""
    return "chunk", ""


def _names(fragments: Iterable[Any]) -> str:
    return ", ".join(str(f.get("name")) for f in fragments if f.get("name"))


def _rows(events: list[TimelineEvent], spans: list[_OpenSpan]
          ) -> list[tuple[tuple[str, ...], str]]:
    first_seen: dict[tuple[str, ...], int] = {}
    nodes: dict[tuple[tuple[str, ...], str], None] = {}
    for event in events:
        first_seen.setdefault(event.ns, len(first_seen))
        if event.node:
            nodes.setdefault((event.ns, event.node), None)
    for span in spans:
        first_seen.setdefault(span.ns, len(first_seen))
        nodes.setdefault((span.ns, span.node), None)
    return sorted(nodes, key=lambda row: (first_seen[row[0]], _NODE_ORDER.get(row[1], 2), row[1]))


# -- drawing ---------------------------------------------------------------------------------

_TOKEN, _ARGS, _REASONING = "#1f77b4", "#ff7f0e", "#8c8c8c"
_MODEL_BAR, _TOOL_BAR, _TOOL_ERROR, _CUSTOM = "#cfe2f3", "#59a14f", "#e15759", "#8e44ad"


def _import_matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "Timeline.plot() needs matplotlib, an optional dependency of rxagent: "
            "pip install 'rxagent[plot]'"
        ) from error
    del matplotlib
    return Figure


def _lanes(spans: list[Span]) -> list[int]:
    """Give overlapping spans different lanes (in start order, first free lane)."""
    ends: list[float] = []
    lanes: list[int] = []
    for span in spans:
        end = span.end if span.end is not None else float("inf")
        for lane, busy_until in enumerate(ends):
            if busy_until <= span.start:
                ends[lane] = end
                lanes.append(lane)
                break
        else:
            ends.append(end)
            lanes.append(len(ends) - 1)
    return lanes


_Row = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class _Frame:
    """What every drawing step needs: the axes, each row's place, and where time ends."""

    ax: Axes
    position: dict[_Row, int]
    end_of_time: float
    half: float = 0.38  # half a row's height

    def end(self, span: Span) -> float:
        """Where ``span``'s bar ends: its end, or the end of time while it is unfinished."""
        return span.end if span.end is not None else self.end_of_time


def _plot(timeline: Timeline, *, ax: Axes | None, title: str | None, width: float,
          legend: bool) -> Figure:
    figure_class = _import_matplotlib()
    _register_figure_display(figure_class)
    events = timeline.events
    spans = timeline.spans
    rows = timeline.rows
    figure, ax, own_figure = _figure_and_axes(figure_class, ax, width, len(rows))
    frame = _Frame(ax, {row: index for index, row in enumerate(rows)},
                   max(timeline.duration, max((e.time for e in events), default=0.0), 1e-3))
    tool_spans = [span for span in spans if span.kind == "tool"]
    by_row: dict[_Row, list[Span]] = {}
    for span in tool_spans:
        by_row.setdefault((span.ns, span.node), []).append(span)
    _draw_model_calls(frame, spans)
    _draw_tool_calls(frame, by_row)
    _draw_marks(frame, events, by_row)
    _draw_axes(frame, [timeline._row_label(row) for row in rows])
    if title is None:
        title = _title(timeline, events, spans, tool_spans)
    ax.set_title(title, fontsize=10, loc="left")
    if legend:
        _draw_legend(figure, ax, own_figure, events, tool_spans)
    return figure


def _figure_and_axes(figure_class: Any, ax: Axes | None, width: float, rows: int
                     ) -> tuple[Figure, Axes, bool]:
    """The figure and axes to draw into, and whether the figure is our own."""
    if ax is None:
        figure: Figure = figure_class(figsize=(width, 1.2 + 0.55 * max(rows, 1)),
                                      layout="constrained")
        return figure, figure.add_subplot(), True
    owner = ax.get_figure()
    assert owner is not None
    return owner, ax, False  # type: ignore[return-value]


def _draw_model_calls(frame: _Frame, spans: list[Span]) -> None:
    """A light bar per model call, hatched while unfinished."""
    for span in spans:
        if span.kind != "model" or (span.ns, span.node) not in frame.position:
            continue
        y = frame.position[(span.ns, span.node)]
        frame.ax.broken_barh([(span.start, max(frame.end(span) - span.start, 1e-9))],
                             (y - frame.half, 2 * frame.half), facecolors=_MODEL_BAR,
                             edgecolors="#9fc5e8", linewidth=0.6,
                             hatch=None if span.end is not None else "//", zorder=1)


def _draw_tool_calls(frame: _Frame, by_row: dict[_Row, list[Span]]) -> None:
    """A named bar per tool call; calls that overlap share their row in lanes."""
    for row, row_spans in by_row.items():
        if row not in frame.position:
            continue
        lanes = _lanes(row_spans)
        height = 2 * frame.half / (max(lanes) + 1)
        for span, lane in zip(row_spans, lanes, strict=True):
            bottom = frame.position[row] - frame.half + lane * height
            length = max(frame.end(span) - span.start, frame.end_of_time / 400)
            colour = _TOOL_ERROR if span.status == "error" else _TOOL_BAR
            frame.ax.broken_barh([(span.start, length)], (bottom + 0.04, height - 0.08),
                                 facecolors=colour, alpha=0.85, zorder=2,
                                 hatch=None if span.end is not None else "//")
            frame.ax.text(span.start + frame.end_of_time / 200, bottom + height / 2,
                          f" {span.name}", ha="left", va="center", fontsize=7, color="white",
                          zorder=3, clip_on=True)


# The mark each kind of event leaves on its row: a tick of a colour, a diamond, a step's end.
_MARKS: dict[str, str] = {
    "token": _TOKEN, "message": _TOKEN, "tool_args": _ARGS, "reasoning": _REASONING,
    "custom": "custom", "update": "step",
}


def _draw_marks(frame: _Frame, events: list[TimelineEvent],
                by_row: dict[_Row, list[Span]]) -> None:
    """Ticks for tokens, fragments and reasoning; diamonds for custom events; a black bar
    where a step ends."""
    marks = _marks(frame, events, by_row)
    ax, half = frame.ax, frame.half
    for colour in (_TOKEN, _ARGS, _REASONING):
        xs, ys = marks[colour]
        if xs:
            ax.vlines(xs, [y - 0.28 for y in ys], [y + 0.28 for y in ys], colors=colour,
                      linewidth=0.9, zorder=4)
    xs, ys = marks["custom"]
    if xs:
        ax.scatter(xs, ys, marker="D", s=22, color=_CUSTOM, zorder=5)
    xs, ys = marks["step"]
    if xs:
        ax.vlines(xs, [y - half for y in ys], [y + half for y in ys], colors="black",
                  linewidth=1.6, zorder=5)


def _marks(frame: _Frame, events: list[TimelineEvent], by_row: dict[_Row, list[Span]]
           ) -> dict[str, tuple[list[float], list[float]]]:
    """Where each mark goes (times, rows), by mark."""
    marks: dict[str, tuple[list[float], list[float]]] = {
        mark: ([], []) for mark in (_TOKEN, _ARGS, _REASONING, "custom", "step")
    }
    for event in events:
        row = (event.ns, event.node)
        mark = _MARKS.get(event.kind)
        if mark is None or row not in frame.position:
            continue
        if mark == "step" and row in by_row:
            continue  # on a tools row each tool's bar already ends where its update arrives
        marks[mark][0].append(event.time)
        marks[mark][1].append(frame.position[row])
    return marks


def _draw_axes(frame: _Frame, labels: list[str]) -> None:
    ax = frame.ax
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # the first row on top
    ax.set_xlim(0, frame.end_of_time * 1.02)
    ax.set_xlabel("seconds since subscribe")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def _title(timeline: Timeline, events: list[TimelineEvent], spans: list[Span],
           tool_spans: list[Span]) -> str:
    """A summary of the run: its parts, duration and calls, and how it failed."""
    models = sum(span.kind == "model" for span in spans)
    title = (f"{plural(len(events), 'part')} in {timeline.duration:.2f} s · "
             f"{plural(models, 'model call')} · {plural(len(tool_spans), 'tool call')}")
    if timeline.error is not None:
        title += f" · failed: {type(timeline.error).__name__}"
    return title


def _draw_legend(figure: Figure, ax: Axes, own_figure: bool, events: list[TimelineEvent],
                 tool_spans: list[Span]) -> None:
    """A legend of what appears: below our own figure, right of the axes we were given."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    kinds = {event.kind for event in events}

    def tick(colour: str, label: str, marker: str = "|", size: float = 9) -> Line2D:
        return Line2D([], [], color=colour, marker=marker, linestyle="", markersize=size,
                      label=label)

    handles = [
        (True, Patch(facecolor=_MODEL_BAR, edgecolor="#9fc5e8", label="model call")),
        (bool(kinds & {"token", "message"}), tick(_TOKEN, "token")),
        ("tool_args" in kinds, tick(_ARGS, "tool-call fragment")),
        ("reasoning" in kinds, tick(_REASONING, "reasoning")),
        (bool(tool_spans), Patch(facecolor=_TOOL_BAR, label="tool call")),
        (any(span.status == "error" for span in tool_spans),
         Patch(facecolor=_TOOL_ERROR, label="failed tool call")),
        ("custom" in kinds, tick(_CUSTOM, "custom event", marker="D", size=5)),
        ("update" in kinds, tick("black", "step end", size=11)),
    ]
    shown = [handle for present, handle in handles if present]
    if own_figure:
        figure.legend(handles=shown, loc="outside lower center", ncols=len(shown),
                      fontsize=7, frameon=False)
    else:
        ax.legend(handles=shown, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                  frameon=False)


def _register_figure_display(figure_class: type) -> None:
    """In IPython, show a Figure that is a cell's value as an image, as ``%matplotlib inline``
    does; we never touch pyplot, so nothing else may have registered it."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(figure_class)
    except KeyError:
        import importlib

        pylabtools = importlib.import_module("IPython.core.pylabtools")
        formatter.for_type(figure_class, lambda figure: pylabtools.print_figure(figure, "png"))
