"""What :func:`rxagent.notebook.show` draws: a run's parts folded into blocks, as HTML and text.

A notebook output can be redrawn, so unlike the terminal renderer (append-only) the view keeps
one block per model call and one per tools step, and each part updates its block in place:
text grows in its call's block, a tool call's arguments form under its name, progress lines and
results land in the tools block of their agent. Nested agents' blocks are indented under the
call that runs them, so parallel sub-agents each grow their own block.
"""

from __future__ import annotations

import html
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from ._messages import ToolMessage
from ._render import ModelCall, Part, PartReader, as_text, one_line

__all__ = ["TICK", "LiveView", "in_jupyter", "with_ticks"]

TICK: Any = object()
"""What :func:`with_ticks` inserts between items: a reminder to redraw, not an item."""


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel), without importing IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def with_ticks(
    period: float, clock: abc.SchedulerBase | None = None
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
    """Insert :data:`TICK` every ``period`` seconds while the source runs, so a consumer
    blocked on the next item gets to redraw what arrived just before a pause. The ticks run
    on ``clock`` (reactivex's ``TimeoutScheduler`` by default).

    ::

        ---a-------b--|   with_ticks(2)   -T-aT-T-T-bT-|
    """

    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            lock = threading.Lock()
            stopped = False

            def tick(_: Any) -> None:
                with lock:
                    if not stopped:
                        observer.on_next(TICK)

            def on_next(item: Any) -> None:
                with lock:
                    observer.on_next(item)

            ticker = reactivex.interval(period, scheduler=clock).subscribe(tick)

            def stop() -> None:
                nonlocal stopped
                with lock:
                    stopped = True
                ticker.dispose()

            def on_error(error: Exception) -> None:
                stop()
                observer.on_error(error)

            def on_completed() -> None:
                stop()
                observer.on_completed()

            upstream = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            return CompositeDisposable(upstream, Disposable(stop))

        return reactivex.create(subscribe)

    return operator


class _ModelBlock:
    __slots__ = ("call", "depth", "header")

    def __init__(self, header: str, depth: int, call: ModelCall) -> None:
        self.header = header
        self.depth = depth
        self.call = call  # its text and tool calls, as they form


class _Nested:
    """An agent run as a tool: its blocks, inside its caller's tools block, and its result."""

    __slots__ = ("blocks", "result")

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.result: tuple[str, str] | None = None


class _ToolsBlock:
    __slots__ = ("depth", "entries", "header", "nested")

    def __init__(self, header: str, depth: int) -> None:
        self.header = header
        self.depth = depth
        # Lines (kind: progress | ok | error, text) and nested runs, in the order they began.
        self.entries: list[tuple[str, str] | _Nested] = []
        self.nested: dict[str, _Nested] = {}  # by namespace element, "tools:<call id>"


class _ItemsBlock:
    __slots__ = ("depth", "header", "text")

    def __init__(self) -> None:
        self.header = ""
        self.depth = 0
        self.text: list[str] = []


_Block = _ModelBlock | _ToolsBlock | _ItemsBlock
_MARKS = {"progress": "·", "ok": "✓", "error": "✗"}


class LiveView(PartReader):
    """A run's parts folded into blocks, rendered as HTML (Jupyter) or plain text.

    Blocks form a tree: the top-level agent's blocks in order, and inside each tools block
    the progress lines, the results, and the runs of agents called as tools, each where it
    began.
    """

    def __init__(self, max_progress: int | None = None) -> None:
        super().__init__()
        self.max_progress = max_progress
        """Progress lines shown per tools block, the latest ones; ``None`` for all."""
        self.blocks: list[_Block] = []
        self.finished = False
        self.stopped: str | None = None
        self._items: _ItemsBlock | None = None

    # -- folding -----------------------------------------------------------------------------

    def feed(self, item: Any) -> None:
        """Fold one part (or other item) into the view."""
        self._read(item)

    def finish(self, stopped: str | None = None) -> None:
        """The stream is over: normally, or (``stopped``) with an error or interrupted."""
        self.finished = True
        self.stopped = stopped

    def _blocks(self, ns: tuple[str, ...]) -> list[_Block]:
        """The blocks of the run in namespace ``ns``: nested ones live in their caller's
        current tools block."""
        if not ns:
            return self.blocks
        caller = self._tools(ns[:-1])
        nested = caller.nested.get(ns[-1])
        if nested is None:
            nested = caller.nested[ns[-1]] = _Nested()
            caller.entries.append(nested)
        return nested.blocks

    def _tools(self, ns: tuple[str, ...]) -> _ToolsBlock:
        blocks = self._blocks(ns)
        if blocks and isinstance(blocks[-1], _ToolsBlock):
            return blocks[-1]
        block = _ToolsBlock(self._heading(ns, "tools"), len(ns))
        blocks.append(block)
        return block

    def _on_call_start(self, part: Part, call: ModelCall) -> None:
        header = self._heading(part.ns, call.title("·"))
        self._blocks(part.ns).append(_ModelBlock(header, len(part.ns), call))

    def _on_custom(self, part: Part) -> None:
        self._tools(part.ns).entries.append(("progress", as_text(part.data)))

    def _on_tool_result(self, part: Part, message: ToolMessage) -> None:
        result = ("error" if message.status == "error" else "ok",
                  f"{message.name} → {one_line(message.text, 200)}")
        tools = self._tools(part.ns)
        nested = tools.nested.get(f"tools:{message.tool_call_id}")
        if nested is not None:
            nested.result = result
        else:
            tools.entries.append(result)

    def _on_item(self, item: Any) -> None:
        if self._items is None:
            self._items = _ItemsBlock()
            self.blocks.append(self._items)
        if isinstance(item, str):
            self._items.text.append(item)
        else:
            self._items.text.append(("\n" if self._items.text else "") + repr(item) + "\n")

    # -- rendering ---------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: how the run went so far."""
        calls, tools, tokens = self._counts.phrases()
        if not self.finished:
            return f"… running: {calls}, {tools}, {tokens}"
        if self.stopped is not None:
            return f"✗ stopped ({self.stopped}) after {calls}, {tools}"
        return f"✔ done: {calls}, {tools}, {tokens}"

    def text(self) -> str:
        """The view as plain text (what a notebook shows where it cannot show HTML)."""
        lines: list[str] = []
        _blocks_text(self.blocks, self.finished, self.max_progress, lines)
        lines.append(self.summary())
        return "\n".join(lines)

    def html(self) -> str:
        """The view as HTML, styled inline (notebook front ends drop ``<style>`` at times)."""
        out = [
            '<div class="rxagent-live" style="font-family: var(--jp-code-font-family, '
            'monospace); font-size: 12.5px; line-height: 1.5">'
        ]
        _blocks_html(self.blocks, self.finished, self.max_progress, out)
        colour = "#c0392b" if self.stopped is not None else (
            "#2e7d32" if self.finished else "#888")
        out.append(f'<div style="color: {colour}; margin-top: .3em">'
                   f"{html.escape(self.summary())}</div></div>")
        return "".join(out)

    def bundle(self) -> dict[str, str]:
        """The view as a display bundle: ``text/html`` and ``text/plain``."""
        return {"text/html": self.html(), "text/plain": self.text()}


def _shown(block: _ToolsBlock, limit: int | None) -> Iterator[tuple[str, str] | list[_Block]]:
    """What a tools block shows, in order: its lines, and the blocks of each agent it runs
    followed by that agent's result. The earliest progress lines past ``limit`` are left out,
    and one line in the place of the first says how many."""
    hidden = _hidden_progress(block, limit)
    skipped = 0
    for entry in block.entries:
        if isinstance(entry, _Nested):
            yield entry.blocks
            if entry.result is not None:
                yield entry.result
        elif entry[0] == "progress" and skipped < hidden:
            if not skipped:
                yield ("progress", f"… {hidden} earlier progress line{'s' * (hidden != 1)}")
            skipped += 1
        else:
            yield entry


def _hidden_progress(block: _ToolsBlock, limit: int | None) -> int:
    """How many progress lines of ``block`` to leave out."""
    progress = sum(1 for entry in block.entries
                   if isinstance(entry, tuple) and entry[0] == "progress")
    return progress - limit if limit is not None and progress > limit else 0


# -- as text -----------------------------------------------------------------------------------


def _blocks_text(blocks: list[_Block], finished: bool, limit: int | None,
                 lines: list[str]) -> None:
    for block in blocks:
        pad = "  " * block.depth
        if block.header:
            lines.append(f"{pad}▶ {block.header}")
        body = pad + ("  " if block.header else "")
        if isinstance(block, _ModelBlock):
            _call_text(block.call, body, not block.call.done and not finished, lines)
        elif isinstance(block, _ToolsBlock):
            _tools_text(block, body, finished, limit, lines)
        else:
            lines.extend(body + line for line in "".join(block.text).splitlines())


def _call_text(call: ModelCall, body: str, live: bool, lines: list[str]) -> None:
    lines.extend(body + line for line in "".join(call.reasoning).splitlines())
    text = "".join(call.text).strip("\n")
    lines.extend(body + line for line in text.splitlines())
    for draft in call.tool_calls.values():
        lines.append(f"{body}⚙ {draft.name}({draft.args}{'…' if live else ')'}")


def _tools_text(block: _ToolsBlock, body: str, finished: bool, limit: int | None,
                lines: list[str]) -> None:
    for shown in _shown(block, limit):
        if isinstance(shown, list):
            _blocks_text(shown, finished, limit, lines)
        else:
            lines.append(f"{body}{_MARKS[shown[0]]} {shown[1]}")


# -- as HTML -----------------------------------------------------------------------------------

_CURSOR = '<span style="opacity: .5">▌</span>'
_LINE_COLOURS = {"progress": "#8e44ad", "ok": "#2e7d32", "error": "#c0392b"}


def _line_html(kind: str, text: str) -> str:
    return (f'<div style="color: {_LINE_COLOURS[kind]}">{_MARKS[kind]} '
            f"{html.escape(text)}</div>")


def _blocks_html(blocks: list[_Block], finished: bool, limit: int | None,
                 out: list[str]) -> None:
    for block in blocks:
        border = "#4a90d9" if isinstance(block, _ModelBlock) else "#59a14f"
        out.append(f'<div style="margin: .15em 0 .15em {1.2 if block.depth else 0}em; '
                   f'padding-left: .6em; border-left: 3px solid {border}">')
        if block.header:
            out.append(f'<div style="color: {border}; font-weight: 600">▶ '
                       f"{html.escape(block.header)}</div>")
        if isinstance(block, _ModelBlock):
            _call_html(block.call, not block.call.done and not finished, out)
        elif isinstance(block, _ToolsBlock):
            _tools_html(block, finished, limit, out)
        else:
            out.append('<div style="white-space: pre-wrap">'
                       f'{html.escape("".join(block.text))}</div>')
        out.append("</div>")


def _call_html(call: ModelCall, live: bool, out: list[str]) -> None:
    escape = html.escape
    if call.reasoning:
        out.append('<div style="white-space: pre-wrap; color: #888; '
                   f'font-style: italic">{escape("".join(call.reasoning))}</div>')
    text = "".join(call.text).rstrip("\n")
    growing = live and not call.tool_calls  # the cursor goes after the text
    if text or growing:
        out.append(f'<div style="white-space: pre-wrap">{escape(text)}'
                   f'{_CURSOR if growing else ""}</div>')
    drafts = list(call.tool_calls.values())
    for position, draft in enumerate(drafts):
        forming = live and position == len(drafts) - 1
        tail = _CURSOR if forming else '<span style="color: #888">)</span>'
        out.append(f'<div><span style="color: #b9770e">⚙ {escape(draft.name)}</span>'
                   f'<span style="color: #888">({escape(draft.args)}</span>{tail}</div>')


def _tools_html(block: _ToolsBlock, finished: bool, limit: int | None,
                out: list[str]) -> None:
    for shown in _shown(block, limit):
        if isinstance(shown, list):
            _blocks_html(shown, finished, limit, out)
        else:
            out.append(_line_html(*shown))
