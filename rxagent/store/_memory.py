"""``InMemoryStore``: long-term memory in a dict of this process, for tests and notebooks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ._base import GetOp, IndexConfig, Item, ListNamespacesOp, Result, SearchItem, SearchOp
from ._match import matches_filter, page_of_namespaces, rank
from ._plan import Embedded, Plan, PlannedStore, Vectors

__all__ = ["InMemoryStore"]


class _Record(NamedTuple):
    # The value as JSON text, handed out decoded afresh (what a caller does to what it got
    # never reaches the store, as with a database), and decoded once for filters.
    text: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    vectors: Vectors


class InMemoryStore(PlannedStore):
    """Keeps items in memory: gone with the process, shared by whatever holds it.

    Safe to use from several threads. The async methods run in place (nothing here blocks),
    except the embedding calls of an ``index``, which go to a worker thread unless the
    embedder is async.

    Args:
        index: semantic search (see :class:`~rxagent.store.IndexConfig`):
            ``{"dims": 1536, "embed": embeddings, "fields": ["text"]}``.

    Raises:
        UsageError: an ``index`` that cannot work.
    """

    def __init__(self, *, index: IndexConfig | None = None) -> None:
        super().__init__(index)
        self._lock = threading.Lock()
        # Namespaces in the order they first held an item, kept when emptied so that a search
        # orders them as LangGraph's InMemoryStore does; each namespace's items in the order
        # they were first put (a put replacing an item keeps its place).
        self._namespaces: dict[tuple[str, ...], dict[str, _Record]] = {}

    async def _arun(self, plan: Plan, embedded: Embedded) -> list[Result]:
        return self._run(plan, embedded)  # nothing to wait for

    def _run(self, plan: Plan, embedded: Embedded) -> list[Result]:
        with self._lock:
            results: list[Result] = []
            for op in plan.ops:
                if isinstance(op, GetOp):
                    record = self._namespaces.get(op.namespace, {}).get(op.key)
                    results.append(None if record is None else _item(op.namespace, op.key, record))
                elif isinstance(op, SearchOp):
                    results.append(self._search(op, embedded.queries.get(op.query or "")))
                elif isinstance(op, ListNamespacesOp):
                    results.append(page_of_namespaces(
                        [ns for ns, records in self._namespaces.items() if records],
                        op.match_conditions, op.max_depth, op.offset, op.limit,
                    ))
                else:
                    results.append(None)
            now = datetime.now(UTC)
            for (namespace, key), (_, text) in plan.puts.items():
                records = self._namespaces.get(namespace)
                if text is None:
                    if records is not None:
                        records.pop(key, None)
                    continue
                if records is None:
                    records = self._namespaces[namespace] = {}
                old = records.get(key)
                records[key] = _Record(
                    text, json.loads(text), now if old is None else old.created_at, now,
                    embedded.items.get((namespace, key), []),
                )
            return results

    def _search(self, op: SearchOp, query: list[float] | None) -> list[SearchItem]:
        # Without a query the page ends at offset + limit: stop reading there.
        stop = op.offset + op.limit if query is None else None
        prefix, depth = op.namespace_prefix, len(op.namespace_prefix)
        candidates: list[tuple[tuple[tuple[str, ...], str, _Record], Vectors]] = []
        for namespace, records in self._namespaces.items():
            if namespace[:depth] != prefix:
                continue
            for key, record in records.items():
                if matches_filter(record.value, op.filter):
                    candidates.append(((namespace, key, record), record.vectors))
                    if len(candidates) == stop:
                        break
            if len(candidates) == stop:
                break
        return [
            _search_item(namespace, key, record, score)
            for (namespace, key, record), score in rank(candidates, query, op.offset, op.limit)
        ]


def _item(namespace: tuple[str, ...], key: str, record: _Record) -> Item:
    return Item(value=json.loads(record.text), key=key, namespace=namespace,
                created_at=record.created_at, updated_at=record.updated_at)


def _search_item(
    namespace: tuple[str, ...], key: str, record: _Record, score: float | None
) -> SearchItem:
    return SearchItem(namespace, key, json.loads(record.text), record.created_at,
                      record.updated_at, score)
