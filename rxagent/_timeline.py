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

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Span", "Timeline", "TimelineEvent"]

_T = TypeVar("_T")

_PART_TYPES = frozenset({"values", "updates", "messages", "custom"})
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


class Timeline:
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
        self.started: float | None = None
        """``time.perf_counter()`` when the recording started."""
        self.ended: float | None = None
        """Seconds since the start when the stream ended (``None`` while it runs)."""
        self.error: Exception | None = None
        """The error the stream ended with, if any."""
        self._lock = threading.Lock()
        self._events: list[TimelineEvent] = []
        self._spans: list[_OpenSpan] = []
        self._model_calls: dict[int, tuple[Any, _OpenSpan]] = {}  # id(metadata) -> span
        self._call_headers: dict[int, dict[Any, tuple[str, str]]] = {}  # index -> (id, name)
        self._tools: dict[str, _OpenSpan] = {}  # tool call id -> span
        self._step_start: dict[tuple[str, ...], float] = {}  # last ``values`` part, per ns
        self._agents: dict[tuple[str, ...], str] = {}
        self._state: dict[str, Any] | None = None

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
        if not _is_part(item):
            label = item if isinstance(item, str) else repr(item)
            self._events.append(TimelineEvent(moment, "", "item", (), "", None, label, item))
            return
        mode: str = item["type"]
        ns: tuple[str, ...] = tuple(item["ns"])
        data = item["data"]
        if mode == "messages":
            message, metadata = data
            self._message(item, moment, ns, message, metadata)
        elif mode == "updates":
            for node, update in data.items():
                self._event(item, moment, "update", ns, node, node)
                self._update(moment, ns, node, update)
        elif mode == "custom":
            self._event(item, moment, "custom", ns, "tools", _short(data))
        else:
            self._step_start[ns] = moment
            if ns == () and isinstance(data, dict):
                self._state = data
            self._event(item, moment, "values", ns, "", "")

    def _event(self, part: Any, moment: float, kind: EventKind, ns: tuple[str, ...],
               node: str, label: str) -> None:
        self._events.append(TimelineEvent(moment, part["type"], kind, ns, node,
                                          self._agents.get(ns), label, part))

    def _message(self, part: Any, moment: float, ns: tuple[str, ...], message: Any,
                 metadata: dict[str, Any]) -> None:
        agent = metadata.get("lc_agent_name")
        if agent and ns not in self._agents:
            self._agents[ns] = agent
        node = str(metadata.get("langgraph_node") or "")
        if isinstance(message, ToolMessage):
            self._event(part, moment, "tool_message", ns, node, message.name or "")
            self._end_tool(moment, message)
            return
        if not isinstance(message, AIMessage):  # pragma: no cover - runs emit no other kind
            self._event(part, moment, "chunk", ns, node, repr(message))
            return
        span = self._model_span(moment, ns, node, metadata)
        if not isinstance(message, AIMessageChunk):
            self._event(part, moment, "message", ns, node, message.text)
            self._end_model(moment, span)
            for call in message.tool_calls:
                self._start_tool(moment, ns, call.get("id"), call["name"])
            return
        key = id(metadata)
        fragments = message.tool_call_chunks
        for fragment in fragments:
            if fragment.get("id") and fragment.get("name"):
                headers = self._call_headers.setdefault(key, {})
                headers[fragment.get("index")] = (fragment["id"] or "", fragment["name"] or "")
        text = message.text
        if text:
            self._event(part, moment, "token", ns, node, text)
        elif fragments:
            args = "".join(fragment.get("args") or "" for fragment in fragments)
            self._event(part, moment, "tool_args", ns, node, args or _names(fragments))
        elif not isinstance(message.content, str) and any(
            block.get("type") == "reasoning" for block in message.content_blocks
        ):
            self._event(part, moment, "reasoning", ns, node, "")
        else:
            self._event(part, moment, "chunk", ns, node, "")
        if message.chunk_position == "last":
            self._end_model(moment, span)
            for call_id, name in self._call_headers.pop(key, {}).values():
                self._start_tool(moment, ns, call_id, name)

    def _model_span(self, moment: float, ns: tuple[str, ...], node: str,
                    metadata: dict[str, Any]) -> _OpenSpan:
        key = id(metadata)
        known = self._model_calls.get(key)
        if known is not None:
            return known[1]
        start = moment
        if node == "model":
            step_start = self._step_start.pop(ns, None)
            if step_start is not None:
                start = step_start
        span = _OpenSpan("model", ns, node or "model", str(metadata.get("ls_model_name") or
                         "model"), start, None, metadata.get("lc_agent_name"))
        self._spans.append(span)
        # Holding the metadata keeps its id from being reused by another call.
        self._model_calls[key] = (metadata, span)
        return span

    def _end_model(self, moment: float, span: _OpenSpan) -> None:
        if span.end is None:
            span.end = moment
            span.status = "done"

    def _update(self, moment: float, ns: tuple[str, ...], node: str, update: Any) -> None:
        messages = update.get("messages", []) if isinstance(update, dict) else []
        for message in messages:
            if isinstance(message, ToolMessage):
                self._end_tool(moment, message)
            elif isinstance(message, AIMessage) and node == "model":
                open_spans = [s for s in self._spans if s.kind == "model" and s.ns == ns
                              and s.node == "model" and s.end is None]
                for span in open_spans:
                    span.end = moment
                    span.status = "done"
                step_start = self._step_start.pop(ns, None)
                if not open_spans and step_start is not None:
                    # The model's chunks never came by (a "nostream" model, or a filter).
                    name = str(message.response_metadata.get("model_name") or "model")
                    span = _OpenSpan("model", ns, "model", name, step_start, None,
                                     self._agents.get(ns))
                    span.end = moment
                    span.status = "done"
                    self._spans.append(span)
                for call in message.tool_calls:
                    self._start_tool(moment, ns, call.get("id"), call["name"])

    def _start_tool(self, moment: float, ns: tuple[str, ...], call_id: str | None,
                    name: str) -> None:
        if not call_id or call_id in self._tools:
            return
        span = _OpenSpan("tool", ns, "tools", name, moment, call_id, self._agents.get(ns))
        self._tools[call_id] = span
        self._spans.append(span)

    def _end_tool(self, moment: float, message: ToolMessage) -> None:
        span = self._tools.get(message.tool_call_id)
        if span is None or span.end is not None:
            return
        span.end = moment
        span.status = message.status


def _is_part(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") in _PART_TYPES
        and "ns" in item
        and "data" in item
    )


def _short(data: Any, limit: int = 80) -> str:
    text = data if isinstance(data, str) else repr(data)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _row_label(timeline: Timeline, row: tuple[tuple[str, ...], str]) -> str:
    ns, node = row
    if not ns:
        return node
    who = timeline.agent_name(ns) or ns[-1]
    return f"{'  ' * (len(ns) - 1)}{who} ▸ {node}"


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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _plot(timeline: Timeline, *, ax: Axes | None, title: str | None, width: float,
          legend: bool) -> Figure:
    figure_class = _import_matplotlib()
    _register_figure_display(figure_class)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    events = timeline.events
    spans = timeline.spans
    rows = timeline.rows
    position = {row: index for index, row in enumerate(rows)}
    end_of_time = max(timeline.duration, max((e.time for e in events), default=0.0), 1e-3)

    figure: Figure
    own_figure = ax is None
    if ax is None:
        figure = figure_class(figsize=(width, 1.2 + 0.55 * max(len(rows), 1)),
                              layout="constrained")
        ax = figure.add_subplot()
    else:
        owner = ax.get_figure()
        assert owner is not None
        figure = owner  # type: ignore[assignment]

    half = 0.38
    for span in spans:
        if span.kind != "model" or (span.ns, span.node) not in position:
            continue
        y = position[(span.ns, span.node)]
        end = span.end if span.end is not None else end_of_time
        ax.broken_barh([(span.start, max(end - span.start, 1e-9))], (y - half, 2 * half),
                       facecolors=_MODEL_BAR, edgecolors="#9fc5e8", linewidth=0.6,
                       hatch=None if span.end is not None else "//", zorder=1)

    tool_spans = [span for span in spans if span.kind == "tool"]
    by_row: dict[tuple[tuple[str, ...], str], list[Span]] = {}
    for span in tool_spans:
        by_row.setdefault((span.ns, span.node), []).append(span)
    for row, row_spans in by_row.items():
        if row not in position:
            continue
        lanes = _lanes(row_spans)
        count = max(lanes) + 1
        height = 2 * half / count
        for span, lane in zip(row_spans, lanes, strict=True):
            bottom = position[row] - half + lane * height
            end = span.end if span.end is not None else end_of_time
            length = max(end - span.start, end_of_time / 400)
            colour = _TOOL_ERROR if span.status == "error" else _TOOL_BAR
            ax.broken_barh([(span.start, length)], (bottom + 0.04, height - 0.08),
                           facecolors=colour, alpha=0.85, zorder=2,
                           hatch=None if span.end is not None else "//")
            ax.text(span.start + end_of_time / 200, bottom + height / 2, f" {span.name}",
                    ha="left", va="center", fontsize=7, color="white", zorder=3,
                    clip_on=True)

    ticks: dict[str, tuple[list[float], list[float]]] = {
        _TOKEN: ([], []), _ARGS: ([], []), _REASONING: ([], []),
    }
    custom_x: list[float] = []
    custom_y: list[float] = []
    steps_x: list[float] = []
    steps_y: list[float] = []
    for event in events:
        row = (event.ns, event.node)
        if row not in position:
            continue
        y = position[row]
        if event.kind in ("token", "message"):
            ticks[_TOKEN][0].append(event.time)
            ticks[_TOKEN][1].append(y)
        elif event.kind == "tool_args":
            ticks[_ARGS][0].append(event.time)
            ticks[_ARGS][1].append(y)
        elif event.kind == "reasoning":
            ticks[_REASONING][0].append(event.time)
            ticks[_REASONING][1].append(y)
        elif event.kind == "custom":
            custom_x.append(event.time)
            custom_y.append(y)
        elif event.kind == "update" and row not in by_row:
            # (On a tools row each tool's bar already ends where its update arrives.)
            steps_x.append(event.time)
            steps_y.append(y)
    for colour, (xs, ys) in ticks.items():
        if xs:
            ax.vlines(xs, [y - 0.28 for y in ys], [y + 0.28 for y in ys], colors=colour,
                      linewidth=0.9, zorder=4)
    if custom_x:
        ax.scatter(custom_x, custom_y, marker="D", s=22, color=_CUSTOM, zorder=5)
    if steps_x:
        ax.vlines(steps_x, [y - half for y in steps_y], [y + half for y in steps_y],
                  colors="black", linewidth=1.6, zorder=5)

    ax.set_yticks(range(len(rows)), [_row_label(timeline, row) for row in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.set_xlim(0, end_of_time * 1.02)
    ax.set_xlabel("seconds since subscribe")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if title is None:
        models = sum(span.kind == "model" for span in spans)
        title = (f"{_plural(len(events), 'part')} in {timeline.duration:.2f} s · "
                 f"{_plural(models, 'model call')} · {_plural(len(tool_spans), 'tool call')}")
        if timeline.error is not None:
            title += f" · failed: {type(timeline.error).__name__}"
    ax.set_title(title, fontsize=10, loc="left")
    if legend:
        kinds = {event.kind for event in events}
        handles = [
            (True, Patch(facecolor=_MODEL_BAR, edgecolor="#9fc5e8", label="model call")),
            (bool(kinds & {"token", "message"}),
             Line2D([], [], color=_TOKEN, marker="|", linestyle="", markersize=9,
                    label="token")),
            ("tool_args" in kinds,
             Line2D([], [], color=_ARGS, marker="|", linestyle="", markersize=9,
                    label="tool-call fragment")),
            ("reasoning" in kinds,
             Line2D([], [], color=_REASONING, marker="|", linestyle="", markersize=9,
                    label="reasoning")),
            (bool(tool_spans), Patch(facecolor=_TOOL_BAR, label="tool call")),
            (any(span.status == "error" for span in tool_spans),
             Patch(facecolor=_TOOL_ERROR, label="failed tool call")),
            ("custom" in kinds,
             Line2D([], [], color=_CUSTOM, marker="D", linestyle="", markersize=5,
                    label="custom event")),
            ("update" in kinds,
             Line2D([], [], color="black", marker="|", linestyle="", markersize=11,
                    label="step end")),
        ]
        shown = [handle for present, handle in handles if present]
        if own_figure:
            figure.legend(handles=shown, loc="outside lower center", ncols=len(shown),
                          fontsize=7, frameon=False)
        else:
            ax.legend(handles=shown, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                      frameon=False)
    return figure


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
