"""Same operations, same answers: our stores against LangGraph's ``InMemoryStore``.

Hypothesis draws sequences of puts, deletes, gets, searches, listings and batches; each is run
on LangGraph's store and on ours, and every answer compared (items by namespace, key, value and
score; the times differ by nature). Where LangGraph's in-memory store has a quirk that its
other stores do not share, the oracle steps around it, and says so:

- a get or delete in a namespace that never held an item makes LangGraph list that namespace
  (and fixes its place in a search's order): such gets and deletes are not sent to LangGraph
  (and a batch's such deletes to neither store);
- a namespace emptied by deletes stays in LangGraph's ``list_namespaces``: listings are
  compared with a LangGraph store holding only the items that are left;
- with a query, LangGraph pages unranked items from the first whatever the ``offset``: pages
  are compared with LangGraph's first ``offset + limit`` items, sliced;
- putting an item again in LangGraph leaves its old vectors beside the new, and an item with the
  same text twice at its fields fails to embed there: semantic searches run on items put once
  each, their texts distinct.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import GetOp as LGGetOp
from langgraph.store.base import PutOp as LGPutOp
from langgraph.store.base import SearchOp as LGSearchOp
from langgraph.store.memory import InMemoryStore as LangGraphStore

from rxagent.store import BaseStore, GetOp, IndexConfig, InMemoryStore, PutOp, SearchOp
from rxagent.store.conformance import letter_embeddings
from rxagent.store.sqlite import SqliteStore

LABELS = ["a", "b", "ab"]
namespaces = st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(tuple)
prefixes = st.lists(st.sampled_from(LABELS), max_size=2).map(tuple)
keys = st.sampled_from(["k1", "k2", "k3"])
values = st.fixed_dictionaries(
    {"n": st.integers(0, 4)},
    optional={
        "tag": st.sampled_from(["x", "y"]),
        "deep": st.fixed_dictionaries({"m": st.integers(0, 2)}),
        "list": st.lists(st.integers(0, 1), max_size=2),
        "text": st.sampled_from(["a", "ab", "bb", "abc", "cc"]),
    },
)
conditions = st.one_of(
    st.integers(0, 4),
    st.dictionaries(
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), st.integers(0, 4),
        min_size=1, max_size=2,
    ),
)
filters = st.one_of(
    st.none(),
    st.fixed_dictionaries({"n": conditions}),  # the operators, alone
    st.fixed_dictionaries({}, optional={
        "n": conditions,
        "tag": st.sampled_from(["x", "y"]),
        "deep": st.fixed_dictionaries({"m": st.integers(0, 2)}),
        "list": st.lists(st.integers(0, 1), max_size=2),
    }),
)
# limit, offset: often one page of everything, so that a search has something to compare
pages = st.one_of(st.just((100, 0)), st.tuples(st.integers(0, 6), st.integers(0, 4)))
wildcard_paths = st.lists(st.sampled_from([*LABELS, "*"]), min_size=1, max_size=2).map(tuple)

operations = st.one_of(
    st.tuples(st.just("put"), namespaces, keys, values),
    st.tuples(st.just("delete"), namespaces, keys),
    st.tuples(st.just("get"), namespaces, keys),
    st.tuples(st.just("search"), prefixes, filters, pages),
    st.tuples(
        st.just("list"), st.none() | wildcard_paths, st.none() | wildcard_paths,
        st.none() | st.integers(1, 3), pages,
    ),
    st.tuples(
        st.just("batch"),
        st.lists(
            st.one_of(
                st.tuples(st.just("put"), namespaces, keys, st.none() | values),
                st.tuples(st.just("get"), namespaces, keys),
                st.tuples(st.just("search"), prefixes, filters, pages),
            ),
            max_size=5,
        ),
    ),
)


def _found(items: Any) -> Any:
    """What must agree of a result: items as (namespace, key, value, score), the rest as is."""
    if isinstance(items, list):
        return [_found(item) for item in items]
    if hasattr(items, "key"):
        return (items.namespace, items.key, items.value, getattr(items, "score", "no score"))
    return items


@contextmanager
def _our_store(kind: str, index: IndexConfig | None = None) -> Iterator[BaseStore]:
    if kind == "memory":
        yield InMemoryStore(index=index)
    else:
        with SqliteStore(":memory:", index=index) as store:
            yield store


class Parity:
    """Runs each operation on both stores and checks they answer alike."""

    def __init__(self, ours: BaseStore) -> None:
        self.ours = ours
        self.theirs = LangGraphStore()
        self.ever_held: set[tuple[str, ...]] = set()  # namespaces LangGraph has seen

    def run(self, operation: tuple[Any, ...]) -> None:
        kind = operation[0]
        if kind == "put":
            _, namespace, key, value = operation
            self.ours.put(namespace, key, value)
            self.theirs.put(namespace, key, value)
            self.ever_held.add(namespace)
        elif kind == "delete":
            _, namespace, key = operation
            self.ours.delete(namespace, key)
            if namespace in self.ever_held:
                self.theirs.delete(namespace, key)
        elif kind == "get":
            _, namespace, key = operation
            expected = self.theirs.get(namespace, key) if namespace in self.ever_held else None
            assert _found(self.ours.get(namespace, key)) == _found(expected), operation
        elif kind == "search":
            _, prefix, filter, (limit, offset) = operation
            got = self.ours.search(prefix, filter=filter, limit=limit, offset=offset)
            expected = self.theirs.search(prefix, filter=filter, limit=limit, offset=offset)
            assert _found(got) == _found(expected), operation
        elif kind == "list":
            _, prefix, suffix, max_depth, (limit, offset) = operation
            options = {"prefix": prefix, "suffix": suffix, "max_depth": max_depth,
                       "limit": limit, "offset": offset}
            assert self.ours.list_namespaces(**options) == self._left().list_namespaces(
                **options
            ), operation
        else:
            self._batch(operation[1])

    def _batch(self, steps: list[tuple[Any, ...]]) -> None:
        # A delete from a namespace LangGraph never saw would make it one there (and place it
        # in the order of namespaces); neither store gets it.
        steps = [s for s in steps if s[0] != "put" or s[3] is not None or s[1] in self.ever_held]
        ours: list[Any] = []
        theirs: list[Any] = []
        skipped: set[int] = set()
        for n, step in enumerate(steps):
            if step[0] == "put":
                ours.append(PutOp(step[1], step[2], step[3]))
                theirs.append(LGPutOp(step[1], step[2], step[3]))
            elif step[0] == "get":
                ours.append(GetOp(step[1], step[2]))
                theirs.append(LGGetOp(step[1], step[2]))
                if step[1] not in self.ever_held:
                    skipped.add(n)
            else:
                _, prefix, filter, (limit, offset) = step
                ours.append(SearchOp(prefix, filter, limit, offset))
                theirs.append(LGSearchOp(prefix, filter, limit, offset))
        got = self.ours.batch(ours)
        expected = self.theirs.batch([op for n, op in enumerate(theirs) if n not in skipped])
        for n in sorted(skipped):
            expected.insert(n, None)  # a get from a namespace never put: nothing there
        for step in steps:
            if step[0] == "put":
                self.ever_held.add(step[1])
        assert _found(got) == _found(expected), steps

    def _left(self) -> LangGraphStore:
        """A LangGraph store holding only the items left: no emptied namespaces."""
        fresh = LangGraphStore()
        for item in self.theirs.search((), limit=10_000):
            fresh.put(item.namespace, item.key, item.value)
        return fresh


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(operations, min_size=10, max_size=40))
def test_a_sequence_of_operations_answers_as_langgraph_does(
    kind: str, script: list[tuple[Any, ...]]
) -> None:
    with _our_store(kind) as ours:
        parity = Parity(ours)
        for operation in script:
            parity.run(operation)
        # And at the end, everything, in order, and each operator on what is left.
        parity.run(("search", (), None, (10_000, 0)))
        parity.run(("list", None, None, None, (10_000, 0)))
        for operator in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
            parity.run(("search", (), {"n": {operator: 2}}, (10_000, 0)))


indexed_puts = st.lists(
    st.tuples(
        namespaces,
        st.fixed_dictionaries({"n": st.integers(0, 4)}, optional={
            "text": st.sampled_from(["ab", "bb", "abc", "cc", "aab", ""]),  # no part's text
            "parts": st.lists(st.sampled_from(["a", "b", "c", "bc"]), max_size=3, unique=True),
        }),
        st.sampled_from([None, False, ["parts[*]"], ["text", "parts"]]),
    ),
    max_size=12,
)
queries = st.tuples(
    prefixes, st.sampled_from(["a", "b", "c", "ab", "abc"]), filters, pages
)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("fields", [None, ["text"], ["text", "parts[*]"]])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(puts=indexed_puts, searches=st.lists(queries, min_size=1, max_size=4))
def test_semantic_search_ranks_as_langgraph_does(
    kind: str,
    fields: list[str] | None,
    puts: list[tuple[tuple[str, ...], dict[str, Any], Any]],
    searches: list[tuple[Any, ...]],
) -> None:
    index = IndexConfig(dims=3, embed=letter_embeddings, fields=fields)
    theirs = LangGraphStore(index={"dims": 3, "embed": letter_embeddings, "fields": fields})
    with _our_store(kind, index) as ours:
        for n, (namespace, value, item_index) in enumerate(puts):
            key = f"k{n}"  # each item put once
            ours.put(namespace, key, value, index=item_index)
            theirs.put(namespace, key, value, index=item_index)
        for prefix, query, filter, (limit, offset) in searches:
            got = ours.search(prefix, query=query, filter=filter, limit=limit, offset=offset)
            first = theirs.search(prefix, query=query, filter=filter, limit=offset + limit)
            expected = first[offset:]
            assert [(i.namespace, i.key, i.value) for i in got] == [
                (i.namespace, i.key, i.value) for i in expected
            ]
            # Whole-number vectors: the same cosines to the bit, numpy or not.
            assert [i.score for i in got] == [i.score for i in expected]


@pytest.mark.parametrize(
    "call",
    [
        lambda store: store.put(("a.b",), "k", {}),
        lambda store: store.put((), "k", {}),
        lambda store: store.put(("langgraph",), "k", {}),
        lambda store: store.put(("a", ""), "k", {}),
        lambda store: store.search(("a.b",)),
        lambda store: store.get(("a", 1), "k"),
        lambda store: store.list_namespaces(prefix=("a.b",)),
    ],
)
def test_what_langgraph_refuses_as_a_namespace_we_refuse_too(
    call: Callable[[BaseStore], Any],
) -> None:
    from langgraph.store.base import InvalidNamespaceError as LangGraphError

    from rxagent.store import InvalidNamespaceError

    with pytest.raises(LangGraphError):
        call(LangGraphStore())  # type: ignore[arg-type]
    with pytest.raises(InvalidNamespaceError):
        call(InMemoryStore())
