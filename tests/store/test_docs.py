"""docs/store.md: its examples run, and the SQLite tables it draws are the ones stored."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from rxagent.store.sqlite import SqliteStore

DOC = (Path(__file__).resolve().parents[2] / "docs" / "store.md").read_text()


@pytest.mark.parametrize("code", re.findall(r"```python\n(.*?)```", DOC, re.DOTALL))
def test_each_example_runs(code: str) -> None:
    exec(compile(code, "docs/store.md", "exec"), {})


def test_the_sqlite_tables_and_columns_are_the_ones_drawn(tmp_path: Path) -> None:
    (block,) = [b for b in re.findall(r"```text\n(.*?)```", DOC, re.DOTALL) if "rxagent_" in b]
    drawn: dict[str, list[str]] = {}
    for line in block.splitlines():
        table, _, rest = line.partition("  ")
        columns = rest.strip().split("  ")[0]  # what follows two spaces is a comment
        drawn[table.strip()] = [c.strip() for c in columns.split(",") if c.strip()]
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    raw = sqlite3.connect(path)
    try:
        tables = [row[0] for row in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rxagent%'"
            " ORDER BY name"
        )]
        stored = {t: [row[1] for row in raw.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        raw.close()
    assert stored == drawn
