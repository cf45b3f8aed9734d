"""The server's threads: their records (metadata, status, times), and their state as JSON.

A thread's conversation lives in the checkpointer the server gives its agents; this module keeps
what LangGraph's thread API adds around it. :class:`ThreadStore` is the interface;
:class:`MemoryThreadStore` keeps one process's threads; ``_redis.RedisThreadStore`` keeps them in
Redis for many processes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .._thread_views import StateSnapshot

__all__ = [
    "MemoryThreadStore",
    "ThreadRecord",
    "ThreadStatus",
    "ThreadStore",
    "now",
    "state_json",
]

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]


def now() -> str:
    """The time as the reference writes it: ISO 8601 in UTC with the offset."""
    return datetime.now(UTC).isoformat()


@dataclass(slots=True)
class ThreadRecord:
    """One thread, as ``GET /threads/{t}`` describes it (its values are read from the saver)."""

    thread_id: str
    created_at: str
    updated_at: str
    metadata: dict[str, Any] = field(default_factory=dict)
    status: ThreadStatus = "idle"

    def json(self, values: Any = None, interrupts: Any = None) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "state_updated_at": self.updated_at,
            "metadata": self.metadata,
            "status": self.status,
            "config": {},
            "values": values,
            "interrupts": interrupts or {},
        }


class ThreadStore(ABC):
    """Where the server keeps its thread records."""

    @abstractmethod
    async def get(self, thread_id: str) -> ThreadRecord | None:
        """The thread, or ``None``."""

    @abstractmethod
    async def create(self, thread_id: str, metadata: Mapping[str, Any]) -> ThreadRecord:
        """A new thread (the caller checked that it does not exist)."""

    @abstractmethod
    async def search(
        self, metadata: Mapping[str, Any], status: str | None, limit: int, offset: int
    ) -> list[ThreadRecord]:
        """Threads whose metadata has these values, newest first."""

    @abstractmethod
    async def touch(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Change a thread's status or add metadata, and its ``updated_at``."""

    @abstractmethod
    async def delete(self, thread_id: str) -> None:
        """Forget the thread."""


class MemoryThreadStore(ThreadStore):
    """Thread records in this process's memory."""

    def __init__(self) -> None:
        self._threads: dict[str, ThreadRecord] = {}

    async def get(self, thread_id: str) -> ThreadRecord | None:
        return self._threads.get(thread_id)

    async def create(self, thread_id: str, metadata: Mapping[str, Any]) -> ThreadRecord:
        stamp = now()
        record = ThreadRecord(thread_id, stamp, stamp, dict(metadata))
        self._threads[thread_id] = record
        return record

    async def search(
        self, metadata: Mapping[str, Any], status: str | None, limit: int, offset: int
    ) -> list[ThreadRecord]:
        found = [
            record
            for record in self._threads.values()
            if all(record.metadata.get(key) == value for key, value in metadata.items())
            and (status is None or record.status == status)
        ]
        found.sort(key=lambda record: record.created_at, reverse=True)
        return found[offset : offset + limit]

    async def touch(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        record = self._threads.get(thread_id)
        if record is None:
            return
        if status is not None:
            record.status = status
        if metadata:
            record.metadata.update(metadata)
        record.updated_at = now()

    async def delete(self, thread_id: str) -> None:
        self._threads.pop(thread_id, None)


def _checkpoint_json(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable") or {}
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": None,
    }


def state_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """A :class:`StateSnapshot` as LangGraph's ``ThreadState`` JSON (not yet made plain)."""
    return {
        "values": snapshot.values,
        "next": list(snapshot.next),
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "path": list(task.path),
                "error": None if task.error is None else str(task.error),
                "interrupts": list(task.interrupts),
                "checkpoint": None,
                "state": None,
                "result": task.result,
            }
            for task in snapshot.tasks
        ],
        "checkpoint": _checkpoint_json(snapshot.config),
        "metadata": snapshot.metadata,
        "created_at": snapshot.created_at,
        "parent_checkpoint": _checkpoint_json(snapshot.parent_config),
        "interrupts": list(snapshot.interrupts),
    }
