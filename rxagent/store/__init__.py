"""Long-term memory: a store of JSON-able items kept across threads (``langgraph.store.memory``'s
home).

What an agent remembers beyond one conversation (a user's preferences, facts it learned) lives
in a store, under namespaces such as ``("memories", user_id)``::

    from rxagent.store import InMemoryStore

    store = InMemoryStore()
    store.put(("memories", "user-1"), "food", {"likes": "pizza"})
    store.get(("memories", "user-1"), "food").value  # {'likes': 'pizza'}

A store answers as LangGraph's does (:class:`BaseStore`). ``rxagent.store.sqlite.SqliteStore``
keeps the items in a SQLite file, and ``rxagent.store.conformance`` tests a store of one's own.
"""

from .._exceptions import InvalidNamespaceError, StoreError
from ._base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    NamespacePath,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from ._memory import InMemoryStore

__all__ = [
    "NOT_PROVIDED",
    "BaseStore",
    "GetOp",
    "InMemoryStore",
    "IndexConfig",
    "InvalidNamespaceError",
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
    "StoreError",
    "TTLConfig",
]
