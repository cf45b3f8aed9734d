"""Stream modes as operators: each picks one kind of part out of a run and projects it.

A run (``Agent.observe()``) emits every mode at once; these operators are what
``stream(stream_mode=...)`` applies, and they compose with any Rx pipeline. Each one is a single
fused filter-and-map stage, so picking a mode costs one function call per part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import reactivex
from reactivex import abc

from .._exceptions import UsageError
from .._fast_rx import FastObservable, Trusted, Upstream
from .._types import KeptPayloads, PayloadSink, StreamPart

__all__ = ["MODES", "custom", "messages", "parts", "stream_mode", "updates", "values"]

_T = TypeVar("_T")
_R = TypeVar("_R")

MODES: tuple[str, ...] = ("values", "updates", "messages", "custom")
"""The stream modes every run emits, in LangGraph's names."""

DERIVED: tuple[str, ...] = ("partial_output",)
"""Modes made from other parts on the way out, not by the run: ``partial_output`` is the
agent's structured answer as it forms (``rxagent.operators.partial_structured``)."""

ON_REQUEST: tuple[str, ...] = ("checkpoints", "tasks", "debug")
"""LangGraph's modes that a run emits only when asked for them (``stream(stream_mode=...)``,
``observe(..., extra_modes=...)``): each builds a payload per step that few consumers read."""

Operator = Callable[[reactivex.Observable[StreamPart]], reactivex.Observable[Any]]


def check_modes(modes: Iterable[str]) -> tuple[str, ...]:
    """The modes as a tuple; a :class:`UsageError` for an empty or unknown one, or for
    something that is not a mode name or a list of them."""
    if isinstance(modes, str) or not isinstance(modes, Iterable):
        raise UsageError(
            f"stream_mode is a mode name or a list of them, got {type(modes).__name__}"
        )
    checked = tuple(modes)
    known = (*MODES, *ON_REQUEST, *DERIVED)
    unknown = [mode for mode in checked if not isinstance(mode, str) or mode not in known]
    if unknown or not checked:
        raise UsageError(
            f"unknown stream_mode {unknown or '(none)'}; choose from {list(known)}"
        )
    return checked


def select(
    keep: Callable[[_T], bool], project: Callable[[_T], _R]
) -> Callable[[reactivex.Observable[_T]], reactivex.Observable[_R]]:
    """``filter(keep)`` and ``map(project)`` in one stage. An error in either goes to
    ``on_error`` and cancels the source, as Rx operators do."""

    return _selecting(lambda observer: _Select(observer, keep, project))


def _payloads_of(mode: str) -> Operator:
    """``select`` of one mode's payloads, with the test and the projection inlined: this is
    the stage every token of ``stream(stream_mode="messages")`` goes through."""
    return _selecting(lambda observer: _PayloadsOf(observer, mode))


def _selecting(
    stage: Callable[[abc.ObserverBase[Any]], _Select[Any, Any]],
) -> Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]:
    def operator(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            observing = stage(observer)
            observing.upstream.disposable = source.subscribe(observing, scheduler=scheduler)
            return observing.upstream

        return FastObservable(subscribe)

    return operator


class _Select(Trusted[_T], Generic[_T, _R]):
    """The observer of one :func:`select` subscription."""

    __slots__ = ("_forward", "_keep", "_observer", "_project", "upstream")

    def __init__(
        self,
        observer: abc.ObserverBase[_R],
        keep: Callable[[_T], bool],
        project: Callable[[_T], _R],
    ) -> None:
        self._observer = observer
        self._forward = observer.on_next
        self._keep = keep
        self._project = project
        self.upstream = Upstream()

    def on_next(self, value: _T) -> None:
        try:
            if not self._keep(value):
                return
            projected = self._project(value)
        except Exception as error:
            self.on_error(error)
            self.upstream.dispose()
            return
        self._forward(projected)

    def on_error(self, error: Exception) -> None:
        if self._forward is not _drop:
            self._forward = _drop  # the Rx grammar: nothing after the end
            self._observer.on_error(error)

    def on_completed(self) -> None:
        if self._forward is not _drop:
            self._forward = _drop
            self._observer.on_completed()


class _PayloadsOf(_Select[StreamPart, Any], PayloadSink):
    """The stage that keeps one mode's payloads: ``select`` with the test and the projection
    inlined, and a run subscribed to by it hands it those payloads directly."""

    __slots__ = ("_mode",)

    def __init__(self, observer: abc.ObserverBase[Any], mode: str) -> None:
        super().__init__(observer, bool, _data)
        self._mode = mode

    def kept_payloads(self) -> KeptPayloads:
        return KeptPayloads(self._mode, self._forward)

    def on_next(self, value: StreamPart) -> None:
        try:
            if value["type"] != self._mode:
                return
            data = value["data"]
        except Exception as error:
            self.on_error(error)
            self.upstream.dispose()
            return
        self._forward(data)


def _drop(value: object) -> None:
    pass


def _of_modes(modes: tuple[str, ...]) -> Callable[[StreamPart], bool]:
    if len(modes) == 1:
        (mode,) = modes
        return lambda part: part["type"] == mode
    wanted = frozenset(modes)
    return lambda part: part["type"] in wanted


def parts(*modes: str) -> Operator:
    """Keep the parts of the given modes, as they are (all parts when no mode is given).

    ::

        --u--m--m--c--v--|   parts("updates", "custom")   --u--------c-----|

    Raises:
        UsageError: a mode that is not one of ``values``, ``updates``, ``messages``, ``custom``,
            ``checkpoints``, ``tasks``, ``debug``.
    """
    if not modes:
        return lambda source: source
    return select(_of_modes(check_modes(modes)), _identity)


def stream_mode(
    *modes: str, subgraphs: bool = False, labelled: bool | None = None
) -> Operator:
    """What ``stream(stream_mode=...)`` gives, as an operator.

    One mode gives its payloads; several give ``(mode, payload)`` pairs (``labelled`` decides
    it either way; ``stream(stream_mode=["custom"])`` passes ``labelled=True``). With
    ``subgraphs`` the namespace comes first: ``(ns, payload)`` or ``(ns, mode, payload)``.

    ::

        --u--c--|   stream_mode("updates", "custom")   --("updates",u)--("custom",c)--|
    """
    checked = check_modes(modes)
    keep = _of_modes(checked)
    project: Callable[[StreamPart], Any]
    if labelled is None:
        labelled = len(checked) > 1
    if not labelled and not subgraphs and len(checked) == 1:
        return _payloads_of(checked[0])
    if not labelled:
        project = _ns_and_data if subgraphs else _data
    else:
        project = _ns_mode_and_data if subgraphs else _mode_and_data
    return select(keep, project)


def values() -> Operator:
    """The full state after each step, the input state first: ``{"messages": [...]}``."""
    return _payloads_of("values")


def updates() -> Operator:
    """What each step added: ``{"model": {"messages": [AIMessage]}}`` after a model step, one
    ``{"tools": {"messages": [ToolMessage]}}`` per tool call as it finishes."""
    return _payloads_of("updates")


def messages() -> Operator:
    """``(chunk, metadata)`` for every token of every model call in the run, and each
    ToolMessage; all chunks of one call share one metadata dict.

    ::

        --m1--u--m2--m3--|   messages()   --(c1,md)--(c2,md)--(c3,md)--|
    """
    return _payloads_of("messages")


def custom() -> Operator:
    """Whatever the run's writers were given, in order (``get_stream_writer()``)."""
    return _payloads_of("custom")


def _identity(part: StreamPart) -> StreamPart:
    return part


def _data(part: StreamPart) -> Any:
    return part["data"]


def _ns_and_data(part: StreamPart) -> tuple[tuple[str, ...], Any]:
    return part["ns"], part["data"]


def _mode_and_data(part: StreamPart) -> tuple[str, Any]:
    return part["type"], part["data"]


def _ns_mode_and_data(part: StreamPart) -> tuple[tuple[str, ...], str, Any]:
    return part["ns"], part["type"], part["data"]
