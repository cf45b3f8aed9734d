"""Checkpoint savers: where an agent keeps its threads (``langgraph.checkpoint.memory``'s home).

``create_agent(..., checkpointer=InMemorySaver())`` and a ``thread_id`` in the run's config
make a conversation: each run starts from the thread's latest state::

    from rxagent.checkpoint import InMemorySaver

A saver stores records and nothing else (:class:`BaseCheckpointSaver`).
``rxagent.checkpoint.sqlite.SqliteSaver`` keeps them in a SQLite file,
``rxagent.checkpoint.redis.RedisSaver`` in Redis for many processes, and
``rxagent.checkpoint.conformance`` tests a saver of one's own.
"""

from ._base import BaseCheckpointSaver, Checkpoint, CheckpointTuple, PendingWrite
from ._memory import InMemorySaver

MemorySaver = InMemorySaver  # LangGraph's older name for it

__all__ = [
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointTuple",
    "InMemorySaver",
    "MemorySaver",
    "PendingWrite",
]
