"""What :func:`rxagent.notebook.show` draws: a run's parts folded into blocks, as HTML and text.

A notebook output can be redrawn, so unlike the terminal renderer (append-only) the view keeps
one block per model call and one per tools step, and each part updates its block in place:
text grows in its call's block, a tool call's arguments form under its name, progress lines and
results land in the tools block of their agent. Nested agents' blocks are indented under the
call that runs them, so parallel sub-agents each grow their own block.
"""

from __future__ import annotations

import html
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from ._messages import AIMessage, AIMessageChunk, ToolMessage

__all__ = ["TICK", "LiveView", "in_jupyter", "with_ticks"]

_PART_TYPES = frozenset({"values", "updates", "messages", "custom"})

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
    __slots__ = ("calls", "depth", "done", "header", "metadata", "reasoning", "text")

    def __init__(self, header: str, depth: int, metadata: Any) -> None:
        self.header = header
        self.depth = depth
        self.metadata = metadata  # held, so that its id is not reused while we key on it
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[Any, list[str]] = {}  # tool-call index -> [name, arguments so far]
        self.done = False


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


class LiveView:
    """A run's parts folded into blocks, rendered as HTML (Jupyter) or plain text.

    Blocks form a tree: the top-level agent's blocks in order, and inside each tools block
    the progress lines, the results, and the runs of agents called as tools, each where it
    began.
    """

    def __init__(self, max_progress: int | None = None) -> None:
        self.max_progress = max_progress
        """Progress lines shown per tools block, the latest ones; ``None`` for all."""
        self.blocks: list[_Block] = []
        self.model_calls = 0
        self.tool_results = 0
        self.tokens = 0
        self.finished = False
        self.stopped: str | None = None
        self._calls: dict[int, _ModelBlock] = {}
        self._agents: dict[tuple[str, ...], str] = {}
        self._streamed_ids: set[str] = set()
        self._items: _ItemsBlock | None = None

    # -- folding -----------------------------------------------------------------------------

    def feed(self, item: Any) -> None:
        """Fold one part (or other item) into the view."""
        if not _is_part(item):
            self._other(item)
            return
        kind = item["type"]
        ns = tuple(item["ns"])
        if kind == "messages":
            self._message(ns, *item["data"])
        elif kind == "custom":
            data = item["data"]
            self._tools(ns).entries.append(
                ("progress", data if isinstance(data, str) else repr(data))
            )
        elif kind == "updates":
            self._update(ns, item["data"])

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
        block = _ToolsBlock(f"{self._who(ns)}tools", len(ns))
        blocks.append(block)
        return block

    def _who(self, ns: tuple[str, ...]) -> str:
        if not ns:
            return ""
        return f"{self._agents.get(ns) or ns[-1]} ▸ "

    def _message(self, ns: tuple[str, ...], message: Any, metadata: dict[str, Any]) -> None:
        if not isinstance(message, AIMessage):
            return  # ToolMessages are shown from ``updates``, with their status
        agent = metadata.get("lc_agent_name")
        if agent and ns:
            self._agents.setdefault(ns, agent)
        block = self._calls.get(id(metadata))
        if block is None:
            node = metadata.get("langgraph_node", "model")
            header = f"{self._who(ns)}{node} · step {metadata.get('langgraph_step', '?')}"
            block = _ModelBlock(header, len(ns), metadata)
            self._calls[id(metadata)] = block
            self._blocks(ns).append(block)
            self.model_calls += 1
        if message.id:
            self._streamed_ids.add(message.id)
        if not isinstance(message, AIMessageChunk):
            self._whole(block, message)
            return
        if not isinstance(message.content, str):
            block.reasoning.extend(
                b.get("reasoning") or "" for b in message.content_blocks
                if b.get("type") == "reasoning"
            )
        text = message.text
        if text:
            block.text.append(text)
            self.tokens += 1
        for fragment in message.tool_call_chunks:
            call = block.calls.setdefault(fragment.get("index"), ["", ""])
            if fragment.get("name"):
                call[0] = fragment.get("name") or ""
            call[1] += fragment.get("args") or ""
        if message.chunk_position == "last":
            block.done = True

    def _whole(self, block: _ModelBlock, message: AIMessage) -> None:
        if message.text:
            block.text.append(message.text)
            self.tokens += 1
        for position, call in enumerate(message.tool_calls):
            block.calls[position] = [call["name"], _json(call["args"])]
        block.done = True

    def _update(self, ns: tuple[str, ...], update: dict[str, Any]) -> None:
        for node, value in update.items():
            messages = value.get("messages", []) if isinstance(value, dict) else []
            for message in messages:
                if isinstance(message, ToolMessage):
                    self.tool_results += 1
                    result = ("error" if message.status == "error" else "ok",
                              f"{message.name} → {_one_line(message.text)}")
                    tools = self._tools(ns)
                    nested = tools.nested.get(f"tools:{message.tool_call_id}")
                    if nested is not None:
                        nested.result = result
                    else:
                        tools.entries.append(result)
                elif isinstance(message, AIMessage) and message.id not in self._streamed_ids:
                    # A model left out of ``messages`` ("nostream"): its reply, whole.
                    block = _ModelBlock(f"{self._who(ns)}{node} (not streamed)", len(ns), None)
                    self._blocks(ns).append(block)
                    self.model_calls += 1
                    self._whole(block, message)

    def _other(self, item: Any) -> None:
        if self._items is None:
            self._items = _ItemsBlock()
            self.blocks.append(self._items)
        if isinstance(item, str):
            self._items.text.append(item)
            self.tokens += 1
        else:
            self._items.text.append(("\n" if self._items.text else "") + repr(item) + "\n")

    # -- rendering ---------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: how the run went so far."""
        calls = f"{self.model_calls} model call{'s' * (self.model_calls != 1)}"
        tools = f"{self.tool_results} tool call{'s' * (self.tool_results != 1)}"
        tokens = f"{self.tokens} text chunk{'s' * (self.tokens != 1)}"
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


def _entries(block: _ToolsBlock, limit: int | None) -> list[tuple[str, str] | _Nested]:
    """The entries to show: all but the earliest progress lines past ``limit``, which one
    line counts."""
    progress = sum(1 for entry in block.entries if isinstance(entry, tuple)
                   and entry[0] == "progress")
    hidden = progress - limit if limit is not None and progress > limit else 0
    if not hidden:
        return block.entries
    shown: list[tuple[str, str] | _Nested] = []
    skipped = 0
    for entry in block.entries:
        if isinstance(entry, tuple) and entry[0] == "progress" and skipped < hidden:
            if not skipped:
                shown.append(("progress", f"… {hidden} earlier progress "
                                          f"line{'s' * (hidden != 1)}"))
            skipped += 1
            continue
        shown.append(entry)
    return shown


def _blocks_text(blocks: list[_Block], finished: bool, limit: int | None,
                 lines: list[str]) -> None:
    for block in blocks:
        pad = "  " * block.depth
        if block.header:
            lines.append(f"{pad}▶ {block.header}")
        body = pad + ("  " if block.header else "")
        if isinstance(block, _ModelBlock):
            if block.reasoning:
                lines.extend(body + line for line in "".join(block.reasoning).splitlines())
            text = "".join(block.text).strip("\n")
            lines.extend(body + line for line in text.splitlines())
            live = not block.done and not finished
            for name, arguments in block.calls.values():
                lines.append(f"{body}⚙ {name}({arguments}{'…' if live else ')'}")
        elif isinstance(block, _ToolsBlock):
            for entry in _entries(block, limit):
                if isinstance(entry, _Nested):
                    _blocks_text(entry.blocks, finished, limit, lines)
                    if entry.result is not None:
                        lines.append(f"{body}{_MARKS[entry.result[0]]} {entry.result[1]}")
                else:
                    lines.append(f"{body}{_MARKS[entry[0]]} {entry[1]}")
        else:
            lines.extend(body + line for line in "".join(block.text).splitlines())


_CURSOR = '<span style="opacity: .5">▌</span>'
_LINE_COLOURS = {"progress": "#8e44ad", "ok": "#2e7d32", "error": "#c0392b"}


def _line_html(kind: str, text: str) -> str:
    return (f'<div style="color: {_LINE_COLOURS[kind]}">{_MARKS[kind]} '
            f"{html.escape(text)}</div>")


def _blocks_html(blocks: list[_Block], finished: bool, limit: int | None,
                 out: list[str]) -> None:
    escape = html.escape
    for block in blocks:
        border = "#4a90d9" if isinstance(block, _ModelBlock) else "#59a14f"
        out.append(f'<div style="margin: .15em 0 .15em {1.2 if block.depth else 0}em; '
                   f'padding-left: .6em; border-left: 3px solid {border}">')
        if block.header:
            out.append(f'<div style="color: {border}; font-weight: 600">▶ '
                       f"{escape(block.header)}</div>")
        if isinstance(block, _ModelBlock):
            live = not block.done and not finished
            if block.reasoning:
                out.append('<div style="white-space: pre-wrap; color: #888; '
                           f'font-style: italic">{escape("".join(block.reasoning))}</div>')
            text = "".join(block.text).rstrip("\n")
            if text or (live and not block.calls):
                cursor = _CURSOR if live and not block.calls else ""
                out.append(f'<div style="white-space: pre-wrap">{escape(text)}{cursor}</div>')
            calls = list(block.calls.values())
            for position, (name, arguments) in enumerate(calls):
                forming = live and position == len(calls) - 1
                tail = _CURSOR if forming else '<span style="color: #888">)</span>'
                out.append(f'<div><span style="color: #b9770e">⚙ {escape(name)}</span>'
                           f'<span style="color: #888">({escape(arguments)}</span>{tail}</div>')
        elif isinstance(block, _ToolsBlock):
            for entry in _entries(block, limit):
                if isinstance(entry, _Nested):
                    _blocks_html(entry.blocks, finished, limit, out)
                    if entry.result is not None:
                        out.append(_line_html(*entry.result))
                else:
                    out.append(_line_html(*entry))
        else:
            out.append(f'<div style="white-space: pre-wrap">{escape("".join(block.text))}</div>')
        out.append("</div>")


def _is_part(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") in _PART_TYPES
        and "ns" in item
        and "data" in item
    )


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
