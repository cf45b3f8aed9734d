"""SqliteSaver on a real file: the conformance suite, and what only a file can show."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxagent import CheckpointError, UsageError
from rxagent.checkpoint import PendingWrite
from rxagent.checkpoint.conformance import SaverConformance, make_checkpoint
from rxagent.checkpoint.sqlite import SqliteSaver


class TestSqliteSaver(SaverConformance):
    @pytest.fixture
    def saver(self, tmp_path: Path) -> Iterator[SqliteSaver]:
        with SqliteSaver(tmp_path / "checkpoints.db") as saver:
            yield saver


class TestSqliteSaverInMemory(SaverConformance):
    """``":memory:"``: one database as long as the saver, shared by the threads that use it."""

    @pytest.fixture
    def saver(self) -> Iterator[SqliteSaver]:
        with SqliteSaver(":memory:") as saver:
            yield saver


def test_a_reopened_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    with SqliteSaver(path) as saver:
        first = make_checkpoint(state={"messages": ["hi"]})
        second = make_checkpoint(parent_id=first.checkpoint_id, state={"messages": ["ho"]})
        child = make_checkpoint(checkpoint_ns="child")
        for checkpoint in (first, second, child):
            saver.put(checkpoint)
        saver.put_writes("thread-1", "", second.checkpoint_id, "t", [("c", {"v": 1})])
    with SqliteSaver.from_conn_string(str(path)) as reopened:
        assert [item.checkpoint for item in reopened.list("thread-1")] == [second, first]
        got = reopened.get("thread-1")
        assert got is not None
        assert got.pending_writes == (PendingWrite("t", "c", {"v": 1}),)
        child_got = reopened.get("thread-1", "child")
        assert child_got is not None and child_got.checkpoint == child


def test_values_are_stored_as_json_text_in_a_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    with SqliteSaver(path) as saver:
        checkpoint = make_checkpoint(state={"messages": ["é"]}, metadata={"step": 1})
        saver.put(checkpoint)
        saver.put_writes("thread-1", "", checkpoint.checkpoint_id, "t", [("c", [1])])
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        state, metadata = raw.execute("SELECT state, metadata FROM rxagent_checkpoints").fetchone()
        assert (json.loads(state), json.loads(metadata)) == ({"messages": ["é"]}, {"step": 1})
        (value,) = raw.execute("SELECT value FROM rxagent_writes").fetchone()
        assert json.loads(value) == [1]
    finally:
        raw.close()


def test_a_file_of_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    with SqliteSaver(path) as saver:
        saver.put(make_checkpoint())
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE rxagent_meta SET value = '2' WHERE key = 'schema_version'")
    raw.close()
    with pytest.raises(CheckpointError, match=r"schema version 2.*upgrade rxagent"):
        SqliteSaver(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT value FROM rxagent_meta").fetchall() == [("2",)]
        assert raw.execute("SELECT count(*) FROM rxagent_checkpoints").fetchone() == (1,)
    finally:
        raw.close()


def test_a_file_that_is_no_database_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100)
    with pytest.raises(CheckpointError, match=r"notes\.txt"):
        SqliteSaver(path)


def test_a_closed_saver_says_so(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "threads.db")) as saver:
        pass
    saver.close()  # closing again is fine
    with pytest.raises(UsageError, match="closed"):
        saver.get("thread-1")


def test_lookups_walk_an_index_instead_of_scanning_a_table(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "threads.db") as saver:
        chain = [make_checkpoint(metadata={"source": "loop", "step": n}) for n in range(3)]
        for checkpoint in chain:
            saver.put(checkpoint)
            saver.put_writes("thread-1", "", checkpoint.checkpoint_id, "t", [("c", 1)])
        statements: list[str] = []
        connection = saver._connection
        assert connection is not None
        connection.set_trace_callback(statements.append)
        saver.get("thread-1")
        saver.get("thread-1", "", chain[0].checkpoint_id)
        list(saver.list("thread-1", before=chain[2].checkpoint_id, limit=1))
        list(saver.list("thread-1", filter={"source": "loop"}))
        saver.put_writes("thread-1", "", chain[1].checkpoint_id, "u", [("c", 2)])
        connection.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) >= 10
        for statement in selects:
            plan = " ".join(
                row[-1] for row in connection.execute("EXPLAIN QUERY PLAN " + statement)
            )
            assert plan.startswith("SEARCH") and "USING INDEX" in plan, (statement, plan)
            assert "SCAN" not in plan, (statement, plan)
            assert "TEMP B-TREE" not in plan or "rxagent_writes" in statement, (statement, plan)


_WRITER = """
import sys
import threading
from rxagent.checkpoint.conformance import make_checkpoint
from rxagent.checkpoint.sqlite import SqliteSaver

path, name, shared_id = sys.argv[1:]
with SqliteSaver(path) as saver:
    for n in range(40):
        saver.put(make_checkpoint("shared", metadata={"writer": name, "n": n}))
        saver.put(make_checkpoint(name, metadata={"n": n}))
        saver.put_writes("shared", "", shared_id, f"{name}-{n}", [("c", n)])
"""


def test_several_processes_write_one_file(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    shared = make_checkpoint("shared")
    with SqliteSaver(path) as saver:
        saver.put(shared)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), name, shared.checkpoint_id]
        )
        for name in ("one", "two", "three")
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    with SqliteSaver(path) as saver:
        assert len(list(saver.list("shared"))) == 1 + 3 * 40
        for name in ("one", "two", "three"):
            assert len(list(saver.list("shared", filter={"writer": name}))) == 40
            assert len(list(saver.list(name))) == 40
        got = saver.get("shared", "", shared.checkpoint_id)
        assert got is not None and len(got.pending_writes) == 3 * 40
        for name in ("one", "two", "three"):  # each writer's tasks in the order it wrote them
            mine = [w.value for w in got.pending_writes if w.task_id.startswith(f"{name}-")]
            assert mine == list(range(40))


def test_a_connection_of_ones_own_is_used_and_left_open(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "threads.db", check_same_thread=False)
    with SqliteSaver(connection) as saver:
        checkpoint = make_checkpoint()
        saver.put(checkpoint)
        saver.put_writes("thread-1", "", checkpoint.checkpoint_id, "t", [("c", 1)])
        got = saver.get("thread-1")
        assert got is not None and got.checkpoint == checkpoint
    assert connection.execute("SELECT count(*) FROM rxagent_checkpoints").fetchone() == (1,)
    connection.close()
    with SqliteSaver(tmp_path / "threads.db") as reopened:
        assert reopened.get("thread-1") == got


_OPENER = """
import sys
import threading
from rxagent.checkpoint.conformance import make_checkpoint
from rxagent.checkpoint.sqlite import SqliteSaver

with SqliteSaver(sys.argv[1]) as saver:
    for n in range(10):
        saver.put(make_checkpoint(sys.argv[2]))
"""


def test_several_processes_can_set_up_a_new_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    openers = [
        subprocess.Popen([sys.executable, "-c", _OPENER, str(path), f"thread-{n}"])
        for n in range(6)
    ]
    assert [opener.wait(timeout=120) for opener in openers] == [0] * 6
    with SqliteSaver(path) as saver:
        assert [len(list(saver.list(f"thread-{n}"))) for n in range(6)] == [10] * 6


def test_a_batch_is_one_transaction_stored_whole_or_not_at_all(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver, SqliteSaver(tmp_path / "t.db") as other:
        first, second = make_checkpoint(), make_checkpoint()
        with saver.batch():
            saver.put(first)
            saver.put_writes("thread-1", "", first.checkpoint_id, "task", [("messages", [1])])
            # Not committed yet: another connection does not see it.
            assert other.get("thread-1") is None
        assert other.get("thread-1", checkpoint_id=first.checkpoint_id) is not None
        with pytest.raises(RuntimeError, match="halfway"), saver.batch():
            saver.put(second)
            raise RuntimeError("halfway")
        assert other.get("thread-1", checkpoint_id=second.checkpoint_id) is None
        # The saver goes on working after a rolled-back batch.
        saver.put(second)
        assert other.get("thread-1", checkpoint_id=second.checkpoint_id) is not None


# -- the write mark: what a run trusts to start without reading ------------------------------


def _mark(saver: SqliteSaver, thread_id: str = "thread-1") -> tuple[int, int]:
    mark = saver._write_mark(thread_id)
    assert mark is not None
    return mark


def test_the_write_mark_counts_the_savers_own_writes_per_thread(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver:
        epoch, writes = _mark(saver)
        checkpoint = make_checkpoint()
        saver.put(checkpoint)
        saver.put_writes("thread-1", "", checkpoint.checkpoint_id, "task", [("c", 1)])
        saver.put(make_checkpoint("thread-2"))  # another thread's: not counted for thread-1
        assert _mark(saver) == (epoch, writes + 2)
        with saver.batch():
            saver.put(make_checkpoint())
        saver.delete_thread("thread-1")
        assert _mark(saver) == (epoch, writes + 4)
        saver.get("thread-1")
        list(saver.list("thread-1"))
        assert _mark(saver) == (epoch, writes + 4)  # reads are not writes


def test_another_connections_write_moves_the_write_marks_epoch(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver, SqliteSaver(tmp_path / "t.db") as other:
        before = _mark(saver)
        other.put(make_checkpoint("elsewhere"))  # even to another thread: the file changed
        after = _mark(saver)
        assert after[0] != before[0]
        assert _mark(saver) == after  # and stays put while nothing else happens
        raw = sqlite3.connect(tmp_path / "t.db")
        raw.execute("DELETE FROM rxagent_writes")
        raw.commit()
        raw.close()
        assert _mark(saver)[0] != after[0]


_ONE_PUT = """
import sys
import threading
from rxagent.checkpoint.conformance import make_checkpoint
from rxagent.checkpoint.sqlite import SqliteSaver

with SqliteSaver(sys.argv[1]) as saver:
    saver.put(make_checkpoint("thread-1"))
"""


def test_another_processs_write_moves_the_write_marks_epoch(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver:
        saver.put(make_checkpoint())
        before = _mark(saver)
        subprocess.run([sys.executable, "-c", _ONE_PUT, str(tmp_path / "t.db")], check=True)
        assert _mark(saver)[0] != before[0]


def test_a_rolled_back_batch_moves_the_write_marks_epoch(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver:
        before = _mark(saver)
        with pytest.raises(RuntimeError, match="halfway"), saver.batch():
            saver.put(make_checkpoint())  # counted, then undone
            raise RuntimeError("halfway")
        assert _mark(saver)[0] != before[0]


def test_writes_on_a_given_connection_outside_the_saver_move_the_epoch(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "t.db", check_same_thread=False)
    with SqliteSaver(connection) as saver:
        saver.put(make_checkpoint())
        before = _mark(saver)
        connection.execute("DELETE FROM rxagent_checkpoints")  # not another connection
        connection.commit()
        assert _mark(saver)[0] != before[0]
    connection.close()


def test_the_write_mark_never_waits_and_leaves_the_busy_timeout_alone(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db", busy_timeout=12.5) as saver:
        assert saver._connection is not None
        _mark(saver)
        assert saver._connection.execute("PRAGMA busy_timeout").fetchone() == (12500,)
        taken = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with saver.batch():  # holds the saver's lock, as its writer thread does
                taken.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert taken.wait(10)
            assert saver._write_mark("thread-1") is None  # rather than wait for the lock
        finally:
            release.set()
            holder.join()
        saver.close()
        assert saver._write_mark("thread-1") is None


def _plans(connection: sqlite3.Connection, statements: list[str]) -> list[tuple[str, str]]:
    return [
        (statement, " ".join(row[-1] for row in
                             connection.execute("EXPLAIN QUERY PLAN " + statement)))
        for statement in statements
        if statement.lstrip().upper().startswith(("SELECT", "DELETE"))
    ]


def _put_run(saver: SqliteSaver, run_id: str, thread_id: str, count: int) -> None:
    for n in range(count):
        checkpoint = make_checkpoint(thread_id, metadata={"run_id": run_id, "step": n})
        saver.put(checkpoint)
        saver.put_writes(thread_id, "", checkpoint.checkpoint_id, "t", [("c", n)])


def test_delete_for_runs_walks_the_run_index(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "threads.db") as saver:
        for run in range(20):
            _put_run(saver, f"run-{run}", f"thread-{run % 3}", 3)
        connection = saver._connection
        assert connection is not None
        statements: list[str] = []
        connection.set_trace_callback(statements.append)
        saver.delete_for_runs(["run-4"])
        connection.set_trace_callback(None)
        plans = _plans(connection, statements)
        assert plans
        for statement, plan in plans:
            assert "USING INDEX" in plan and "SCAN" not in plan, (statement, plan)
        assert any("rxagent_checkpoints_run" in plan for _, plan in plans)
        assert [c.checkpoint.metadata["run_id"] for c in saver.list("thread-1")] == [
            f"run-{run}" for run in (19, 16, 13, 10, 7, 1) for _ in range(3)]


def test_a_file_made_before_the_run_index_gets_it_and_still_opens_in_an_older_rxagent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "threads.db"
    with SqliteSaver(path) as saver:
        _put_run(saver, "before", "thread-1", 2)
        _put_run(saver, "rolled", "thread-1", 2)
    # The file as the previous schema left it: the same tables, no run index.
    with sqlite3.connect(path) as old:
        old.execute("DROP INDEX rxagent_checkpoints_run")
        assert old.execute("SELECT value FROM rxagent_meta WHERE key = 'schema_version'"
                           ).fetchone() == ("1",)
    with SqliteSaver(path) as saver:
        connection = saver._connection
        assert connection is not None
        assert connection.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                                  ("rxagent_checkpoints_run",)).fetchone() is not None
        saver.delete_for_runs(["rolled"])
        kept = [c.checkpoint.metadata["run_id"] for c in saver.list("thread-1")]
        assert kept == ["before", "before"]
        got = saver.get("thread-1")
        assert got is not None and got.pending_writes == (PendingWrite("t", "c", 1),)
    with sqlite3.connect(path) as after:
        # Still version 1: an older rxagent, which refuses newer versions, opens it.
        assert after.execute("SELECT value FROM rxagent_meta WHERE key = 'schema_version'"
                             ).fetchone() == ("1",)
        # And its writes, which know nothing of the index, keep it up to date.
        after.execute(
            "INSERT INTO rxagent_checkpoints VALUES ('thread-2', '', 'x', NULL, 'now', '{}',"
            " '{\"run_id\": \"old-writer\"}')")
        assert after.execute(
            "SELECT thread_id FROM rxagent_checkpoints INDEXED BY rxagent_checkpoints_run"
            " WHERE json_extract(metadata, '$.run_id') = 'old-writer'").fetchall() == [
                ("thread-2",)]
