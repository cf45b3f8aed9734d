"""The promises every long-term memory store keeps, as a pytest class to subclass.

Every store rxagent ships passes this suite, and so can one of your own (Postgres, say):
subclass :class:`StoreConformance` in a test module and give it a ``make_store`` fixture: a
function that makes a fresh, empty store, with the ``index`` it is given (``None``: no
semantic search), and closes what it made when the test ends::

    import pytest
    from rxagent.store.conformance import StoreConformance

    class TestPostgresStore(StoreConformance):
        @pytest.fixture
        def make_store(self, postgres_url):
            made = []
            def make(index=None):
                made.append(PostgresStore(postgres_url, index=index))
                return made[-1]
            yield make
            for store in made:
                store.close()

Each promise is one test, named after what it checks, so a failure says which promise broke.
The async tests run under asyncio and trio (anyio's pytest plugin, which ``anyio`` installs).

This module imports pytest; import it from tests only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest

from .._exceptions import InvalidNamespaceError, UsageError
from ._base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchItem,
    SearchOp,
)

__all__ = ["StoreConformance", "letter_embeddings"]

MakeStore = Callable[..., BaseStore]


def letter_embeddings(texts: Sequence[str]) -> list[list[float]]:
    """A test embedder of three dimensions: how many ``a``, ``b`` and ``c`` a text holds.

    Whole numbers, so that every store (and LangGraph) computes the same cosines to the bit,
    and the order of a semantic search is known in advance: ``"a"`` is closest to ``"aaa"``,
    then ``"ab"``, and orthogonal to ``"bc"``.
    """
    return [[float(text.count(letter)) for letter in "abc"] for text in texts]


def _index(fields: list[str]) -> IndexConfig:
    return IndexConfig(dims=3, embed=letter_embeddings, fields=fields)


def _json(value: Any) -> str:
    """Canonical JSON text: equal only if the values are equal *and* of the same JSON types
    (``1``, ``1.0`` and ``True`` are equal in Python but not here)."""
    return json.dumps(value, sort_keys=True)


def _keys(items: Sequence[Item]) -> list[str]:
    return [item.key for item in items]


# A value JSON can carry but a careless store can bend: nesting, unicode past the BMP, escapes,
# a NUL, large and small numbers, and the types Python's == does not tell apart.
_AWKWARD: dict[str, Any] = {
    "text": "héllo wörld ✓ 你好 🦜",
    "nested": {"a": {"b": {"c": [[], {}, [[]], {"": ""}]}}},
    "escapes": "quote \" backslash \\ newline \n tab \t nul \x00 end",
    "numbers": [0, -1, 2**53 + 1, 2**63 - 1, 1.5, -0.25, 1e300, 1.0],
    "flags": [True, False, None, 1, 0],
    "clé 🔑": "value",
}


class StoreConformance:
    """The conformance suite: subclass it and provide a ``make_store`` fixture (see the
    module's docstring). Every test takes that fixture and nothing else of yours."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def store(self, make_store: MakeStore) -> BaseStore:
        """A fresh, empty store without an index."""
        return make_store()

    # -- put, get, delete ----------------------------------------------------------------------

    def test_put_then_get_gives_back_an_equal_value(self, store: BaseStore) -> None:
        store.put(("memories", "user-1"), "k", _AWKWARD)
        item = store.get(("memories", "user-1"), "k")
        assert item is not None
        assert _json(item.value) == _json(_AWKWARD)
        assert (item.namespace, item.key) == (("memories", "user-1"), "k")
        assert item.created_at.utcoffset() == timedelta(0) == item.updated_at.utcoffset()
        assert item.created_at == item.updated_at

    def test_get_of_what_was_never_put_is_none(self, store: BaseStore) -> None:
        store.put(("a", "b"), "k", {"v": 1})
        assert store.get(("a", "b"), "other") is None
        assert store.get(("a",), "k") is None
        assert store.get(("a", "b", "c"), "k") is None
        assert store.get(("nowhere",), "k") is None
        assert store.list_namespaces() == [("a", "b")]  # reads make no namespace

    def test_put_again_replaces_the_value_and_keeps_created_at(self, store: BaseStore) -> None:
        store.put(("a",), "k", {"v": 1, "gone": True})
        first = store.get(("a",), "k")
        store.put(("a",), "k", {"v": 2})
        second = store.get(("a",), "k")
        assert first is not None and second is not None
        assert second.value == {"v": 2}
        assert second.created_at == first.created_at
        assert second.updated_at >= first.updated_at
        assert _keys(store.search(("a",))) == ["k"]

    def test_delete_forgets_the_item_and_nothing_else(self, store: BaseStore) -> None:
        store.put(("a",), "k", {"v": 1})
        store.put(("a",), "kept", {"v": 2})
        store.put(("a", "b"), "k", {"v": 3})
        store.delete(("a",), "k")
        store.delete(("a",), "k")  # again: nothing there, no error
        store.delete(("never",), "k")
        assert store.get(("a",), "k") is None
        assert store.get(("a",), "kept") is not None and store.get(("a", "b"), "k") is not None
        assert _keys(store.search(("a",))) == ["kept", "k"]

    def test_keys_and_namespaces_are_told_apart_exactly(self, store: BaseStore) -> None:
        places = [
            (("a",), "k"), (("a",), "K"), (("a",), "k "), (("a",), "é"), (("a",), ""),
            (("a", "b"), "k"), (("ab",), "k"), (("a", "b", "c"), "k"), (("a b",), "k"),
            (("a/b",), "k"), (("a", "b/c"), "k"), (("a-b",), "k"), (("*",), "k"),
            (("a", "b:c"), "k"), (("a:b", "c"), "k"), (("🦜", "ns ✓"), "k"),
        ]
        for namespace, key in places:
            store.put(namespace, key, {"at": [list(namespace), key]})
        for namespace, key in places:
            item = store.get(namespace, key)
            assert item is not None and item.value == {"at": [list(namespace), key]}
        assert len(store.search((), limit=100)) == len(places)

    def test_keys_are_made_text_as_in_langgraph(self, store: BaseStore) -> None:
        store.put(("a",), 7, {"v": 1})  # type: ignore[arg-type]
        item = store.get(("a",), "7")
        assert item is not None and item.key == "7"

    def test_values_handed_back_are_copies(self, store: BaseStore) -> None:
        value: dict[str, Any] = {"list": [1], "dict": {"k": "v"}}
        store.put(("a",), "k", value)
        value["list"].append(2)  # what the caller does to what it put...
        got = store.get(("a",), "k")
        assert got is not None
        got.value["list"].append(3)  # ...and to what it got back reaches nothing stored
        got.value["dict"].clear()
        store.search(("a",))[0].value["list"].append(4)
        again = store.get(("a",), "k")
        assert again is not None and again.value == {"list": [1], "dict": {"k": "v"}}

    # -- what is refused -----------------------------------------------------------------------

    @pytest.mark.parametrize(
        "namespace",
        [(), ("a.b",), ("a", ""), ("a", 1), ("nul\x00",), ("langgraph", "x"), ["a"], "a"],
        ids=["empty", "dot", "empty-label", "not-str", "nul", "langgraph", "list", "str"],
    )
    def test_an_item_needs_a_namespace_that_is_one(
        self, store: BaseStore, namespace: Any
    ) -> None:
        with pytest.raises(InvalidNamespaceError) as caught:
            store.put(namespace, "k", {"v": 1})
        assert isinstance(caught.value, ValueError) and isinstance(caught.value, UsageError)
        assert store.list_namespaces() == []

    @pytest.mark.parametrize("namespace", [("a.b",), ("a", ""), ("a", 1), ["a"]])
    def test_reads_and_deletes_check_the_labels_too(
        self, store: BaseStore, namespace: Any
    ) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.get(namespace, "k"),
            lambda: store.delete(namespace, "k"),
            lambda: store.search(namespace),
        ]
        if isinstance(namespace, tuple):  # a listing's prefix may be a list, as in LangGraph
            calls += [
                lambda: store.list_namespaces(prefix=namespace),
                lambda: store.list_namespaces(suffix=namespace),
            ]
        for call in calls:
            with pytest.raises(InvalidNamespaceError):
                call()

    @pytest.mark.parametrize(
        "value", [None, [1], "text", {"v": object()}, {"v": {1, 2}}],
        ids=["none", "list", "str", "object", "set"],
    )
    def test_a_value_that_is_no_json_dict_is_refused_and_nothing_stored(
        self, store: BaseStore, value: Any
    ) -> None:
        if value is None:  # a PutOp of None deletes, as in LangGraph
            store.put(("a",), "k", {"v": 1})
            store.batch([PutOp(("a",), "k", value)])
            assert store.get(("a",), "k") is None
            return
        with pytest.raises(UsageError):
            store.put(("a",), "k", value)
        assert store.get(("a",), "k") is None

    def test_a_ttl_is_kept_or_refused(self, store: BaseStore) -> None:
        if not store.supports_ttl:
            with pytest.raises(UsageError, match="ttl"):
                store.put(("a",), "k", {"v": 1}, ttl=5)
            store.put(("a",), "k", {"v": 1}, ttl=None)
            assert store.get(("a",), "k") is not None
            return
        # A ttl of 0 is up at once, and one of ten hours is not, whatever the clock does.
        store.put(("a",), "gone", {"v": 1}, ttl=0)
        store.put(("a",), "kept", {"v": 2}, ttl=600)
        store.put(("a",), "ever", {"v": 3}, ttl=None)
        store.put(("only-gone",), "k", {"v": 4}, ttl=0)
        assert store.get(("a",), "gone") is None
        assert _keys(store.search(("a",))) == ["kept", "ever"]
        assert store.list_namespaces() == [("a",)]
        store.put(("a",), "gone", {"v": 5})  # put again: a new item, last in order
        assert _keys(store.search(("a",))) == ["kept", "ever", "gone"]
        for bad in (-1, "5", True):
            with pytest.raises(UsageError, match="ttl"):
                store.put(("a",), "k", {"v": 1}, ttl=bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "options",
        [{"limit": -1}, {"offset": -1}, {"limit": 1.5}, {"filter": {"x": {"$regex": "a"}}},
         {"filter": {"x": {"$gt": 1, "lt": 2}}}, {"filter": [("x", 1)]}],
        ids=["limit", "offset", "float-limit", "unknown-op", "mixed-op", "not-a-dict"],
    )
    def test_a_search_that_cannot_work_is_refused_even_on_an_empty_store(
        self, store: BaseStore, options: dict[str, Any]
    ) -> None:
        with pytest.raises(UsageError):
            store.search(("a",), **options)

    def test_an_operation_of_an_unknown_kind_is_refused(self, store: BaseStore) -> None:
        with pytest.raises(UsageError, match="GetOp"):
            store.batch([("a", "k")])  # type: ignore[list-item]

    # -- search --------------------------------------------------------------------------------

    def test_search_takes_the_prefix_and_what_is_below_it_only(self, store: BaseStore) -> None:
        for namespace in [
            ("a",), ("a", "b"), ("a", "b", "c"), ("a", "bc"), ("a", "b-c"), ("a", "b/c"),
            ("ab",), ("a-",), ("b",), ("a", "a"),
        ]:
            store.put(namespace, "k", {"at": list(namespace)})
        found = {item.namespace for item in store.search(("a", "b"), limit=100)}
        assert found == {("a", "b"), ("a", "b", "c")}
        found = {item.namespace for item in store.search(("a",), limit=100)}
        assert found == {
            ("a",), ("a", "b"), ("a", "b", "c"), ("a", "bc"), ("a", "b-c"), ("a", "b/c"),
            ("a", "a"),
        }
        assert len(store.search((), limit=100)) == 10
        assert store.search(("a", "b", "c", "d")) == []

    def test_search_gives_items_in_the_order_first_put_namespace_by_namespace(
        self, store: BaseStore
    ) -> None:
        store.put(("n", "x"), "1", {"v": 1})
        store.put(("n", "y"), "2", {"v": 2})
        store.put(("n", "x"), "3", {"v": 3})
        store.put(("n",), "4", {"v": 4})
        store.put(("n", "x"), "1", {"v": 10})  # replaced: keeps its place
        store.put(("n", "y"), "2", {"v": 20})
        store.delete(("n", "y"), "2")
        store.put(("n", "y"), "2", {"v": 200})  # deleted and put again: last of its namespace
        store.put(("n", "y"), "5", {"v": 5})
        listed = store.search(("n",))
        assert [(item.namespace[1:], item.key) for item in listed] == [
            (("x",), "1"), (("x",), "3"), (("y",), "2"), (("y",), "5"), ((), "4")
        ]
        assert [item.value["v"] for item in listed] == [10, 3, 200, 5, 4]
        assert all(isinstance(item, SearchItem) and item.score is None for item in listed)

    def test_pages_of_a_search_follow_one_another(self, store: BaseStore) -> None:
        for n in range(23):
            store.put(("p", str(n % 3)), f"k{n}", {"n": n, "even": n % 2 == 0})
        all_options: list[dict[str, Any]] = [{}, {"filter": {"even": True}}]
        for options in all_options:
            whole = _keys(store.search(("p",), limit=100, **options))
            pages = [
                _keys(store.search(("p",), limit=5, offset=offset, **options))
                for offset in range(0, 25, 5)
            ]
            assert [key for page in pages for key in page] == whole, options
            assert all(len(page) <= 5 for page in pages)
        assert len(store.search(("p",))) == 10  # LangGraph's default limit
        assert store.search(("p",), limit=0) == []
        assert store.search(("p",), offset=100) == []

    def test_a_filter_takes_equal_values(self, store: BaseStore) -> None:
        items: dict[str, dict[str, Any]] = {
            "int": {"kind": "note", "n": 1, "tags": ["x", "y"], "meta": {"a": 1, "b": 2}},
            "float": {"kind": "note", "n": 1.0, "tags": ["x"], "meta": {"a": 1}},
            "str": {"kind": "todo", "n": "1", "tags": ["y", "x"], "meta": {"a": "1"}},
            "none": {"kind": None},
            "bare": {},
        }
        for key, value in items.items():
            store.put(("f",), key, value)

        def found(filter: dict[str, Any]) -> list[str]:
            return _keys(store.search(("f",), filter=filter))

        assert found({"kind": "note"}) == ["int", "float"]
        assert found({"kind": "note", "n": 1}) == ["int", "float"]  # 1 == 1.0, as in Python
        assert found({"n": "1"}) == ["str"]
        assert found({"tags": ["x", "y"]}) == ["int"]  # lists: element by element
        assert found({"meta": {"a": 1}}) == ["int", "float"]  # dicts: the fields named
        assert found({"meta": {"a": 1, "b": 2}}) == ["int"]
        assert found({"kind": None}) == ["none", "bare"]  # a missing field counts as None
        assert found({"missing": "x"}) == []
        assert found({}) == list(items)

    def test_a_filter_takes_comparison_operators(self, store: BaseStore) -> None:
        values: dict[str, Any] = {
            "one": 1, "two": 2.0, "three": 3, "true": True, "text": "2", "date": "2024-05-01",
            "none": None, "list": [2],
        }
        for key, value in values.items():
            store.put(("ops",), key, {"v": value})
        store.put(("ops",), "missing", {})

        def found(condition: dict[str, Any]) -> list[str]:
            return _keys(store.search(("ops",), filter={"v": condition}, limit=20))

        assert found({"$gt": 1}) == ["two", "three"]
        assert found({"$gte": 2}) == ["two", "three"]
        assert found({"$lt": 2}) == ["one", "true"]  # True is 1, as in Python
        assert found({"$lte": 1.0}) == ["one", "true"]
        assert found({"$gt": 1, "$lt": 3}) == ["two"]
        assert found({"$gte": "2024-01-01"}) == ["date"]  # str with str: ISO dates compare
        assert found({"$lt": "3"}) == ["text", "date"]
        assert found({"$eq": 2}) == ["two"]
        assert found({"$eq": [2]}) == ["list"]
        assert found({"$ne": 2}) == [k for k in [*values, "missing"] if k != "two"]

    # -- list_namespaces -----------------------------------------------------------------------

    def test_list_namespaces_lists_those_holding_items_sorted(self, store: BaseStore) -> None:
        for namespace in [("b",), ("a", "y"), ("a", "x", "1"), ("a",), ("a", "x", "2")]:
            store.put(namespace, "k", {"v": 1})
        store.put(("gone",), "k", {"v": 1})
        store.delete(("gone",), "k")
        assert store.list_namespaces() == [
            ("a",), ("a", "x", "1"), ("a", "x", "2"), ("a", "y"), ("b",)
        ]
        assert store.list_namespaces(limit=2, offset=1) == [("a", "x", "1"), ("a", "x", "2")]
        assert store.list_namespaces(offset=9) == []

    def test_list_namespaces_matches_prefixes_suffixes_and_wildcards(
        self, store: BaseStore
    ) -> None:
        for namespace in [
            ("users", "1", "memories"), ("users", "2", "memories"), ("users", "2", "notes"),
            ("users",), ("usersx", "1", "memories"), ("teams", "1", "memories"),
        ]:
            store.put(namespace, "k", {"v": 1})
        assert store.list_namespaces(prefix=("users",)) == [
            ("users",), ("users", "1", "memories"), ("users", "2", "memories"),
            ("users", "2", "notes"),
        ]
        assert store.list_namespaces(suffix=("memories",)) == [
            ("teams", "1", "memories"), ("users", "1", "memories"), ("users", "2", "memories"),
            ("usersx", "1", "memories"),
        ]
        assert store.list_namespaces(prefix=("users", "*", "memories")) == [
            ("users", "1", "memories"), ("users", "2", "memories"),
        ]
        assert store.list_namespaces(prefix=("*", "1")) == [
            ("teams", "1", "memories"), ("users", "1", "memories"), ("usersx", "1", "memories"),
        ]
        assert store.list_namespaces(prefix=("users",), suffix=("2", "*")) == [
            ("users", "2", "memories"), ("users", "2", "notes"),
        ]
        assert store.list_namespaces(prefix=("none",)) == []

    def test_list_namespaces_cuts_to_max_depth(self, store: BaseStore) -> None:
        for namespace in [("a", "x", "1"), ("a", "x", "2"), ("a", "y"), ("b",), ("a",)]:
            store.put(namespace, "k", {"v": 1})
        assert store.list_namespaces(max_depth=1) == [("a",), ("b",)]
        assert store.list_namespaces(max_depth=2) == [("a",), ("a", "x"), ("a", "y"), ("b",)]
        assert store.list_namespaces(prefix=("a",), max_depth=2, limit=2) == [
            ("a",), ("a", "x")
        ]

    # -- batch ---------------------------------------------------------------------------------

    def test_a_batch_reads_the_store_as_it_was_and_the_last_put_wins(
        self, store: BaseStore
    ) -> None:
        store.put(("b",), "old", {"v": 0})
        results = store.batch([
            PutOp(("b",), "new", {"v": 1}),
            GetOp(("b",), "new"),
            GetOp(("b",), "old"),
            PutOp(("b",), "new", {"v": 2}),
            PutOp(("b",), "old", None),
            SearchOp(("b",)),
            ListNamespacesOp(),
            ListNamespacesOp((MatchCondition("prefix", ("x",)),)),
        ])
        assert len(results) == 8
        assert results[0] is None and results[1] is None
        old = results[2]
        assert isinstance(old, Item) and old.value == {"v": 0}
        assert results[3] is None and results[4] is None
        assert isinstance(results[5], list) and _keys(results[5]) == ["old"]  # type: ignore[arg-type]
        assert results[6] == [("b",)] and results[7] == []
        new = store.get(("b",), "new")
        assert new is not None and new.value == {"v": 2}
        assert store.get(("b",), "old") is None

    def test_a_batch_with_a_bad_operation_changes_nothing(self, store: BaseStore) -> None:
        with pytest.raises(UsageError):
            store.batch([PutOp(("b",), "k", {"v": 1}), PutOp(("bad.label",), "k", {"v": 2})])
        with pytest.raises(UsageError):
            store.batch([PutOp(("b",), "k", {"v": 1}), SearchOp(("b",), limit=-1)])
        assert store.get(("b",), "k") is None
        assert store.batch([]) == []

    # -- semantic search -----------------------------------------------------------------------

    def test_a_query_ranks_items_by_cosine_similarity(self, make_store: MakeStore) -> None:
        store = make_store(index=_index(fields=["text"]))
        for key, text in [("b", "bbb"), ("ab", "ab"), ("a", "aaa"), ("bc", "bc"), ("aab", "aab")]:
            store.put(("docs",), key, {"text": text})
        found = store.search(("docs",), query="a", limit=10)
        assert _keys(found) == ["a", "aab", "ab", "b", "bc"]
        scores = [item.score for item in found]
        assert scores[0] == pytest.approx(1.0)
        assert scores[1] == pytest.approx(2 / 5**0.5)
        assert scores[2] == pytest.approx(2**-0.5)
        assert scores[3] == scores[4] == 0.0
        # One page follows another, and a filter narrows before ranking.
        assert _keys(store.search(("docs",), query="a", limit=2, offset=1)) == ["aab", "ab"]
        assert _keys(
            store.search(("docs",), query="c", filter={"text": {"$ne": "bc"}}, limit=2)
        ) == ["b", "ab"]
        # No query: the order they were put, scores None.
        plain = store.search(("docs",))
        assert _keys(plain) == ["b", "ab", "a", "bc", "aab"]
        assert {item.score for item in plain} == {None}

    def test_items_with_nothing_indexed_come_after_the_ranked_ones(
        self, make_store: MakeStore
    ) -> None:
        store = make_store(index=_index(fields=["text"]))
        store.put(("d",), "none-1", {"text": "aaa"}, index=False)
        store.put(("d",), "ranked-1", {"text": "b"})
        store.put(("d",), "no-text", {"other": "aaa"})  # nothing at the field: no vector
        store.put(("d",), "ranked-2", {"text": "a"})
        found = store.search(("d",), query="a")
        assert _keys(found) == ["ranked-2", "ranked-1", "none-1", "no-text"]
        assert [item.score is None for item in found] == [False, False, True, True]
        pages = [_keys(store.search(("d",), query="a", limit=1, offset=n)) for n in range(5)]
        assert pages == [["ranked-2"], ["ranked-1"], ["none-1"], ["no-text"], []]

    def test_index_fields_and_paths_choose_what_is_embedded(self, make_store: MakeStore) -> None:
        store = make_store(index=_index(fields=["title", "parts[*].text"]))
        store.put(("d",), "title", {"title": "aaa", "body": "ccc"})
        store.put(("d",), "parts", {"title": "ccc", "parts": [{"text": "bbb"}, {"text": "a"}]})
        store.put(("d",), "body", {"body": "aaa"})
        store.put(("d",), "own", {"title": "ccc", "x": {"y": "aa"}}, index=["x.y"])
        found = store.search(("d",), query="a")
        # An item scores as its best text: "parts" has "a" among its parts.
        assert _keys(found) == ["title", "parts", "own", "body"]
        assert [item.score for item in found][:3] == pytest.approx([1.0, 1.0, 1.0])
        assert found[3].score is None

    def test_the_whole_value_is_embedded_by_default(self, make_store: MakeStore) -> None:
        store = make_store(index=IndexConfig(dims=3, embed=letter_embeddings))
        store.put(("d",), "k", {"text": "b"})  # the JSON text '{"text": "b"}' holds no "a"
        store.put(("d",), "j", {"aaaa": "c"})
        assert _keys(store.search(("d",), query="a")) == ["j", "k"]

    def test_putting_again_replaces_the_vectors(self, make_store: MakeStore) -> None:
        store = make_store(index=_index(fields=["texts"]))
        store.put(("d",), "k", {"texts": ["aaa", "aa"]})
        store.put(("d",), "j", {"texts": "ab"})
        store.put(("d",), "k", {"texts": "bbb"})  # none of the old "a" vectors may remain
        assert _keys(store.search(("d",), query="a")) == ["j", "k"]
        store.put(("d",), "j", {"texts": "ab"}, index=False)
        found = store.search(("d",), query="a")
        assert _keys(found) == ["k", "j"] and found[1].score is None

    def test_a_query_on_a_store_without_index_lists_in_order(self, store: BaseStore) -> None:
        store.put(("d",), "x", {"text": "b"})
        store.put(("d",), "y", {"text": "a"})
        found = store.search(("d",), query="a")
        assert _keys(found) == ["x", "y"] and {item.score for item in found} == {None}

    def test_an_embeddings_object_embeds_queries_with_embed_query(
        self, make_store: MakeStore
    ) -> None:
        calls: list[tuple[str, Any]] = []

        class Embeddings:
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                calls.append(("documents", list(texts)))
                return letter_embeddings(texts)

            def embed_query(self, text: str) -> list[float]:
                calls.append(("query", text))
                return letter_embeddings([text])[0]

        store = make_store(index=IndexConfig(dims=3, embed=Embeddings(), fields=["t"]))
        store.batch([
            PutOp(("d",), "1", {"t": "aa"}), PutOp(("d",), "2", {"t": "aa"}),
            PutOp(("d",), "3", {"t": "b"}),
        ])
        assert _keys(store.search(("d",), query="b")) == ["3", "1", "2"]
        # Each distinct text embedded once, the query by embed_query.
        assert calls == [("documents", ["aa", "b"]), ("query", "b")]

    def test_an_embedder_that_breaks_its_promise_is_a_usage_error(
        self, make_store: MakeStore
    ) -> None:
        store = make_store(index=IndexConfig(dims=4, embed=letter_embeddings, fields=["t"]))
        with pytest.raises(UsageError, match="dims"):
            store.put(("d",), "k", {"t": "a"})
        assert store.get(("d",), "k") is None
        with pytest.raises(UsageError):
            make_store(index=IndexConfig(dims=3, embed="openai:text-embedding-3-small"))
        with pytest.raises(UsageError):
            make_store(index=IndexConfig(dims=0, embed=letter_embeddings))

    @pytest.mark.anyio
    async def test_an_async_embedder_serves_the_async_forms(self, make_store: MakeStore) -> None:
        async def embed(texts: list[str]) -> list[list[float]]:
            await anyio.sleep(0)
            return letter_embeddings(texts)

        store = make_store(index=IndexConfig(dims=3, embed=embed, fields=["t"]))
        await store.aput(("d",), "b", {"t": "b"})
        await store.aput(("d",), "a", {"t": "a"})
        assert _keys(await store.asearch(("d",), query="a")) == ["a", "b"]
        with pytest.raises(UsageError, match="async"):
            store.put(("d",), "c", {"t": "c"})
        store.put(("d",), "c", {"t": "c"}, index=False)  # nothing to embed: fine
        assert _keys(store.search(("d",))) == ["b", "a", "c"]

    # -- Item ----------------------------------------------------------------------------------

    def test_items_compare_and_print_as_langgraph_s_do(self, store: BaseStore) -> None:
        store.put(("a",), "k", {"v": 1})
        item = store.get(("a",), "k")
        found = store.search(("a",))[0]
        assert item is not None
        assert item == store.get(("a",), "k") and hash(item) == hash(found)
        data = item.dict()
        assert data["namespace"] == ["a"] and data["key"] == "k" and data["value"] == {"v": 1}
        assert datetime.fromisoformat(data["created_at"]) == item.created_at
        assert found.dict()["score"] is None and "score" not in data
        assert "Item(" in repr(item) and "SearchItem(" in repr(found)

    # -- async forms ---------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_async_forms_agree_with_the_sync_ones(self, store: BaseStore) -> None:
        for n in range(6):
            await store.aput(("u", str(n % 2)), f"k{n}", {"n": n})
        await store.adelete(("u", "0"), "k2")
        got = await store.aget(("u", "1"), "k1")
        assert got == store.get(("u", "1"), "k1") and got is not None
        assert await store.aget(("u", "0"), "k2") is None
        for options in ({}, {"limit": 2, "offset": 1}, {"filter": {"n": {"$gte": 3}}}):
            assert await store.asearch(("u",), **options) == store.search(("u",), **options)
        assert await store.alist_namespaces() == store.list_namespaces() == [
            ("u", "0"), ("u", "1")
        ]
        assert await store.alist_namespaces(suffix=("1",)) == [("u", "1")]
        results = await store.abatch([GetOp(("u", "1"), "k3"), PutOp(("u", "1"), "k3", None)])
        assert isinstance(results[0], Item) and results[1] is None
        assert store.get(("u", "1"), "k3") is None

    @pytest.mark.anyio
    async def test_concurrent_async_writers_lose_nothing(self, store: BaseStore) -> None:
        async with anyio.create_task_group() as group:
            for n in range(30):
                group.start_soon(store.aput, ("w", str(n % 3)), f"k{n}", {"n": n})
        found = await store.asearch(("w",), limit=100)
        assert sorted(item.value["n"] for item in found) == list(range(30))

    def test_concurrent_writers_from_several_threads_lose_nothing(
        self, store: BaseStore
    ) -> None:
        workers, rounds = 6, 20
        start = threading.Barrier(workers)
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                start.wait()
                for n in range(rounds):
                    store.put(("t", str(worker)), str(n), {"n": n})
                    store.put(("shared",), f"{worker}-{n}", {"n": n})
                    store.search(("t",), limit=5)
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.search(("shared",), limit=1000)) == workers * rounds
        for worker in range(workers):
            assert _keys(store.search(("t", str(worker)), limit=100)) == [
                str(n) for n in range(rounds)
            ]
