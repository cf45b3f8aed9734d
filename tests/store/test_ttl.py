"""Items with a time to live, on both stores, on a clock the tests move (never a real wait)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rxagent import UsageError
from rxagent.store import GetOp, InMemoryStore, PutOp, SearchOp, TTLConfig
from rxagent.store.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest, clock: Clock, tmp_path: Path) -> Iterator[Any]:
    made: list[Any] = []

    def make(ttl: TTLConfig | None = None) -> Any:
        if request.param == "memory":
            store: Any = InMemoryStore(ttl=ttl)
        else:
            store = SqliteStore(tmp_path / f"s{len(made)}.db", ttl=ttl)
        store._clock = clock
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def keys(items: list[Any]) -> list[str]:
    return [item.key for item in items]


def test_an_item_is_read_until_its_time_is_up(make: Any, clock: Clock) -> None:
    store = make()
    store.put(("m",), "short", {"v": 1}, ttl=1)
    store.put(("m",), "long", {"v": 2}, ttl=10)
    store.put(("n",), "short", {"v": 3}, ttl=1)
    clock.advance(0.99)
    assert store.get(("m",), "short", refresh_ttl=False) is not None
    clock.advance(0.02)
    assert store.get(("m",), "short") is None
    assert keys(store.search(("m",))) == ["long"]
    assert store.list_namespaces() == [("m",)]  # ("n",) holds only an expired item
    clock.advance(10)
    assert store.search(()) == [] and store.list_namespaces() == []


def test_reading_starts_the_time_again_unless_told_not_to(make: Any, clock: Clock) -> None:
    store = make()
    for key in ("got", "found", "not-refreshed", "beyond-the-page"):
        store.put(("m",), key, {"v": key}, ttl=1)
    clock.advance(0.5)
    store.get(("m",), "got")
    store.search(("m",), filter={"v": "found"})
    store.get(("m",), "not-refreshed", refresh_ttl=False)
    store.search(("m",), limit=2, refresh_ttl=False)
    store.search(("m",), limit=2, offset=10)  # reads nothing
    clock.advance(0.75)  # 1.25 minutes after the puts, 0.75 after the reads
    assert keys(store.search(("m",), refresh_ttl=False)) == ["got", "found"]


def test_a_batch_refreshes_what_it_reads_and_its_puts_decide(make: Any, clock: Clock) -> None:
    store = make()
    store.put(("m",), "a", {"v": 1}, ttl=1)
    store.put(("m",), "b", {"v": 1}, ttl=1)
    clock.advance(0.5)
    store.batch([
        GetOp(("m",), "a"), SearchOp(("m",)), PutOp(("m",), "b", {"v": 2}, ttl=None),
    ])
    clock.advance(100)
    assert store.get(("m",), "a") is None
    got = store.get(("m",), "b")
    assert got is not None and got.value == {"v": 2}  # put after the read: kept for ever


def test_the_config_gives_a_default_ttl_and_whether_reads_refresh(
    make: Any, clock: Clock
) -> None:
    store = make({"default_ttl": 1, "refresh_on_read": False})
    store.put(("m",), "default", {"v": 1})
    store.put(("m",), "ever", {"v": 1}, ttl=None)  # None said aloud: kept for ever
    store.put(("m",), "refreshed", {"v": 1})
    clock.advance(0.5)
    store.get(("m",), "default")  # the config says reads do not refresh
    store.get(("m",), "refreshed", refresh_ttl=True)
    clock.advance(0.75)
    assert keys(store.search(("m",))) == ["ever", "refreshed"]


def test_put_again_sets_the_ttl_again(make: Any, clock: Clock) -> None:
    store = make()
    store.put(("m",), "k", {"v": 1}, ttl=1)
    created = store.get(("m",), "k").created_at
    clock.advance(0.5)
    store.put(("m",), "k", {"v": 2}, ttl=None)
    clock.advance(100)
    got = store.get(("m",), "k")
    assert got is not None and got.value == {"v": 2} and got.created_at == created
    store.put(("m",), "k", {"v": 3}, ttl=1)
    clock.advance(2)
    store.put(("m",), "k", {"v": 4})  # after it expired: a new item
    again = store.get(("m",), "k")
    assert again is not None and again.created_at == clock.now


def test_sweep_removes_expired_items_for_good(make: Any, clock: Clock) -> None:
    store = make()
    store.put(("m",), "a", {"v": 1}, ttl=1)
    store.put(("m",), "b", {"v": 1}, ttl=5)
    store.put(("m",), "c", {"v": 1})
    assert store.sweep_ttl() == 0
    clock.advance(2)
    assert store.sweep_ttl() == 1
    clock.advance(10)
    assert store.sweep_ttl() == 1 and store.sweep_ttl() == 0
    assert keys(store.search(("m",))) == ["c"]


@pytest.mark.anyio
async def test_sweep_awaited(make: Any, clock: Clock) -> None:
    store = make()
    await store.aput(("m",), "a", {"v": 1}, ttl=1)
    clock.advance(2)
    assert await store.asweep_ttl() == 1


def test_writes_sweep_every_sweep_interval(clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteStore(path, ttl={"sweep_interval_minutes": 10}) as store:
        store._clock = clock
        store.put(("m",), "first", {"v": 1})  # the first write sweeps (nothing yet)
        store.put(("m",), "a", {"v": 1}, ttl=1)
        clock.advance(5)
        store.put(("m",), "b", {"v": 1})  # 5 minutes since the sweep: none now

        def rows() -> int:
            raw = sqlite3.connect(path)
            try:
                return int(raw.execute("SELECT count(*) FROM rxagent_store_items").fetchone()[0])
            finally:
                raw.close()

        assert rows() == 3
        clock.advance(6)
        store.put(("m",), "c", {"v": 1})
        assert rows() == 3  # "a" swept, "c" added


@pytest.mark.parametrize(
    "ttl",
    [{"default_ttl": 0}, {"default_ttl": "1"}, {"refresh_on_read": 1},
     {"sweep_interval_minutes": -1}, {"unknown": 1}, [("default_ttl", 1)]],
)
def test_a_ttl_config_that_cannot_work_is_refused(ttl: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ttl"):
        InMemoryStore(ttl=ttl)
    with pytest.raises(UsageError, match="ttl"):
        SqliteStore(tmp_path / "s.db", ttl=ttl)
