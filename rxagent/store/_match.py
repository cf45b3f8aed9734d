"""Which items and namespaces a search or a listing takes, in which order: pure functions,
shared by every store so that they all answer alike.

A SQL store could narrow by the filter in SQL; ours read a namespace prefix's rows and decide
here, so the rules (1 equals 1.0 equals True, as in Python and LangGraph) are written once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from .._exceptions import UsageError
from ._base import MatchCondition

__all__ = [
    "check_filter",
    "cosine",
    "matches_filter",
    "namespace_matches",
    "page_of_namespaces",
    "rank",
    "texts_at",
]

T = TypeVar("T")

_ORDERING = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}
_OPERATORS = {"$eq", "$ne", *_ORDERING}


# -- filters -------------------------------------------------------------------------------------


def check_filter(filter: Mapping[str, Any]) -> None:
    """Raise :class:`~rxagent.UsageError` for a filter with a key that is no str or an unknown
    ``$`` operator, before any item is looked at (so an empty store refuses it too)."""
    for key, wanted in filter.items():
        if not isinstance(key, str):
            raise UsageError(f"a filter's fields are str; got {key!r}")
        _check_condition(wanted)


def _check_condition(wanted: Any) -> None:
    if isinstance(wanted, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in wanted):
            unknown = [k for k in wanted if k not in _OPERATORS]
            if unknown:
                raise UsageError(
                    f"unknown filter operator {unknown[0]!r}: a filter knows "
                    f"{', '.join(sorted(_OPERATORS))}"
                )
            return
        check_filter(wanted)
    elif isinstance(wanted, list | tuple):
        for element in wanted:
            _check_condition(element)


def matches_filter(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether an item's value holds every ``field: condition`` of ``filter``.

    A condition that is a dict of ``$`` operators applies each; another dict matches a dict
    holding the fields it names; a list matches a list of as many matching elements; anything
    else matches an equal value. A missing field counts as ``None``.
    """
    return not filter or all(_holds(value.get(key), wanted) for key, wanted in filter.items())


def _holds(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in wanted):
            return all(_apply(actual, op, operand) for op, operand in wanted.items())
        return isinstance(actual, Mapping) and all(
            _holds(actual.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(wanted)
            and all(_holds(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


def _apply(actual: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(actual == operand)
    if op == "$ne":
        return bool(actual != operand)
    # Numbers with numbers, str with str (ISO dates compare right as text); LangGraph's
    # in-memory store raises for a missing field here, its SQL stores see no match: no match.
    numbers = all(isinstance(x, int | float) and not math.isnan(x) for x in (actual, operand))
    if numbers or (isinstance(actual, str) and isinstance(operand, str)):
        return bool(_ORDERING[op](actual, operand))
    return False


# -- namespaces ----------------------------------------------------------------------------------


def namespace_matches(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    """Whether ``namespace`` starts (or ends) with the condition's path, ``"*"`` matching any
    one label."""
    path = condition.path
    if len(namespace) < len(path):
        return False
    if condition.match_type == "suffix":
        namespace = namespace[len(namespace) - len(path):]
    return all(want in ("*", label) for label, want in zip(namespace, path, strict=False))


# -- semantic search -----------------------------------------------------------------------------


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine similarity of two vectors; 0.0 when either is all zeros."""
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return math.fsum(x * y for x, y in zip(a, b, strict=False)) / norms if norms else 0.0


def rank(
    candidates: Sequence[tuple[T, Sequence[Sequence[float]]]],
    query: Sequence[float] | None,
    offset: int,
    limit: int,
) -> list[tuple[T, float | None]]:
    """One page of ``candidates`` (each with its vectors), in order, or most similar to
    ``query`` first: an item's score is its best vector's; items without vectors follow, in
    order, scored ``None``. (LangGraph's in-memory store pages those from the start whatever
    the ``offset``; here one page follows another.)"""
    if query is None:
        return [(candidate, None) for candidate, _ in candidates[offset:offset + limit]]
    scored = [
        (max(cosine(query, vector) for vector in vectors), candidate)
        for candidate, vectors in candidates
        if vectors
    ]
    scored.sort(key=lambda pair: pair[0], reverse=True)  # stable: ties keep their order
    ordered: list[tuple[T, float | None]] = [(c, s) for s, c in scored]
    ordered += [(candidate, None) for candidate, vectors in candidates if not vectors]
    return ordered[offset:offset + limit]


def texts_at(value: Mapping[str, Any], path: str) -> list[str]:
    """The texts to embed at ``path`` in a value: ``"$"`` the whole value (as JSON), ``"a.b"``
    a field, ``"a[0]"``, ``"a[-1]"`` and ``"a[*]"`` list elements, ``"*"`` every field or
    element, ``"{a,b.c}"`` several fields. A str, number or bool gives its text, a list or dict
    its JSON, ``None`` or a missing field nothing."""
    if path in ("", "$"):
        return [_as_json(value)]
    return _walk(value, _tokens(path))


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _leaf(value: Any) -> list[str]:
    if isinstance(value, str | int | float):  # bool is an int: "True"
        return [str(value)]
    if isinstance(value, list | dict):
        return [_as_json(value)]
    return []


def _tokens(path: str) -> list[str]:
    """``"a.b[0].{c,d}"`` → ``["a", "b", "[0]", "{c,d}"]``."""
    tokens: list[str] = []
    name = ""
    i = 0
    while i < len(path):
        char = path[i]
        if char in "[{":
            if name:
                tokens.append(name)
                name = ""
            close, depth, start = "]" if char == "[" else "}", 0, i
            while i < len(path):
                depth += {char: 1, close: -1}.get(path[i], 0)
                i += 1
                if depth == 0:
                    break
            tokens.append(path[start:i])
            continue
        if char == ".":
            if name:
                tokens.append(name)
            name = ""
        else:
            name += char
        i += 1
    if name:
        tokens.append(name)
    return tokens


def _walk(value: Any, tokens: list[str]) -> list[str]:
    if not tokens:
        return _leaf(value)
    token, rest = tokens[0], tokens[1:]
    if token.startswith("["):
        if not isinstance(value, list):
            return []
        index = token[1:-1]
        if index == "*":
            return [text for element in value for text in _walk(element, rest)]
        try:
            position = int(index)
        except ValueError:
            return []
        if -len(value) <= position < len(value):
            return _walk(value[position], rest)
        return []
    if token.startswith("{"):
        if not isinstance(value, dict):
            return []
        found: list[str] = []
        for field in token[1:-1].split(","):
            found += _walk_fields(value, _tokens(field.strip()))
        return found
    if token == "*":
        if not isinstance(value, dict | list):
            return []
        children = value.values() if isinstance(value, dict) else value
        return [text for child in children for text in _walk(child, rest)]
    if isinstance(value, dict) and token in value:
        return _walk(value[token], rest)
    return []


def _walk_fields(value: Any, names: list[str]) -> list[str]:
    # Inside {...} a path is plain field names, as LangGraph reads it.
    for name in names:
        if not isinstance(value, dict) or name not in value:
            return []
        value = value[name]
    return _leaf(value) if names else []


def page_of_namespaces(
    namespaces: Iterable[tuple[str, ...]],
    conditions: Sequence[MatchCondition] | None,
    max_depth: int | None,
    offset: int,
    limit: int,
) -> list[tuple[str, ...]]:
    """A listing's page: the namespaces meeting every condition, cut to ``max_depth`` labels,
    each once, sorted."""
    kept = {
        namespace if max_depth is None else namespace[:max_depth]
        for namespace in namespaces
        if all(namespace_matches(namespace, condition) for condition in conditions or ())
    }
    return sorted(kept)[offset:offset + limit]
