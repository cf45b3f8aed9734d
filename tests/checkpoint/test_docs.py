"""docs/checkpoints.md draws each saver's storage layout: the drawings match what is stored."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import redis

from rxagent.checkpoint.conformance import make_checkpoint
from rxagent.checkpoint.redis import RedisSaver
from rxagent.checkpoint.sqlite import SqliteSaver

DOC = (Path(__file__).resolve().parents[2] / "docs" / "checkpoints.md").read_text()


def text_blocks() -> list[str]:
    return re.findall(r"```text\n(.*?)```", DOC, re.DOTALL)


def test_the_sqlite_tables_and_columns_are_the_ones_drawn(tmp_path: Path) -> None:
    (block,) = [b for b in text_blocks() if "rxagent_checkpoints" in b]
    drawn: dict[str, list[str]] = {}
    indexes: dict[str, str] = {}  # drawn "name   index on <expression>"
    table = ""
    for line in block.splitlines():
        name, _, rest = line.partition("  ")
        if rest.strip().startswith("index on "):
            indexes[name.strip()] = rest.strip().removeprefix("index on ")
            continue
        if name.strip():
            table = name.strip()
            drawn[table] = []
        columns = rest.strip().split("  ")[0]  # what follows two spaces is a comment
        drawn[table] += [c.strip() for c in columns.split(",") if c.strip()]
    path = tmp_path / "threads.db"
    SqliteSaver(path).close()
    raw = sqlite3.connect(path)
    try:
        tables = [row[0] for row in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )]
        stored = {t: [row[1] for row in raw.execute(f"PRAGMA table_info({t})")] for t in tables}
        made = {name: sql for name, sql in raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    finally:
        raw.close()
    assert stored == drawn
    # The indexes beyond the primary keys: each drawn with the expression it is made on.
    assert sorted(made) == sorted(indexes)
    for name, expression in indexes.items():
        assert made[name].replace(" ", "").endswith(f"({expression})".replace(" ", "")), (
            made[name], expression)


def test_the_redis_keys_are_the_ones_drawn(redis_url: str, redis_client: redis.Redis) -> None:
    (block,) = [b for b in text_blocks() if "{prefix}{thread}" in b]
    drawn = sorted(
        line.split()[0].replace("{prefix}", "rxagent:").replace("{thread}", "{t}")
        .replace("{ns}", "n").replace("{id}", "I").replace("{run}", "R")
        for line in block.splitlines() if line.startswith("{prefix}")
    )
    with RedisSaver(redis_url) as saver:
        saver.put(make_checkpoint("t", "n", checkpoint_id="I", metadata={"run_id": "R"}))
        saver.put_writes("t", "n", "I", "task", [("c", 1)])
    stored = sorted(key.decode() for key in redis_client.keys("*"))
    assert stored == drawn
