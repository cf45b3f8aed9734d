"""What a store keeps (:class:`Item`), the operations on it, and the interface every store has.

LangGraph's ``BaseStore`` API, read from its behaviour: namespaces are tuples of labels, each
item a JSON-able dict under a key; ``get``/``put``/``delete``/``search``/``list_namespaces`` each
make one operation and hand it to :meth:`BaseStore.batch`, which a store implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal, NamedTuple, Self, TypedDict, cast

import anyio.to_thread

from .._exceptions import InvalidNamespaceError, UsageError

__all__ = [
    "NOT_PROVIDED",
    "BaseStore",
    "GetOp",
    "IndexConfig",
    "Item",
    "ListNamespacesOp",
    "MatchCondition",
    "NamespacePath",
    "NotProvided",
    "Op",
    "PutOp",
    "Result",
    "SearchItem",
    "SearchOp",
    "TTLConfig",
    "validate_namespace",
    "validate_op",
]


class NotProvided:
    """The type of :data:`NOT_PROVIDED`: an argument left out, told apart from ``None``."""

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_PROVIDED"


NOT_PROVIDED = NotProvided()


class Item:
    """An item of a store, as read back.

    Attributes:
        namespace: where it lives, a tuple of labels (``("memories", "user-1")``).
        key: its name within the namespace.
        value: what was put, a new dict each time it is read (changing it changes nothing
            stored).
        created_at: when it was first put (timezone-aware, UTC).
        updated_at: when it was last put.
    """

    __slots__ = ("created_at", "key", "namespace", "updated_at", "value")

    def __init__(
        self,
        *,
        value: dict[str, Any],
        key: str,
        namespace: tuple[str, ...],
        created_at: datetime | str,
        updated_at: datetime | str,
    ) -> None:
        self.value = value
        self.key = key
        self.namespace = tuple(namespace)
        # LangGraph accepts ISO text here too (what its server sends).
        self.created_at = _datetime(created_at)
        self.updated_at = _datetime(updated_at)

    def dict(self) -> dict[str, Any]:
        """The item as JSON-able data: the namespace as a list, the times as ISO 8601 text."""
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def __eq__(self, other: object) -> bool:
        # A SearchItem equals the Item it was found as, whatever its score, as in LangGraph.
        if not isinstance(other, Item):
            return NotImplemented
        return (self.namespace, self.key, self.value, self.created_at, self.updated_at) == (
            other.namespace, other.key, other.value, other.created_at, other.updated_at
        )

    def __hash__(self) -> int:
        return hash((self.namespace, self.key))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.dict().items())
        return f"{type(self).__name__}({fields})"


class SearchItem(Item):
    """An item found by :meth:`BaseStore.search`, with its ``score``: the cosine similarity to
    the query in a semantic search, ``None`` otherwise (and for items with nothing indexed)."""

    __slots__ = ("score",)

    def __init__(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        created_at: datetime | str,
        updated_at: datetime | str,
        score: float | None = None,
    ) -> None:
        super().__init__(
            value=value, key=key, namespace=namespace, created_at=created_at,
            updated_at=updated_at,
        )
        self.score = score

    def dict(self) -> dict[str, Any]:
        return {**super().dict(), "score": self.score}


def _datetime(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# -- the operations, as LangGraph names them (for batch()) ----------------------------------------


class GetOp(NamedTuple):
    """Read the item ``key`` of ``namespace``: an :class:`Item`, or ``None``."""

    namespace: tuple[str, ...]
    key: str
    refresh_ttl: bool = True


class SearchOp(NamedTuple):
    """Find items in ``namespace_prefix`` and below it: a list of :class:`SearchItem`."""

    namespace_prefix: tuple[str, ...]
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    refresh_ttl: bool = True


NamespacePath = tuple[str, ...]
"""A namespace to match, where a label ``"*"`` matches any one label."""


class MatchCondition(NamedTuple):
    """Namespaces that start (``"prefix"``) or end (``"suffix"``) with ``path``."""

    match_type: Literal["prefix", "suffix"]
    path: NamespacePath


class ListNamespacesOp(NamedTuple):
    """List the namespaces that hold items: a sorted list of tuples."""

    match_conditions: tuple[MatchCondition, ...] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


class PutOp(NamedTuple):
    """Store ``value`` as the item ``key`` of ``namespace``; a ``value`` of ``None`` deletes it.

    ``index``: the fields of the value to embed for semantic search (``None``: the store's
    ``fields``; ``False``: none).
    """

    namespace: tuple[str, ...]
    key: str
    value: Mapping[str, Any] | None
    # NamedTuple's own index() method is shadowed here, as in LangGraph's PutOp.
    index: Literal[False] | list[str] | None = None  # type: ignore[assignment]
    ttl: float | None = None


Op = GetOp | SearchOp | PutOp | ListNamespacesOp
Result = Item | list[Item] | list[SearchItem] | list[tuple[str, ...]] | None


class IndexConfig(TypedDict, total=False):
    """How a store embeds items for semantic search (``InMemoryStore(index=...)``).

    Keys:
        dims: the length of each vector.
        embed: a function from a list of texts to a list of vectors (``def`` or ``async def``),
            or an object with ``embed_documents(texts)`` and ``embed_query(text)`` (a LangChain
            ``Embeddings``; its ``aembed_*`` methods serve the async forms when it has them).
        fields: the paths in a value whose text is embedded (``"text"``, ``"a.b"``,
            ``"items[*].name"``, ``"{title,body}"``); by default ``["$"]``, the whole value.
    """

    dims: int
    embed: Any
    fields: list[str] | None


class TTLConfig(TypedDict, total=False):
    """How a store expires items (``SqliteStore(path, ttl=...)``), as in LangGraph.

    Keys:
        default_ttl: minutes an item is kept when ``put`` names no ``ttl`` (``None``: forever).
        refresh_on_read: whether ``get`` and ``search`` start an item's time again when they
            read it, unless told otherwise with ``refresh_ttl=``; ``True`` by default.
        sweep_interval_minutes: how often expired items are removed for good: the first write
            after that long removes them (no thread of its own). Unread either way: an expired
            item is never read back.
    """

    default_ttl: float | None
    refresh_on_read: bool
    sweep_interval_minutes: int | None


# -- validation ----------------------------------------------------------------------------------


def validate_namespace(namespace: tuple[str, ...], *, for_item: bool = False) -> None:
    """Raise :class:`~rxagent.store.InvalidNamespaceError` unless ``namespace`` is a tuple of
    non-empty ``str`` labels without ``.`` or NUL; for an item's own namespace
    (``for_item=True``) also unless it is non-empty and its first label is not ``"langgraph"``.
    """
    if not isinstance(namespace, tuple):
        raise InvalidNamespaceError(
            f"a namespace is a tuple of str labels, such as ('memories', 'user-1'); "
            f"got {namespace!r}"
        )
    for label in namespace:
        if not isinstance(label, str) or not label:
            raise InvalidNamespaceError(
                f"namespace {namespace!r} has the label {label!r}: each label is a non-empty str"
            )
        if "." in label or "\x00" in label:
            raise InvalidNamespaceError(
                f"namespace {namespace!r} has the label {label!r}: labels cannot hold '.' "
                "or NUL (the labels of a namespace are joined with '.')"
            )
    if for_item:
        if not namespace:
            raise InvalidNamespaceError(
                "an item's namespace cannot be empty: give one label or more"
            )
        if namespace[0] == "langgraph":
            raise InvalidNamespaceError(
                f"namespace {namespace!r} starts with 'langgraph', which LangGraph keeps for "
                "itself: choose another first label"
            )


def _count(name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{name} is a whole number, 0 or more; got {value!r}")


def validate_op(op: Op) -> None:
    """Raise a :class:`~rxagent.UsageError` for an operation that cannot work: a bad namespace,
    key, value, limit or offset, a filter that is no dict, or an operation of an unknown kind.
    (A filter's operators are checked by ``_match.check_filter``, beside the code that applies
    them.)"""
    if isinstance(op, PutOp):
        # A delete only has its labels checked: deleting from a namespace no item can live in
        # is a no-op, as in LangGraph.
        validate_namespace(op.namespace, for_item=op.value is not None)
        if not isinstance(op.key, str):
            raise UsageError(f"an item's key is a str; got {op.key!r}")
        if op.value is not None and not isinstance(op.value, Mapping):
            raise UsageError(
                f"an item's value is a dict (None deletes the item); got {type(op.value).__name__}"
            )
        if op.index is not None and op.index is not False and (
            not isinstance(op.index, list) or not all(isinstance(f, str) for f in op.index)
        ):
            raise UsageError(f"index is a list of field paths, False or None; got {op.index!r}")
        if op.ttl is not None and (
            isinstance(op.ttl, bool) or not isinstance(op.ttl, int | float) or not op.ttl >= 0
        ):
            raise UsageError(f"ttl is minutes, 0 or more, or None for ever; got {op.ttl!r}")
    elif isinstance(op, GetOp):
        validate_namespace(op.namespace)
        if not isinstance(op.key, str):
            raise UsageError(f"an item's key is a str; got {op.key!r}")
    elif isinstance(op, SearchOp):
        validate_namespace(op.namespace_prefix)
        _count("limit", op.limit)
        _count("offset", op.offset)
        if op.filter is not None and not isinstance(op.filter, Mapping):
            raise UsageError(f"filter is a dict of field: value; got {op.filter!r}")
        if op.query is not None and not isinstance(op.query, str):
            raise UsageError(f"query is a str; got {op.query!r}")
    elif isinstance(op, ListNamespacesOp):
        for condition in op.match_conditions or ():
            if condition.match_type not in ("prefix", "suffix"):
                raise UsageError(
                    f"a match condition is 'prefix' or 'suffix'; got {condition.match_type!r}"
                )
            validate_namespace(tuple(condition.path))
        _count("max_depth", op.max_depth, optional=True)
        _count("limit", op.limit)
        _count("offset", op.offset)
    else:
        raise UsageError(
            f"a store runs GetOp, PutOp, SearchOp and ListNamespacesOp; got {type(op).__name__}"
        )


# -- the interface -------------------------------------------------------------------------------


class BaseStore(ABC):
    """Long-term memory: JSON-able dicts under keys in namespaces, kept across threads.

    A store implements :meth:`batch`; the other methods each make one operation and run it
    there. The async forms run :meth:`batch` in a worker thread unless a store says otherwise.
    Namespaces are tuples of labels (``("memories", user_id)``), checked as
    :func:`validate_namespace` says; values are dicts that JSON can carry, and a store gives
    back equal ones.

    A store is also a context manager that closes it: ``with SqliteStore(path) as store:``.
    """

    supports_ttl: ClassVar[bool] = False
    """Whether items may be given a time to live (``put(..., ttl=minutes)``)."""

    ttl_config: TTLConfig | None = None
    """The store's :class:`TTLConfig`, if it was given one."""

    @abstractmethod
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` as one unit and give back their results, in order.

        The reads (``GetOp``, ``SearchOp``, ``ListNamespacesOp``) see the store as it was before
        the batch; its writes are applied after them, the last ``PutOp`` of an item winning.
        """

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch`, awaited (in a worker thread unless the store says otherwise)."""
        ops = list(ops)
        return await anyio.to_thread.run_sync(self.batch, ops)

    def close(self) -> None:
        """Let go of what the store holds (a connection); by default nothing."""
        return  # nothing to let go of, unless a store says otherwise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one operation each --------------------------------------------------------------------

    def get(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """The item ``key`` of ``namespace``, or ``None``.

        Args:
            refresh_ttl: whether reading the item starts its time to live again (``None``:
                the store's ``refresh_on_read``, ``True`` unless it says otherwise).
        """
        op = GetOp(namespace, str(key), self._refresh(refresh_ttl))
        return cast("Item | None", self.batch([op])[0])

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Store ``value`` (a JSON-able dict) as the item ``key`` of ``namespace``, replacing
        the item there (whose ``created_at`` it keeps).

        Args:
            index: the value's fields to embed for semantic search, when the store has an
                ``index``: ``None`` for the store's ``fields``, ``False`` for none.
            ttl: minutes to keep the item (``None``: for ever), for a store that
                :attr:`supports_ttl`; left out, the store's ``default_ttl``.

        Raises:
            InvalidNamespaceError: the namespace is not one an item can live in.
            UsageError: a key that is no str, a value that is no dict or not JSON-able, or a
                ``ttl`` the store cannot keep.
        """
        self.batch([self._put_op(namespace, key, value, index, ttl)])

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Forget the item ``key`` of ``namespace`` (nothing happens if there is none)."""
        self.batch([_delete_op(namespace, key)])

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Items in ``namespace_prefix`` and the namespaces below it.

        Without a ``query`` (or in a store without an ``index``) they come in the order they
        were first put, namespace by namespace. With one, most similar first; items with
        nothing indexed come after those, with a ``score`` of ``None``.

        Args:
            query: text to compare with the items' embedded fields.
            filter: ``{field: value}`` pairs an item's value must hold: equal values (a dict
                matches the fields it names, a list element by element), or a dict of
                operators, ``{"$gt": 3}``: ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``,
                ``$lte`` (the last four compare numbers with numbers and str with str; a
                missing field or another kind never matches).
            limit: at most this many items.
            offset: skip this many first.
            refresh_ttl: whether the items found start their time to live again, as for
                :meth:`get`.
        """
        op = SearchOp(namespace_prefix, filter, limit, offset, query, self._refresh(refresh_ttl))
        return cast("list[SearchItem]", self.batch([op])[0])

    def list_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """The namespaces that hold items, sorted.

        Args:
            prefix: only those starting with these labels (``"*"`` matches any one label).
            suffix: only those ending with these labels.
            max_depth: cut each to its first ``max_depth`` labels (duplicates listed once).
            limit: at most this many.
            offset: skip this many first.
        """
        op = _list_op(prefix, suffix, max_depth, limit, offset)
        return cast("list[tuple[str, ...]]", self.batch([op])[0])

    # -- the same, awaited ---------------------------------------------------------------------

    async def aget(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """:meth:`get`, awaited."""
        op = GetOp(namespace, str(key), self._refresh(refresh_ttl))
        return cast("Item | None", (await self.abatch([op]))[0])

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """:meth:`put`, awaited."""
        await self.abatch([self._put_op(namespace, key, value, index, ttl)])

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        """:meth:`delete`, awaited."""
        await self.abatch([_delete_op(namespace, key)])

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """:meth:`search`, awaited."""
        op = SearchOp(namespace_prefix, filter, limit, offset, query, self._refresh(refresh_ttl))
        return cast("list[SearchItem]", (await self.abatch([op]))[0])

    async def alist_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """:meth:`list_namespaces`, awaited."""
        op = _list_op(prefix, suffix, max_depth, limit, offset)
        return cast("list[tuple[str, ...]]", (await self.abatch([op]))[0])

    def _refresh(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is not None:
            return refresh_ttl
        return (self.ttl_config or {}).get("refresh_on_read", True)

    def _put_op(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None,
        ttl: float | NotProvided | None,
    ) -> PutOp:
        if isinstance(ttl, NotProvided):
            ttl = (self.ttl_config or {}).get("default_ttl")
        if ttl is not None and not self.supports_ttl:
            raise UsageError(
                f"{type(self).__name__} keeps items until they are deleted: it takes no ttl "
                "(leave it out, or give None)"
            )
        return PutOp(namespace, str(key), value, index, ttl)



def _delete_op(namespace: tuple[str, ...], key: str) -> PutOp:
    return PutOp(namespace, str(key), None)


def _list_op(
    prefix: NamespacePath | None,
    suffix: NamespacePath | None,
    max_depth: int | None,
    limit: int,
    offset: int,
) -> ListNamespacesOp:
    conditions = []
    if prefix:
        conditions.append(MatchCondition("prefix", tuple(prefix)))
    if suffix:
        conditions.append(MatchCondition("suffix", tuple(suffix)))
    return ListNamespacesOp(tuple(conditions), max_depth, limit, offset)
