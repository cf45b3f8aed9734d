"""A batch's three steps, shared by the stores: plan it (check every op, encode the values, pick
the texts to embed), embed (the only step that may wait on a network, done outside any lock),
then let the store run it against its storage (:meth:`PlannedStore._run`).
"""

from __future__ import annotations

import inspect
import json
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import anyio.to_thread

from .._exceptions import UsageError
from ._base import BaseStore, IndexConfig, Op, PutOp, Result, SearchOp, TTLConfig, validate_op
from ._match import check_filter, texts_at

__all__ = ["Embedded", "Embedder", "Plan", "PlannedStore", "Vectors"]

Vectors = list[list[float]]
ItemKey = tuple[tuple[str, ...], str]


@dataclass
class Plan:
    """What a batch will do, checked and encoded, before the store is touched.

    Attributes:
        ops: the operations, in order.
        puts: the last :class:`PutOp` of each item, with its value as JSON text (``None`` to
            delete), in the order the items were first written in the batch.
        texts: for each item put with something to embed, its texts.
        queries: the distinct queries of semantic searches, to embed.
    """

    ops: list[Op]
    puts: dict[ItemKey, tuple[PutOp, str | None]] = field(default_factory=dict)
    texts: dict[ItemKey, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)


@dataclass
class Embedded:
    """The vectors a plan asked for: each item's (empty when indexed with nothing to embed, or
    absent when not indexed at all) and each query's."""

    items: dict[ItemKey, Vectors] = field(default_factory=dict)
    queries: dict[str, list[float]] = field(default_factory=dict)


def _encode(op: PutOp) -> str:
    try:
        return json.dumps(dict(cast(Any, op.value)), separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise UsageError(
            f"the value of item {op.key!r} in {op.namespace!r} is not JSON-able: {error}"
        ) from error


class Embedder:
    """A store's ``index``, checked once: the embedding callable and the fields to embed."""

    def __init__(self, index: IndexConfig) -> None:
        if not isinstance(index, dict):
            raise UsageError(f"index is a dict with 'dims', 'embed' and 'fields'; got {index!r}")
        unknown = set(index) - {"dims", "embed", "fields"}
        if unknown:
            raise UsageError(f"index takes 'dims', 'embed' and 'fields'; got {sorted(unknown)}")
        dims = index.get("dims")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise UsageError(f"index['dims'] is the vectors' length, 1 or more; got {dims!r}")
        fields = index.get("fields") or ["$"]
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise UsageError(f"index['fields'] is a list of paths; got {fields!r}")
        self.dims = dims
        self.fields = fields
        embed = index.get("embed")
        if isinstance(embed, str) or embed is None:
            raise UsageError(
                "index['embed'] is a function from texts to vectors, or an object with "
                f"embed_documents() and embed_query() (a LangChain Embeddings); got {embed!r}"
            )
        self._sync: Callable[[list[str]], Any] | None = None
        self._async: Callable[[list[str]], Awaitable[Any]] | None = None
        self._sync_query: Callable[[str], Any] | None = None
        self._async_query: Callable[[str], Awaitable[Any]] | None = None
        if hasattr(embed, "embed_documents") and hasattr(embed, "embed_query"):
            self._sync, self._sync_query = embed.embed_documents, embed.embed_query
            if _own_async(embed, "aembed_documents") and _own_async(embed, "aembed_query"):
                self._async, self._async_query = embed.aembed_documents, embed.aembed_query
        elif callable(embed):
            if inspect.iscoroutinefunction(embed) or inspect.iscoroutinefunction(
                getattr(embed, "__call__", None)  # noqa: B004 (an object's async __call__)
            ):
                self._async = embed
            else:
                self._sync = embed
        else:
            raise UsageError(f"index['embed'] cannot embed: {embed!r}")

    def texts_of(self, op: PutOp) -> list[str] | None:
        """The texts of a put to embed; ``None`` when the put asks for no index."""
        if op.value is None or op.index is False:
            return None
        paths = self.fields if op.index is None else op.index
        return [text for path in paths for text in texts_at(op.value, path)]

    def embed(self, texts: list[str], *, query: bool = False) -> Vectors:
        """Vectors for ``texts``, from the sync callable."""
        if self._sync is None:
            raise UsageError(
                "this store's index['embed'] is async only: use the async methods (aput, "
                "asearch, abatch...), or give a sync function too"
            )
        if query and self._sync_query is not None:
            return self._checked([self._sync_query(text) for text in texts], texts)
        return self._checked(self._sync(texts), texts)

    async def aembed(self, texts: list[str], *, query: bool = False) -> Vectors:
        """Vectors for ``texts``, from the async callable, or the sync one in a worker thread."""
        if self._async is None:
            return await anyio.to_thread.run_sync(lambda: self.embed(texts, query=query))
        if query and self._async_query is not None:
            return self._checked([await self._async_query(text) for text in texts], texts)
        return self._checked(await self._async(texts), texts)

    def _checked(self, vectors: Any, texts: Sequence[str]) -> Vectors:
        try:
            checked = [[float(x) for x in vector] for vector in vectors]
        except (TypeError, ValueError) as error:
            raise UsageError(
                f"index['embed'] gave something that is no list of vectors: {error}"
            ) from error
        if len(checked) != len(texts):
            raise UsageError(
                f"index['embed'] gave {len(checked)} vectors for {len(texts)} texts"
            )
        for vector in checked:
            if len(vector) != self.dims:
                raise UsageError(
                    f"index['embed'] gave a vector of {len(vector)} numbers; index['dims'] "
                    f"says {self.dims}"
                )
        return checked


def _own_async(embed: Any, name: str) -> bool:
    """Whether ``embed`` has an async method ``name`` of its own. LangChain's ``Embeddings``
    gives every subclass ``aembed_*`` methods that run the sync ones in asyncio's executor,
    which trio has not: those are left out, and the sync method runs in a worker thread."""
    method = getattr(type(embed), name, None)
    return method is not None and not str(getattr(method, "__module__", "")).startswith(
        "langchain_core."
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _checked_ttl(ttl: TTLConfig | None) -> TTLConfig | None:
    if ttl is None:
        return None
    if not isinstance(ttl, dict):
        raise UsageError(f"ttl is a dict (a TTLConfig); got {ttl!r}")
    unknown = set(ttl) - {"default_ttl", "refresh_on_read", "sweep_interval_minutes"}
    if unknown:
        raise UsageError(
            "ttl takes 'default_ttl', 'refresh_on_read' and 'sweep_interval_minutes'; "
            f"got {sorted(unknown)}"
        )
    for name in ("default_ttl", "sweep_interval_minutes"):
        value = ttl.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
        ):
            raise UsageError(f"ttl[{name!r}] is minutes, more than 0, or None; got {value!r}")
    if not isinstance(ttl.get("refresh_on_read", True), bool):
        raise UsageError(f"ttl['refresh_on_read'] is True or False; got {ttl['refresh_on_read']!r}")
    return ttl.copy()


class PlannedStore(BaseStore):
    """A store whose batches are planned and embedded here, then run by :meth:`_run`.

    Items may have a time to live: an item is read back until ``expires_at`` (seconds since
    the epoch), never after; reading it with ``refresh_ttl`` starts its time again.
    """

    supports_ttl = True

    def __init__(self, index: IndexConfig | None, ttl: TTLConfig | None) -> None:
        self._embedder = None if index is None else Embedder(index)
        self.index_config: IndexConfig | None = None if index is None else index.copy()
        """The ``index`` the store was made with (``None``: no semantic search)."""
        self.ttl_config = _checked_ttl(ttl)
        self._clock: Callable[[], datetime] = _utc_now  # tests move time on
        self._last_sweep = 0.0

    def _sweep_due(self, now: float) -> bool:
        """Whether a write at ``now`` should sweep expired items (``sweep_interval_minutes``)."""
        interval = (self.ttl_config or {}).get("sweep_interval_minutes")
        if interval is None or now - self._last_sweep < interval * 60:
            return False
        self._last_sweep = now
        return True

    @abstractmethod
    def sweep_ttl(self) -> int:
        """Remove the expired items for good (they are never read back anyway); how many."""

    async def asweep_ttl(self) -> int:
        """:meth:`sweep_ttl`, awaited (in a worker thread)."""
        return await anyio.to_thread.run_sync(self.sweep_ttl)

    def _plan(self, ops: Iterable[Op]) -> Plan:
        plan = Plan(list(ops))
        queries: dict[str, None] = {}
        for op in plan.ops:
            validate_op(op)
            if isinstance(op, SearchOp) and op.filter:
                check_filter(op.filter)
            if isinstance(op, PutOp):
                item = (op.namespace, op.key)
                # The last put of an item decides, in the place of its first (as in LangGraph).
                plan.puts[item] = (op, None if op.value is None else _encode(op))
                plan.texts.pop(item, None)
                if self._embedder is not None:
                    texts = self._embedder.texts_of(op)
                    if texts is not None:
                        plan.texts[item] = texts
            elif isinstance(op, SearchOp) and op.query and self._embedder is not None:
                queries[op.query] = None
        plan.queries = list(queries)
        return plan

    def _unique_texts(self, plan: Plan) -> list[str]:
        return list(dict.fromkeys(text for texts in plan.texts.values() for text in texts))

    def _assemble(self, plan: Plan, texts: list[str], vectors: Vectors,
                  query_vectors: Vectors) -> Embedded:
        by_text = dict(zip(texts, vectors, strict=True))
        return Embedded(
            {item: [by_text[t] for t in item_texts] for item, item_texts in plan.texts.items()},
            dict(zip(plan.queries, query_vectors, strict=True)),
        )

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        plan = self._plan(ops)
        embedded = Embedded()
        if self._embedder is not None:
            texts = self._unique_texts(plan)
            embedded = self._assemble(
                plan, texts,
                self._embedder.embed(texts) if texts else [],
                self._embedder.embed(plan.queries, query=True) if plan.queries else [],
            )
        return self._run(plan, embedded)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        plan = self._plan(ops)
        embedded = Embedded()
        if self._embedder is not None:
            texts = self._unique_texts(plan)
            embedded = self._assemble(
                plan, texts,
                await self._embedder.aembed(texts) if texts else [],
                await self._embedder.aembed(plan.queries, query=True) if plan.queries else [],
            )
        return await self._arun(plan, embedded)

    @abstractmethod
    def _run(self, plan: Plan, embedded: Embedded) -> list[Result]:
        """Run a checked plan against the storage: its reads first, then its puts."""

    async def _arun(self, plan: Plan, embedded: Embedded) -> list[Result]:
        return await anyio.to_thread.run_sync(self._run, plan, embedded)
