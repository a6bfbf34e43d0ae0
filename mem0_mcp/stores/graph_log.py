"""The entity graph's change log: every graph write as one row of a shared SQLite file.

Kùzu locks its database to one process, and several server processes share a data dir (Claude
Desktop and an IDE each start one). Opening Kùzu per operation under a file lock cost 25-65 ms a
call and left each process blind to the others' writes between opens. So a graph write is first
of all a row here: SQLite serializes writers across processes (``BEGIN IMMEDIATE``), a commit is
as durable as the memories' own write-behind journal (same file settings), and every process
follows the rows it has not seen yet with one indexed query (``since``). Each process keeps the
graph in memory from these rows; Kùzu is materialized from them in the background.

A row is a change that needs no reading to replay (``op`` and a JSON ``body``): the writer has
already decided which ids it touches, so every process that replays the log reaches the same graph.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mem0_mcp.errors import StoreError
from mem0_mcp.stores.sqlite_files import connect_read_only

# Rows read per query while catching up: bounds the memory a long-absent process needs at once.
BATCH = 5000


@dataclass(frozen=True)
class LogRow:
    """One committed graph change: its position in the log, its kind and its content."""

    seq: int
    op: str
    body: dict[str, Any]


class GraphLog:
    """The graph's change log in ``path`` (created on first use).

    ``read_only``: open an existing log without writing (a read-only data dir); ``write`` then
    raises ``StoreError`` with ``refuse`` as its message.
    """

    def __init__(self, path: Path, *, read_only: bool = False, refuse: str | None = None) -> None:
        self.path = path
        self._read_only = read_only
        self._refuse = refuse or f"the graph log {path} is read-only"
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._in_tx = False

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            if self._read_only:
                conn = connect_read_only(self.path, "the graph log")
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self.path), check_same_thread=False, timeout=30.0, isolation_level=None
                )
                conn.execute("PRAGMA journal_mode=WAL")
                # As the history and the memories' journal: a killed process loses no commit.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS ops (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "op TEXT NOT NULL, body TEXT NOT NULL)"
                )
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise StoreError(f"the graph log {self.path} cannot be opened: {exc}") from exc
        self._conn = conn
        return conn

    def exists(self) -> bool:
        """Whether the log file is there (a read-only open of a data dir without one reads nothing)."""
        return self._conn is not None or self.path.exists()

    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction across processes: other writers wait until it ends. The rows ``append``
        adds inside are committed together at the end, or none of them on an exception.
        Raises ``StoreError`` (read-only log, or SQLite failing)."""
        if self._read_only:
            raise StoreError(self._refuse)
        with self._lock:
            if self._in_tx:
                yield  # nested: the outer transaction commits
                return
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"the graph log {self.path} cannot take a write: {exc}") from exc
            self._in_tx = True
            try:
                yield
                conn.execute("COMMIT")
            except BaseException as exc:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"the graph log {self.path}: the write failed: {exc}") from exc
                raise
            finally:
                self._in_tx = False

    @property
    def writing(self) -> bool:
        """Whether a ``write`` transaction is open."""
        return self._in_tx

    def append(self, op: str, body: dict[str, Any]) -> int:
        """Add one change to the transaction ``write`` holds; its seq (final once committed).
        Raises ``StoreError`` outside a transaction or when SQLite fails."""
        if not self._in_tx:
            raise StoreError("graph log: append outside a write transaction")
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        try:
            cur = self._connection().execute("INSERT INTO ops (op, body) VALUES (?, ?)", (op, text))
        except sqlite3.Error as exc:
            raise StoreError(f"the graph log {self.path}: the write failed: {exc}") from exc
        return int(cur.lastrowid or 0)

    def since(self, seq: int, *, limit: int = BATCH) -> list[LogRow]:
        """Committed rows after ``seq``, oldest first, at most ``limit``. Raises ``StoreError``."""
        with self._lock:
            if self._read_only and not self.path.exists():
                return []
            try:
                rows = (
                    self._connection()
                    .execute("SELECT seq, op, body FROM ops WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
                    .fetchall()
                )
            except sqlite3.Error as exc:
                raise StoreError(f"the graph log {self.path} cannot be read: {exc}") from exc
        return [LogRow(int(s), str(op), json.loads(body)) for s, op, body in rows]

    def head(self) -> int:
        """The last committed row's seq (0 when empty). Raises ``StoreError``."""
        with self._lock:
            if self._read_only and not self.path.exists():
                return 0
            try:
                row = self._connection().execute("SELECT max(seq) FROM ops").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"the graph log {self.path} cannot be read: {exc}") from exc
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the connection (reopened on the next call)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def encode_vector(vector: np.ndarray) -> str:
    """An embedding as a log row holds it: its float32 bytes in base64 (a third of JSON numbers)."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> np.ndarray:
    """The float32 embedding ``encode_vector`` wrote."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
