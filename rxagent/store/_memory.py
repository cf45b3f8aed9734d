"""``InMemoryStore``: long-term memory in a dict of this process, for tests and notebooks."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any, NamedTuple

from ._base import (
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
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
    ttl: float | None = None  # minutes
    expires_at: float | None = None  # seconds since the epoch

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    def refreshed(self, now: float) -> _Record:
        if self.ttl is None:
            return self
        return self._replace(expires_at=now + self.ttl * 60)


class InMemoryStore(PlannedStore):
    """Keeps items in memory: gone with the process, shared by whatever holds it.

    Safe to use from several threads. The async methods run in place (nothing here blocks),
    except the embedding calls of an ``index``, which go to a worker thread unless the
    embedder is async.

    Args:
        index: semantic search (see :class:`~rxagent.store.IndexConfig`):
            ``{"dims": 1536, "embed": embeddings, "fields": ["text"]}``.
        ttl: how items expire (see :class:`~rxagent.store.TTLConfig`); items put with a
            ``ttl`` expire without it too. (LangGraph's ``InMemoryStore`` takes no TTLs.)

    Raises:
        UsageError: an ``index`` or ``ttl`` that cannot work.
    """

    def __init__(
        self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None
    ) -> None:
        super().__init__(index, ttl)
        self._lock = threading.Lock()
        # Namespaces in the order they first held an item, kept when emptied so that a search
        # orders them as LangGraph's InMemoryStore does; each namespace's items in the order
        # they were first put (a put replacing an item keeps its place).
        self._namespaces: dict[tuple[str, ...], dict[str, _Record]] = {}

    async def _arun(self, plan: Plan, embedded: Embedded) -> list[Result]:
        return self._run(plan, embedded)  # nothing to wait for

    def _run(self, plan: Plan, embedded: Embedded) -> list[Result]:
        with self._lock:
            when = self._clock()
            now = when.timestamp()
            results: list[Result] = []
            for op in plan.ops:
                if isinstance(op, GetOp):
                    records = self._namespaces.get(op.namespace, {})
                    record = records.get(op.key)
                    if record is None or not record.live(now):
                        results.append(None)
                        continue
                    if op.refresh_ttl:
                        records[op.key] = record.refreshed(now)
                    results.append(_item(op.namespace, op.key, record))
                elif isinstance(op, SearchOp):
                    query = embedded.queries.get(op.query or "")
                    results.append(self._search(op, query, now))
                elif isinstance(op, ListNamespacesOp):
                    results.append(page_of_namespaces(
                        [ns for ns, records in self._namespaces.items()
                         if any(record.live(now) for record in records.values())],
                        op.match_conditions, op.max_depth, op.offset, op.limit,
                    ))
                else:
                    results.append(None)
            for (namespace, key), (op, text) in plan.puts.items():
                self._write(namespace, key, op.ttl, text, embedded, when)
            if plan.puts and self._sweep_due(now):
                self._sweep(now)
            return results

    def _write(
        self, namespace: tuple[str, ...], key: str, ttl: float | None, text: str | None,
        embedded: Embedded, when: datetime,
    ) -> None:
        records = self._namespaces.get(namespace)
        if text is None:
            if records is not None:
                records.pop(key, None)
            return
        if records is None:
            records = self._namespaces[namespace] = {}
        now = when.timestamp()
        old = records.get(key)
        if old is not None and not old.live(now):
            del records[key]  # an expired item is gone: this one is new, and goes last
            old = None
        records[key] = _Record(
            text, json.loads(text), when if old is None else old.created_at, when,
            embedded.items.get((namespace, key), []),
            ttl, None if ttl is None else now + ttl * 60,
        )

    def sweep_ttl(self) -> int:
        with self._lock:
            return self._sweep(self._clock().timestamp())

    def _sweep(self, now: float) -> int:
        swept = 0
        for records in self._namespaces.values():
            expired = [key for key, record in records.items() if not record.live(now)]
            for key in expired:
                del records[key]
            swept += len(expired)
        return swept

    def _search(self, op: SearchOp, query: list[float] | None, now: float) -> list[SearchItem]:
        # Without a query the page ends at offset + limit: stop reading there.
        stop = op.offset + op.limit if query is None else None
        prefix, depth = op.namespace_prefix, len(op.namespace_prefix)
        candidates: list[tuple[tuple[tuple[str, ...], str, _Record], Vectors]] = []
        for namespace, records in self._namespaces.items():
            if namespace[:depth] != prefix:
                continue
            for key, record in records.items():
                if record.live(now) and matches_filter(record.value, op.filter):
                    candidates.append(((namespace, key, record), record.vectors))
                    if len(candidates) == stop:
                        break
            if len(candidates) == stop:
                break
        found = rank(candidates, query, op.offset, op.limit)
        if op.refresh_ttl:
            for (namespace, key, record), _ in found:
                self._namespaces[namespace][key] = record.refreshed(now)
        return [_search_item(namespace, key, record, score)
                for (namespace, key, record), score in found]


def _item(namespace: tuple[str, ...], key: str, record: _Record) -> Item:
    return Item(value=json.loads(record.text), key=key, namespace=namespace,
                created_at=record.created_at, updated_at=record.updated_at)


def _search_item(
    namespace: tuple[str, ...], key: str, record: _Record, score: float | None
) -> SearchItem:
    return SearchItem(namespace, key, json.loads(record.text), record.created_at,
                      record.updated_at, score)
