"""Audit history of every change, in SQLite (WAL, so several processes can share it).

Rows are never deleted when a memory is: the history outlives the memory.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mem0_mcp.models import HistoryEntry

# Numbered migrations; the index + 1 is the schema version after it runs.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        memory_id TEXT NOT NULL,
        old_memory TEXT,
        new_memory TEXT,
        event TEXT NOT NULL,
        created_at TEXT NOT NULL,
        actor_id TEXT,
        role TEXT,
        user_id TEXT,
        agent_id TEXT,
        run_id TEXT,
        is_deleted INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX history_memory_id ON history(memory_id, id);
    """,
)

COLUMNS = (
    "memory_id",
    "old_memory",
    "new_memory",
    "event",
    "created_at",
    "actor_id",
    "role",
    "user_id",
    "agent_id",
    "run_id",
    "is_deleted",
)


class HistoryStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            # BEGIN IMMEDIATE: two processes starting at once must not both run a migration.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in filter(str.strip, script.split(";")):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {number}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def add(self, entries: Iterable[dict[str, Any]]) -> None:
        rows = [
            tuple(e.get(c) if c != "is_deleted" else int(bool(e.get(c))) for c in COLUMNS) for e in entries
        ]
        if not rows:
            return
        sql = f"INSERT INTO history ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def get(self, memory_id: str) -> list[HistoryEntry]:
        with self._lock:
            cur = self._conn.execute(
                f"SELECT id, {', '.join(COLUMNS)} FROM history WHERE memory_id = ? ORDER BY id", (memory_id,)
            )
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        return [HistoryEntry(**dict(zip(names, row, strict=True))) for row in rows]

    def reset(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM history")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
