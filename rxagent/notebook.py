"""Notebook helpers: watch a run live, and draw a picture of it.

- :func:`show` renders a run in place as it streams (in Jupyter one output redrawn: text
  growing, tool calls forming, progress lines from tools, nested agents indented); outside
  Jupyter it prints plain text as it arrives. It returns the run's :class:`Timeline`.
- :func:`record` runs to the end without showing anything and returns the :class:`Timeline`.
- :meth:`Timeline.plot` draws the timeline with matplotlib, an optional dependency
  (``pip install 'rxagent[plot]'``): a row per agent and node, tokens as ticks, tool calls as
  bars, custom events as markers.

::

    from rxagent.notebook import show

    timeline = show(agent, {"messages": [{"role": "user", "content": "Weather in SF?"}]})
    timeline.plot()

Both take an agent with its input, or any Observable of a run's parts, shaped as you like
(``agent.observe(...).pipe(rxo.smooth())``). Neither needs IPython outside a notebook.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any, TextIO

import reactivex

from ._agent import Agent
from ._bridges import to_iterator
from ._cli import TerminalRenderer
from ._exceptions import UsageError
from ._notebook import TICK, LiveView, in_jupyter, with_ticks
from ._timeline import Span, Timeline, TimelineEvent

__all__ = ["Span", "Timeline", "TimelineEvent", "record", "show"]


def _source(
    source: Agent | reactivex.Observable[Any],
    input: dict[str, Any] | None,
    config: dict[str, Any] | None,
) -> reactivex.Observable[Any]:
    if isinstance(source, Agent):
        if input is None:
            raise UsageError(
                "show/record an agent with its input: show(agent, {'messages': ['Hi']})"
            )
        return source.observe(input, config)
    if isinstance(source, reactivex.Observable):
        if input is not None or config is not None:
            raise UsageError(
                "input and config are for an agent; an Observable already is a run "
                "(agent.observe(input, config))"
            )
        return source
    raise UsageError(
        "show/record take an Agent (with its input) or an Observable of a run's parts, got "
        f"{type(source).__name__}"
    )


def show(
    source: Agent | reactivex.Observable[Any],
    input: dict[str, Any] | None = None,
    *,
    config: dict[str, Any] | None = None,
    refresh: float = 0.05,
    max_progress: int | None = 5,
    file: TextIO | None = None,
) -> Timeline:
    """Run and show it live: in Jupyter, one output redrawn in place; elsewhere, plain text.

    The view has a block per model call (its text growing, its tool calls forming as their
    arguments arrive) and per tools step (progress lines from ``get_stream_writer()``, each
    tool's result), nested agents indented under their call, and a summary line. Items that
    are not parts (strings after ``rxo.text()``, say) are shown as they are.

    Args:
        source: an agent (give ``input``), or an Observable of a run's parts; each call
            subscribes once, so a cold Observable runs once more.
        input: the agent's input, ``{"messages": [...]}``.
        config: the agent's config (``recursion_limit``, ``tags``).
        refresh: in Jupyter, the most often the output is redrawn, in seconds.
        max_progress: in Jupyter, the progress lines shown per tools step, the latest ones
            (one line counts the earlier ones); ``None`` shows them all.
        file: write plain text here instead (also what happens outside Jupyter, to
            ``sys.stdout``).

    Returns:
        The run's :class:`Timeline`: its parts with their times, its spans, its final
        ``state``, and ``plot()``.

    Raises:
        UsageError: ``source`` is neither, an agent without ``input``, or a bad ``refresh``
            or ``max_progress``.
        Exception: the run's own error, after the view shows where it stopped.
    """
    if not isinstance(refresh, (int, float)) or isinstance(refresh, bool) or refresh <= 0:
        raise UsageError(f"refresh is a positive number of seconds, got {refresh!r}")
    if max_progress is not None and (
        not isinstance(max_progress, int) or isinstance(max_progress, bool) or max_progress < 0
    ):
        raise UsageError(f"max_progress is an int >= 0 or None, got {max_progress!r}")
    timeline = Timeline()
    recorded = _source(source, input, config).pipe(timeline.tap())
    if file is None and in_jupyter():
        _show_in_jupyter(recorded, float(refresh), max_progress)
    else:
        _show_as_text(recorded, file if file is not None else sys.stdout)
    return timeline


def _show_as_text(source: reactivex.Observable[Any], out: TextIO) -> None:
    renderer = TerminalRenderer(out, color=False)
    try:
        with to_iterator(source) as items:
            for item in items:
                renderer.feed(item)
    except KeyboardInterrupt:
        renderer.close(stopped="interrupted")
        raise
    except Exception as error:
        renderer.close(stopped=type(error).__name__)
        raise
    renderer.close()


def _show_in_jupyter(
    source: reactivex.Observable[Any], refresh: float, max_progress: int | None
) -> None:
    # IPython is there whenever a kernel is; imported here so that nothing else needs it.
    display = importlib.import_module("IPython.display").display
    view = LiveView(max_progress)
    handle = display(view.bundle(), raw=True, display_id=True)
    last = time.monotonic()
    dirty = False

    def redraw() -> None:
        nonlocal last, dirty
        handle.update(view.bundle(), raw=True)
        last = time.monotonic()
        dirty = False

    try:
        with to_iterator(source.pipe(with_ticks(refresh))) as items:
            for item in items:
                if item is not TICK:
                    view.feed(item)
                    dirty = True
                if dirty and time.monotonic() - last >= refresh:
                    redraw()
    except KeyboardInterrupt:
        view.finish(stopped="interrupted")
        redraw()
        raise
    except Exception as error:
        view.finish(stopped=type(error).__name__)
        redraw()
        raise
    view.finish()
    redraw()


def record(
    source: Agent | reactivex.Observable[Any],
    input: dict[str, Any] | None = None,
    *,
    config: dict[str, Any] | None = None,
) -> Timeline:
    """Run to the end, recording every part with the time it arrived.

    Args:
        source: an agent (give ``input``), or an Observable of a run's parts.
        input: the agent's input, ``{"messages": [...]}``.
        config: the agent's config.

    Returns:
        The run's :class:`Timeline`.

    Raises:
        UsageError: ``source`` is neither, or an agent without ``input``.
        Exception: the run's own error. To keep the timeline of a failing run, tap it
            yourself: ``timeline = Timeline()``, ``source.pipe(timeline.tap())``.
    """
    timeline = Timeline()
    with to_iterator(_source(source, input, config).pipe(timeline.tap())) as items:
        for _ in items:
            pass
    return timeline
