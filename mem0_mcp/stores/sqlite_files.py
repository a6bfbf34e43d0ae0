"""Opening the data dir's SQLite files (history and journal, graph log) read-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mem0_mcp.errors import StoreError


def connect_read_only(path: Path, what: str) -> sqlite3.Connection:
    """A read-only connection to ``path`` (``what`` names it in errors). A WAL database needs its
    -shm file, which a read-only filesystem cannot create: then it is opened immutable (no locks;
    nothing else can write it anyway). Raises ``StoreError`` when the file is missing."""
    if not path.exists():
        raise StoreError(f"{what} {path} is missing and the data dir is read-only")
    uri = path.resolve().as_uri()  # quoted: a path may hold '?' or '#'
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error:
        conn.close()
    return sqlite3.connect(
        f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None
    )
