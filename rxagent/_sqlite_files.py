"""What rxagent's SQLite savers and stores share: opening the file, and setting it up.

A file is opened in autocommit mode (each call opens its own transaction), in WAL mode with
``synchronous=NORMAL`` (a killed process loses nothing; a power cut may lose the last commits),
and its tables are made, or its schema version checked, in one ``BEGIN IMMEDIATE``
transaction, so that of several processes opening a new file one sets it up and the others
wait. A saver and a store may share a file: each keeps its own version key in ``rxagent_meta``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

__all__ = ["connect", "set_up", "where"]

Source = str | os.PathLike[str] | sqlite3.Connection
"""A file's path, or a connection given (LangChain's form, made with
``check_same_thread=False``), which stays its owner's, with its own timeout."""


def where(source: Source) -> str:
    """How errors name ``source``."""
    if isinstance(source, sqlite3.Connection):
        return "the connection given"
    return repr(os.fspath(source))


def connect(source: Source, busy_timeout: float) -> sqlite3.Connection:
    """The connection to use: the one given, or a new one on the file."""
    if isinstance(source, sqlite3.Connection):
        return source
    return sqlite3.connect(
        os.fspath(source), timeout=busy_timeout, isolation_level=None, check_same_thread=False,
    )


def set_up(
    connection: sqlite3.Connection,
    *,
    schema: str,
    version_key: str,
    version: int,
    too_new: Callable[[int], Exception],
) -> None:
    """WAL mode, and ``schema`` (statements separated by ``;``) made once, under
    ``version_key``; a file of a newer version raises ``too_new(its version)``."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("BEGIN IMMEDIATE")  # one process sets up a new file; others wait
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS rxagent_meta (key TEXT PRIMARY KEY, value TEXT)"
        )
        row = connection.execute(
            "SELECT value FROM rxagent_meta WHERE key = ?", (version_key,)
        ).fetchone()
        if row is None:
            # One statement at a time: executescript() would commit the transaction.
            for statement in schema.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(
                "INSERT INTO rxagent_meta VALUES (?, ?)", (version_key, str(version))
            )
        elif int(row[0]) > version:
            raise too_new(int(row[0]))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
