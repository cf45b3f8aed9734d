"""The promises every checkpoint saver keeps, as a pytest class to subclass.

Every saver rxagent ships passes this suite, and so can one of your own (Postgres, say):
subclass :class:`SaverConformance` in a test module and give it a ``saver`` fixture that
yields a fresh, empty saver for each test::

    import pytest
    from rxagent.checkpoint.conformance import SaverConformance

    class TestPostgresSaver(SaverConformance):
        @pytest.fixture
        def saver(self, postgres_url):
            with PostgresSaver.from_conn_string(postgres_url) as saver:
                yield saver

Each promise is one test, named after what it checks, so a failure says which promise broke.
The async tests run under asyncio and trio (anyio's pytest plugin, which ``anyio`` installs).
"Empty" may mean a prefix or schema that nothing else uses: the suite never looks past the
threads it makes.

This module is the only part of rxagent that imports pytest; import it from tests only.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from .._exceptions import UsageError
from ._base import BaseCheckpointSaver, Checkpoint, CheckpointTuple, PendingWrite, new_checkpoint_id

__all__ = ["SaverConformance", "make_checkpoint"]


def make_checkpoint(
    thread_id: str = "thread-1",
    checkpoint_ns: str = "",
    *,
    checkpoint_id: str | None = None,
    parent_id: str | None = None,
    state: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Checkpoint:
    """A checkpoint for a test: a new id, the time now, and a small state unless given."""
    return Checkpoint(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id or new_checkpoint_id(),
        parent_id=parent_id,
        created_at=datetime.now(UTC).isoformat(),
        state={"messages": ["hi"]} if state is None else state,
        metadata={"source": "loop", "step": 0} if metadata is None else metadata,
    )


def _json(value: Any) -> str:
    """Canonical JSON text: equal only if the values are equal *and* of the same JSON types
    (``1``, ``1.0`` and ``True`` are equal in Python but not here)."""
    return json.dumps(value, sort_keys=True)


def _ids(items: Iterator[CheckpointTuple] | list[CheckpointTuple]) -> list[str]:
    return [item.checkpoint.checkpoint_id for item in items]


def _chain(saver: BaseCheckpointSaver, count: int, **fields: Any) -> list[Checkpoint]:
    """``count`` checkpoints of one thread, each the parent of the next, put oldest first."""
    made: list[Checkpoint] = []
    for step in range(count):
        checkpoint = make_checkpoint(
            parent_id=made[-1].checkpoint_id if made else None,
            metadata={"source": "loop", "step": step},
            **fields,
        )
        saver.put(checkpoint)
        made.append(checkpoint)
    return made


# A state that JSON can carry but a careless store can bend: nesting, unicode past the BMP,
# escapes, a NUL, large and small numbers, and the types Python's == does not tell apart.
_AWKWARD_STATE: dict[str, Any] = {
    "messages": [
        {"type": "human", "content": "héllo wörld ✓ 你好 🦜", "id": "m-1"},
        {"type": "ai", "content": "", "tool_calls": [{"name": "f", "args": {"a": [{"b": None}]}}]},
    ],
    "nested": {"a": {"b": {"c": {"d": [[], {}, [[]], {"": ""}]}}}},
    "escapes": "quote \" backslash \\ newline \n tab \t end",
    "numbers": [0, -1, 2**53 + 1, 2**63 - 1, 1.5, -0.25, 1e300, 1.0],
    "flags": [True, False, None, 1, 0],
    "clé unicode 🔑": "value",
}


class SaverConformance:
    """The conformance suite: subclass it and provide a ``saver`` fixture (see the module's
    docstring). Every test method takes that fixture and nothing else of yours."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    # -- put and get ---------------------------------------------------------------------------

    def test_put_then_get_gives_back_equal_values(self, saver: BaseCheckpointSaver) -> None:
        checkpoint = make_checkpoint(
            state=_AWKWARD_STATE, metadata={"source": "input", "step": -1, "run_id": "r-1"}
        )
        saver.put(checkpoint)
        got = saver.get("thread-1", "", checkpoint.checkpoint_id)
        assert got is not None
        assert got.checkpoint == checkpoint
        assert _json(got.checkpoint.state) == _json(_AWKWARD_STATE)
        assert _json(got.checkpoint.metadata) == _json(checkpoint.metadata)
        assert got.pending_writes == ()

    def test_a_nul_character_in_a_value_comes_back(self, saver: BaseCheckpointSaver) -> None:
        # JSON carries it ("\\u0000"); a store that keeps JSON in a type refusing it does not.
        checkpoint = make_checkpoint(state={"text": "before\x00after"})
        saver.put(checkpoint)
        saver.put_writes("thread-1", "", checkpoint.checkpoint_id, "t", [("c", "a\x00b")])
        got = saver.get("thread-1")
        assert got is not None
        assert got.checkpoint.state == {"text": "before\x00after"}
        assert got.pending_writes == (PendingWrite("t", "c", "a\x00b"),)

    def test_a_large_state_comes_back_whole(self, saver: BaseCheckpointSaver) -> None:
        state = {
            "messages": [{"content": f"message {i} " + "x" * 200} for i in range(5_000)],
            "blob": "é" * 1_000_000,
        }
        checkpoint = make_checkpoint(state=state)
        saver.put(checkpoint)
        got = saver.get("thread-1")
        assert got is not None
        assert got.checkpoint.state == state

    def test_get_without_an_id_gives_the_newest_id_not_the_last_put(
        self, saver: BaseCheckpointSaver
    ) -> None:
        oldest, middle, newest = (make_checkpoint() for _ in range(3))
        # The ids decide, not the times written in the checkpoints.
        newest = dataclasses.replace(newest, created_at="2000-01-01T00:00:00+00:00")
        for checkpoint in (middle, newest, oldest):
            saver.put(checkpoint)
        got = saver.get("thread-1")
        assert got is not None
        assert got.checkpoint.checkpoint_id == newest.checkpoint_id

    def test_get_of_an_unknown_thread_id_or_namespace_is_none(
        self, saver: BaseCheckpointSaver
    ) -> None:
        checkpoint = make_checkpoint()
        saver.put(checkpoint)
        assert saver.get("no-such-thread") is None
        assert saver.get("no-such-thread", "", checkpoint.checkpoint_id) is None
        assert saver.get("thread-1", "", new_checkpoint_id()) is None
        assert saver.get("thread-1", "other-ns") is None
        assert saver.get("thread-1", "other-ns", checkpoint.checkpoint_id) is None

    def test_parent_ids_come_back(self, saver: BaseCheckpointSaver) -> None:
        chain = _chain(saver, 3)
        parents = [
            item.checkpoint.parent_id for item in reversed(list(saver.list("thread-1")))
        ]
        assert parents == [None, chain[0].checkpoint_id, chain[1].checkpoint_id]

    def test_put_of_an_existing_id_replaces_it(self, saver: BaseCheckpointSaver) -> None:
        first = make_checkpoint(state={"v": 1}, metadata={"step": 1})
        saver.put(first)
        again = make_checkpoint(
            checkpoint_id=first.checkpoint_id,
            parent_id="parent",
            state={"w": 2},
            metadata={"step": 2},
        )
        saver.put(again)
        got = saver.get("thread-1", "", first.checkpoint_id)
        assert got is not None
        assert got.checkpoint == again
        assert _ids(saver.list("thread-1")) == [first.checkpoint_id]
        assert list(saver.list("thread-1", filter={"step": 1})) == []

    # -- list ----------------------------------------------------------------------------------

    def test_list_gives_newest_first(self, saver: BaseCheckpointSaver) -> None:
        made = [make_checkpoint() for _ in range(6)]
        made = [  # the ids decide, not the times written in the checkpoints
            dataclasses.replace(c, created_at=f"2000-01-0{7 - n}T00:00:00+00:00")
            for n, c in enumerate(made)
        ]
        for checkpoint in random.Random(7).sample(made, len(made)):
            saver.put(checkpoint)
        listed = list(saver.list("thread-1"))
        assert _ids(listed) == [c.checkpoint_id for c in reversed(made)]
        assert [item.checkpoint for item in listed] == list(reversed(made))

    def test_list_reads_a_long_thread_whole(self, saver: BaseCheckpointSaver) -> None:
        # Long enough to span the pages of a saver that reads a listing a page at a time.
        made = [
            make_checkpoint(state={"n": n}, metadata={"even": n % 2 == 0, "n": n})
            for n in range(450)
        ]
        for checkpoint in made:
            saver.put(checkpoint)
        ids = [c.checkpoint_id for c in reversed(made)]
        assert _ids(saver.list("thread-1")) == ids
        assert _ids(saver.list("thread-1", limit=301)) == ids[:301]
        assert _ids(saver.list("thread-1", before=ids[99])) == ids[100:]
        evens = [c.checkpoint_id for c in reversed(made) if c.metadata["even"]]
        assert _ids(saver.list("thread-1", filter={"even": True})) == evens
        assert _ids(saver.list("thread-1", filter={"even": True}, limit=120)) == evens[:120]

    def test_list_of_an_unknown_thread_is_empty(self, saver: BaseCheckpointSaver) -> None:
        _chain(saver, 2)
        assert list(saver.list("no-such-thread")) == []
        assert list(saver.list("thread-1", "no-such-ns")) == []

    def test_list_before_gives_only_older_ids(self, saver: BaseCheckpointSaver) -> None:
        ids = [c.checkpoint_id for c in _chain(saver, 5)]
        assert _ids(saver.list("thread-1", before=ids[3])) == [ids[2], ids[1], ids[0]]
        assert _ids(saver.list("thread-1", before=ids[0])) == []
        # An id that is not stored still marks a point in time.
        later = new_checkpoint_id()
        assert _ids(saver.list("thread-1", before=later)) == list(reversed(ids))

    def test_list_limit_gives_at_most_that_many_newest(self, saver: BaseCheckpointSaver) -> None:
        ids = [c.checkpoint_id for c in _chain(saver, 5)]
        assert _ids(saver.list("thread-1", limit=2)) == [ids[4], ids[3]]
        assert _ids(saver.list("thread-1", limit=10)) == list(reversed(ids))
        assert _ids(saver.list("thread-1", limit=0)) == []
        assert _ids(saver.list("thread-1", before=ids[3], limit=2)) == [ids[2], ids[1]]

    def test_list_filter_matches_one_metadata_key(self, saver: BaseCheckpointSaver) -> None:
        made = [
            make_checkpoint(metadata={"source": source, "step": step})
            for step, source in enumerate(["input", "loop", "loop", "update", "loop"])
        ]
        for checkpoint in made:
            saver.put(checkpoint)
        loops = [made[4].checkpoint_id, made[2].checkpoint_id, made[1].checkpoint_id]
        assert _ids(saver.list("thread-1", filter={"source": "loop"})) == loops
        assert _ids(saver.list("thread-1", filter={"step": 3})) == [made[3].checkpoint_id]
        assert _ids(saver.list("thread-1", filter={"source": "fork"})) == []
        assert _ids(saver.list("thread-1", filter={"no-such-key": "loop"})) == []
        assert len(list(saver.list("thread-1", filter={}))) == 5

    def test_list_filter_with_several_keys_needs_all_of_them(
        self, saver: BaseCheckpointSaver
    ) -> None:
        made = [
            make_checkpoint(metadata={"source": source, "step": step, "run_id": run})
            for step, (source, run) in enumerate(
                [("input", "a"), ("loop", "a"), ("loop", "b"), ("loop", "a")]
            )
        ]
        for checkpoint in made:
            saver.put(checkpoint)
        both = {"source": "loop", "run_id": "a"}
        assert _ids(saver.list("thread-1", filter=both)) == [
            made[3].checkpoint_id, made[1].checkpoint_id
        ]
        assert _ids(saver.list("thread-1", filter={"source": "input", "run_id": "b"})) == []

    def test_list_limit_counts_after_the_filter(self, saver: BaseCheckpointSaver) -> None:
        made = [
            make_checkpoint(
                metadata={"source": "loop" if step % 2 else "input", "tags": [step % 2]}
            )
            for step in range(6)
        ]
        for checkpoint in made:
            saver.put(checkpoint)
        expected = [made[4].checkpoint_id, made[2].checkpoint_id]
        assert _ids(saver.list("thread-1", filter={"source": "input"}, limit=2)) == expected
        assert _ids(saver.list("thread-1", filter={"tags": [0]}, limit=2)) == expected

    def test_list_filter_compares_json_values_and_tells_null_from_missing(
        self, saver: BaseCheckpointSaver
    ) -> None:
        with_null = make_checkpoint(metadata={"parent": None, "tags": ["a", "b"], 'q"': None})
        without = make_checkpoint(metadata={"tags": ["a"]})
        nested = make_checkpoint(metadata={"writes": {"tools": {"n": 1}}, "a.b": "dotted"})
        for checkpoint in (with_null, without, nested):
            saver.put(checkpoint)
        assert _ids(saver.list("thread-1", filter={"parent": None})) == [
            with_null.checkpoint_id
        ]
        assert _ids(saver.list("thread-1", filter={'q"': None})) == [with_null.checkpoint_id]
        assert _ids(saver.list("thread-1", filter={"tags": ["a", "b"]})) == [
            with_null.checkpoint_id
        ]
        assert _ids(saver.list("thread-1", filter={"writes": {"tools": {"n": 1}}})) == [
            nested.checkpoint_id
        ]
        # A key is a key, never a path into the metadata.
        assert _ids(saver.list("thread-1", filter={"a.b": "dotted"})) == [nested.checkpoint_id]
        assert _ids(saver.list("thread-1", filter={"writes.tools": {"n": 1}})) == []

    def test_list_items_carry_their_pending_writes(self, saver: BaseCheckpointSaver) -> None:
        first, _ = _chain(saver, 2)
        saver.put_writes("thread-1", "", first.checkpoint_id, "task-a", [("tools", {"r": 1})])
        listed = list(saver.list("thread-1"))
        assert [item.pending_writes for item in listed] == [
            (), (PendingWrite("task-a", "tools", {"r": 1}),)
        ]

    def test_a_list_being_read_does_not_hold_up_writers(self, saver: BaseCheckpointSaver) -> None:
        _chain(saver, 3)
        listing = saver.list("thread-1")
        next(listing)
        # A saver that keeps a lock while its iterator is suspended would block this put.
        writer = threading.Thread(target=saver.put, args=(make_checkpoint("thread-2"),))
        writer.start()
        writer.join(timeout=30)
        assert not writer.is_alive(), "put() waited for an unfinished list() iterator"
        assert len(list(listing)) == 2
        assert saver.get("thread-2") is not None

    # -- threads and namespaces ----------------------------------------------------------------

    def test_namespaces_are_kept_apart(self, saver: BaseCheckpointSaver) -> None:
        top = make_checkpoint(state={"where": "top"})
        child = make_checkpoint(checkpoint_ns="child:1", state={"where": "child"})
        saver.put(top)
        saver.put(child)
        saver.put_writes("thread-1", "child:1", child.checkpoint_id, "t", [("c", 1)])
        got_top, got_child = saver.get("thread-1"), saver.get("thread-1", "child:1")
        assert got_top is not None and got_child is not None
        assert got_top.checkpoint == top and got_top.pending_writes == ()
        assert got_child.checkpoint == child and len(got_child.pending_writes) == 1
        assert _ids(saver.list("thread-1")) == [top.checkpoint_id]
        assert _ids(saver.list("thread-1", "child:1")) == [child.checkpoint_id]
        assert saver.get("thread-1", "", child.checkpoint_id) is None

    def test_threads_are_kept_apart(self, saver: BaseCheckpointSaver) -> None:
        one = make_checkpoint("1", state={"who": "1"})
        ten = make_checkpoint("10", state={"who": "10"})
        saver.put(one)
        saver.put(ten)
        got_one, got_ten = saver.get("1"), saver.get("10")
        assert got_one is not None and got_ten is not None
        assert got_one.checkpoint == one and got_ten.checkpoint == ten
        assert _ids(saver.list("1")) == [one.checkpoint_id]
        assert _ids(saver.list("10")) == [ten.checkpoint_id]

    def test_separators_in_thread_ids_and_namespaces_never_mix_them_up(
        self, saver: BaseCheckpointSaver
    ) -> None:
        # Pairs that a store joining names with ":" (or "/", "|", NUL...) would confuse.
        places = [
            ("a", "b:c"), ("a:b", "c"), ("a", ""), ("a:", ""), ("a", ":"), ("", "a"),
            ("a/b", ""), ("a", "/b"), ("a|b", ""), ("a%3Ab", ""), ("a\\", ":"),
            ("{a}", ""), ("a*", ""), ("é", "ns ✓"), ("a}:b", ""), ("a", "b}:"),
        ]
        shared_id = new_checkpoint_id()
        for thread_id, ns in places:
            saver.put(
                make_checkpoint(
                    thread_id, ns, checkpoint_id=shared_id, state={"at": [thread_id, ns]}
                )
            )
            saver.put_writes(thread_id, ns, shared_id, "t", [("at", [thread_id, ns])])
        saver.delete_thread("a")
        for thread_id, ns in places:
            got = saver.get(thread_id, ns)
            if thread_id == "a":
                assert got is None, (thread_id, ns)
                continue
            assert got is not None, (thread_id, ns)
            assert got.checkpoint.state == {"at": [thread_id, ns]}
            assert got.pending_writes == (PendingWrite("t", "at", [thread_id, ns]),)
            assert len(list(saver.list(thread_id, ns))) == 1
        # Checkpoint ids are the caller's strings too: one named like a store's own suffix.
        odd = make_checkpoint("b", "n", checkpoint_id="ids")
        saver.put(odd)
        saver.put(make_checkpoint("b", "n:checkpoint"))
        assert _ids(saver.list("b", "n")) == ["ids"]
        assert len(list(saver.list("b", "n:checkpoint"))) == 1

    # -- pending writes ------------------------------------------------------------------------

    def test_put_writes_keeps_their_order(self, saver: BaseCheckpointSaver) -> None:
        checkpoint = make_checkpoint()
        saver.put(checkpoint)
        cid = checkpoint.checkpoint_id
        saver.put_writes("thread-1", "", cid, "task-b", [("z", 1), ("a", {"x": "é"}), ("m", 3)])
        saver.put_writes("thread-1", "", cid, "task-a", [("tools", [1, 2])])
        got = saver.get("thread-1")
        assert got is not None
        assert got.pending_writes == (
            PendingWrite("task-b", "z", 1),
            PendingWrite("task-b", "a", {"x": "é"}),
            PendingWrite("task-b", "m", 3),
            PendingWrite("task-a", "tools", [1, 2]),
        )

    def test_writing_a_task_again_replaces_its_writes_in_place(
        self, saver: BaseCheckpointSaver
    ) -> None:
        checkpoint = make_checkpoint()
        saver.put(checkpoint)
        cid = checkpoint.checkpoint_id
        saver.put_writes("thread-1", "", cid, "task-1", [("a", 1), ("b", 2), ("c", 3)])
        saver.put_writes("thread-1", "", cid, "task-2", [("d", 4)])
        saver.put_writes("thread-1", "", cid, "task-2", [("d", 4)])
        saver.put_writes("thread-1", "", cid, "task-1", [("e", 5)])
        got = saver.get("thread-1")
        assert got is not None
        # Never doubled, nothing left of the longer first try, and each task where it first was.
        assert got.pending_writes == (
            PendingWrite("task-1", "e", 5), PendingWrite("task-2", "d", 4)
        )

    def test_writes_belong_to_their_checkpoint_only(self, saver: BaseCheckpointSaver) -> None:
        first, second = _chain(saver, 2)
        shared = make_checkpoint("thread-2", checkpoint_id=first.checkpoint_id)
        nested = make_checkpoint(checkpoint_ns="sub", checkpoint_id=first.checkpoint_id)
        saver.put(shared)
        saver.put(nested)
        saver.put_writes("thread-1", "", first.checkpoint_id, "t", [("c", "first")])
        for thread_id, ns, cid in [
            ("thread-1", "", second.checkpoint_id),
            ("thread-2", "", first.checkpoint_id),
            ("thread-1", "sub", first.checkpoint_id),
        ]:
            got = saver.get(thread_id, ns, cid)
            assert got is not None and got.pending_writes == (), (thread_id, ns)
        got = saver.get("thread-1", "", first.checkpoint_id)
        assert got is not None and got.pending_writes == (PendingWrite("t", "c", "first"),)

    # -- delete_thread -------------------------------------------------------------------------

    def test_delete_thread_removes_every_namespace_and_its_writes(
        self, saver: BaseCheckpointSaver
    ) -> None:
        top, child = make_checkpoint(), make_checkpoint(checkpoint_ns="child")
        for checkpoint in (top, child):
            saver.put(checkpoint)
            saver.put_writes("thread-1", checkpoint.checkpoint_ns, checkpoint.checkpoint_id,
                             "t", [("c", 1)])
        saver.delete_thread("thread-1")
        assert saver.get("thread-1") is None
        assert saver.get("thread-1", "child") is None
        assert list(saver.list("thread-1")) == [] and list(saver.list("thread-1", "child")) == []
        # Nothing left behind to come back: the same checkpoint put again has no writes.
        saver.put(top)
        got = saver.get("thread-1")
        assert got is not None and got.pending_writes == ()

    def test_delete_thread_leaves_other_threads_alone(self, saver: BaseCheckpointSaver) -> None:
        kept = {thread_id: make_checkpoint(thread_id) for thread_id in ("10", "1x", "x1", "01")}
        for checkpoint in [*kept.values(), make_checkpoint("1")]:
            saver.put(checkpoint)
            saver.put_writes(checkpoint.thread_id, "", checkpoint.checkpoint_id, "t", [("c", 1)])
        saver.delete_thread("1")
        saver.delete_thread("no-such-thread")
        assert saver.get("1") is None
        for thread_id, checkpoint in kept.items():
            got = saver.get(thread_id)
            assert got is not None and got.checkpoint == checkpoint
            assert got.pending_writes == (PendingWrite("t", "c", 1),)

    def test_delete_thread_removes_what_was_put_before_it_while_writers_go_on(
        self, saver: BaseCheckpointSaver
    ) -> None:
        # Each put goes to a namespace of its own, so whatever was put before a delete_thread
        # began must be gone when it returns, however the writer's puts fall around it.
        finished: list[str] = []

        def write() -> None:
            for n in range(300):
                saver.put(make_checkpoint("busy", f"ns-{n}"))
                finished.append(f"ns-{n}")

        writer = threading.Thread(target=write)
        writer.start()
        try:
            while writer.is_alive():
                put_before = list(finished)
                saver.delete_thread("busy")
                left = [ns for ns in put_before if saver.get("busy", ns) is not None]
                assert left == [], f"delete_thread left {len(left)} namespaces behind"
        finally:
            writer.join()
        saver.delete_thread("busy")
        assert [ns for ns in finished if saver.get("busy", ns) is not None] == []

    # -- delete_for_runs (optional: a saver without it raises UsageError) ----------------------

    def _put_runs(self, saver: BaseCheckpointSaver) -> dict[str, list[Checkpoint]]:
        """Run "before" then run "rolled" on two threads, "rolled" in two namespaces, each
        checkpoint with writes; and "other" on a third thread."""
        made: dict[str, list[Checkpoint]] = {"before": [], "rolled": [], "other": []}
        for run_id, thread_id, ns in [
            ("before", "thread-1", ""), ("before", "thread-1", ""), ("rolled", "thread-1", ""),
            ("rolled", "thread-1", "child"), ("rolled", "thread-2", ""), ("other", "thread-3", ""),
        ]:
            checkpoint = make_checkpoint(thread_id, ns, metadata={"source": "loop", "step": 0,
                                                                  "run_id": run_id})
            saver.put(checkpoint)
            saver.put_writes(thread_id, ns, checkpoint.checkpoint_id, "t", [("c", run_id)])
            made[run_id].append(checkpoint)
        return made

    def _delete_for_runs(self, saver: BaseCheckpointSaver, run_ids: list[str]) -> None:
        try:
            saver.delete_for_runs(run_ids)
        except UsageError:
            pytest.skip(f"{type(saver).__name__} does not offer delete_for_runs")

    def test_delete_for_runs_leaves_the_threads_as_before_the_runs(
        self, saver: BaseCheckpointSaver
    ) -> None:
        made = self._put_runs(saver)
        self._delete_for_runs(saver, ["rolled"])
        before = made["before"]
        got = saver.get("thread-1")
        assert got is not None and got.checkpoint == before[-1]
        assert got.pending_writes == (PendingWrite("t", "c", "before"),)
        assert _ids(saver.list("thread-1")) == [c.checkpoint_id for c in reversed(before)]
        assert saver.get("thread-1", "child") is None and saver.get("thread-2") is None
        assert list(saver.list("thread-1", "child")) == [] and list(saver.list("thread-2")) == []
        got = saver.get("thread-3")
        assert got is not None and got.checkpoint == made["other"][0]
        # Nothing left to come back: a rolled-back checkpoint put again has no writes.
        saver.put(made["rolled"][0])
        again = saver.get("thread-1")
        assert again is not None and again.pending_writes == ()

    def test_delete_for_runs_of_several_or_unknown_runs(self, saver: BaseCheckpointSaver) -> None:
        made = self._put_runs(saver)
        self._delete_for_runs(saver, ["no-such-run", "rolled", "other"])
        assert saver.get("thread-2") is None and saver.get("thread-3") is None
        assert _ids(saver.list("thread-1")) == [c.checkpoint_id for c in reversed(made["before"])]
        saver.delete_for_runs([])

    def test_a_run_goes_on_writing_after_its_checkpoints_were_deleted(
        self, saver: BaseCheckpointSaver
    ) -> None:
        self._put_runs(saver)
        self._delete_for_runs(saver, ["rolled"])
        later = make_checkpoint("thread-2", metadata={"run_id": "rolled"})
        saver.put(later)
        self._delete_for_runs(saver, ["rolled"])
        assert saver.get("thread-2") is None
        saver.delete_thread("thread-1")
        assert saver.get("thread-1") is None

    @pytest.mark.anyio
    async def test_adelete_for_runs_agrees(self, saver: BaseCheckpointSaver) -> None:
        made = self._put_runs(saver)
        try:
            await saver.adelete_for_runs(["rolled"])
        except UsageError:
            pytest.skip(f"{type(saver).__name__} does not offer delete_for_runs")
        got = saver.get("thread-1")
        assert got is not None and got.checkpoint == made["before"][-1]
        assert saver.get("thread-2") is None

    @pytest.mark.anyio
    async def test_delete_for_runs_takes_the_threads_the_runs_wrote_to(
        self, saver: BaseCheckpointSaver
    ) -> None:
        # The server's rollback names the run's thread: a hint, the same result with or
        # without it (a thread not named is still cleared through the saver's own means).
        made = self._put_runs(saver)
        try:
            saver.delete_for_runs(["rolled"], threads=["thread-1", "no-such-thread"])
        except UsageError:
            pytest.skip(f"{type(saver).__name__} does not offer delete_for_runs")
        assert _ids(saver.list("thread-1")) == [c.checkpoint_id for c in reversed(made["before"])]
        assert saver.get("thread-1", "child") is None and saver.get("thread-2") is None
        await saver.adelete_for_runs(["other"], threads=["thread-3"])
        assert saver.get("thread-3") is None

    # -- no aliasing ---------------------------------------------------------------------------

    def test_values_handed_back_are_copies(self, saver: BaseCheckpointSaver) -> None:
        state: dict[str, Any] = {"messages": [{"content": "hi"}], "n": {"k": 1}}
        metadata: dict[str, Any] = {"source": "loop", "writes": {"a": [1]}}
        checkpoint = make_checkpoint(state=state, metadata=metadata)
        saver.put(checkpoint)
        written: dict[str, Any] = {"result": [1]}
        saver.put_writes("thread-1", "", checkpoint.checkpoint_id, "t", [("c", written)])
        # What the caller does to what it put...
        state["messages"].append("added")
        metadata["writes"]["a"].append(2)
        written["result"].append(2)
        # ...and to what it got back reaches nothing stored.
        for got in (saver.get("thread-1"), next(saver.list("thread-1"))):
            assert got is not None
            got.checkpoint.state["messages"][0]["content"] = "changed"
            got.checkpoint.state["n"].clear()
            got.checkpoint.metadata["writes"]["a"].append(3)
            got.pending_writes[0].value["result"].append(3)
        again = saver.get("thread-1")
        assert again is not None
        assert again.checkpoint.state == {"messages": [{"content": "hi"}], "n": {"k": 1}}
        assert again.checkpoint.metadata == {"source": "loop", "writes": {"a": [1]}}
        assert again.pending_writes == (PendingWrite("t", "c", {"result": [1]}),)

    # -- async forms ---------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_async_forms_agree_with_the_sync_ones(self, saver: BaseCheckpointSaver) -> None:
        made: list[Checkpoint] = []
        for step in range(4):
            checkpoint = make_checkpoint(
                parent_id=made[-1].checkpoint_id if made else None,
                metadata={"source": "loop" if step else "input", "step": step},
            )
            await saver.aput(checkpoint)
            made.append(checkpoint)
        await saver.aput(make_checkpoint(checkpoint_ns="child"))
        await saver.aput_writes("thread-1", "", made[1].checkpoint_id, "t", [("c", {"v": 1})])

        assert await saver.aget("thread-1") == saver.get("thread-1")
        got = await saver.aget("thread-1", "", made[1].checkpoint_id)
        assert got == saver.get("thread-1", "", made[1].checkpoint_id)
        assert got is not None and got.pending_writes == (PendingWrite("t", "c", {"v": 1}),)
        assert await saver.aget("no-such-thread") is None
        all_options: list[dict[str, Any]] = [
            {},
            {"before": made[3].checkpoint_id},
            {"limit": 2},
            {"filter": {"source": "loop"}, "limit": 2},
        ]
        for options in all_options:
            listed = [item async for item in saver.alist("thread-1", **options)]
            assert listed == list(saver.list("thread-1", **options)), options
        assert _ids([item async for item in saver.alist("thread-1")]) == [
            c.checkpoint_id for c in reversed(made)
        ]

        await saver.adelete_thread("thread-1")
        assert saver.get("thread-1") is None and saver.get("thread-1", "child") is None
        assert await saver.aget("thread-1") is None

    @pytest.mark.anyio
    async def test_concurrent_async_writers_lose_nothing(self, saver: BaseCheckpointSaver) -> None:
        checkpoint = make_checkpoint()
        await saver.aput(checkpoint)
        async with anyio.create_task_group() as group:
            for n in range(20):
                group.start_soon(
                    saver.aput_writes, "thread-1", "", checkpoint.checkpoint_id, f"task-{n}",
                    [("c", n)],
                )
                group.start_soon(saver.aput, make_checkpoint(f"thread-{n + 2}"))
        got = await saver.aget("thread-1")
        assert got is not None
        assert sorted(w.value for w in got.pending_writes) == list(range(20))
        for n in range(20):
            assert await saver.aget(f"thread-{n + 2}") is not None

    # -- threads of this process ---------------------------------------------------------------

    def test_concurrent_writers_from_several_threads_lose_nothing(
        self, saver: BaseCheckpointSaver
    ) -> None:
        shared = make_checkpoint("shared")
        saver.put(shared)
        workers, rounds = 6, 15
        start = threading.Barrier(workers)
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                start.wait()
                for n in range(rounds):
                    saver.put(make_checkpoint("shared", metadata={"worker": worker, "n": n}))
                    saver.put(make_checkpoint(f"own-{worker}", metadata={"n": n}))
                    saver.put_writes(
                        "shared", "", shared.checkpoint_id, f"task-{worker}-{n}", [("c", n)]
                    )
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(list(saver.list("shared"))) == 1 + workers * rounds
        for worker in range(workers):
            assert len(list(saver.list("shared", filter={"worker": worker}))) == rounds
            assert len(list(saver.list(f"own-{worker}"))) == rounds
        got = saver.get("shared", "", shared.checkpoint_id)
        assert got is not None and len(got.pending_writes) == workers * rounds
