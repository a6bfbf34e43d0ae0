"""Audit history of every change, in SQLite (WAL, so several processes can share it).

Rows are never deleted when a memory is: the history outlives the memory.

The same database holds the write-behind journal (``pending_rows``): a new memory's row and
vector, an update's new row or a delete's marker are committed here together with their history
event, in one transaction, and moved into the LanceDB table right after (see
``mem0_mcp.engine.write_behind``). The journal holds at most one entry per memory: the state it
must reach in the table (a change of a journaled memory replaces its entry, with a new seq).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mem0_mcp.errors import StoreError
from mem0_mcp.models import HistoryEntry
from mem0_mcp.stores.sqlite_files import connect_read_only

_DISK_FULL = "; the disk of the data dir is full: free space and repeat the call"

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
    """
    CREATE TABLE pending_rows (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        memory_id TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        row TEXT NOT NULL,
        vector BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX pending_rows_hash ON pending_rows(hash);
    """,
    # Who made a change, and the memory as it was before it (what restore puts back).
    """
    ALTER TABLE history ADD COLUMN source TEXT;
    ALTER TABLE history ADD COLUMN snapshot TEXT
    """,
    # Journal rows that could not be moved into the table, kept with why (never dropped).
    """
    CREATE TABLE quarantined_rows (
        seq INTEGER PRIMARY KEY,
        memory_id TEXT NOT NULL,
        hash TEXT,
        row TEXT,
        vector BLOB,
        reason TEXT NOT NULL,
        created_at TEXT,
        quarantined_at TEXT NOT NULL
    )
    """,
    # What a journal entry does to the table: 'add' (append), 'update' (rewrite the row by id; an
    # empty vector keeps the stored one), 'delete' (its row is the memory as it was); and the
    # seq of the entry it replaced first (NULL: its own), where it stands in the journal's order.
    """
    ALTER TABLE pending_rows ADD COLUMN op TEXT NOT NULL DEFAULT 'add';
    ALTER TABLE pending_rows ADD COLUMN first_seq INTEGER
    """,
)
QUARANTINE = "quarantined_rows"

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
    "source",
)
# Not part of HistoryEntry: read by latest_change alone.
SNAPSHOT = "snapshot"


@dataclass(frozen=True)
class PendingRow:
    """A journaled memory row on its way to the LanceDB table."""

    seq: int
    row: dict[str, Any]
    vector: np.ndarray  # empty: an update that keeps the stored vector, or a delete
    # Moves started for it: past 0, a crash may have left it in the table already.
    attempts: int
    op: str = "add"


@dataclass(frozen=True)
class JournalChange:
    """An update (the row as it is to be; ``vector`` None keeps the stored one) or a delete
    (the row as it was) to journal."""

    op: str
    row: Mapping[str, Any]
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class JournalProblem:
    """A journal row that cannot be moved into the memory table, and why."""

    seq: int
    memory_id: str
    reason: str


@dataclass(frozen=True)
class QuarantinedRow:
    """A journal row set aside: its stored text (``row``, JSON) and vector, as they were."""

    seq: int
    memory_id: str
    row: str | None
    vector: bytes | None
    reason: str


# Why a journal row cannot be replayed (NULL: it can); ?1 is the table's dimension (or NULL).
_UNREPLAYABLE = """
    SELECT seq, memory_id, CASE
        WHEN op NOT IN ('add', 'update', 'delete') THEN 'its operation is not add, update or delete'
        WHEN op = 'delete' AND json_valid(row) AND json_type(row, '$.id') IS 'text' THEN NULL
        WHEN op = 'update' AND vector IS NOT NULL AND length(vector) = 0 AND json_valid(row)
            AND json_type(row, '$.id') IS 'text' AND json_type(row, '$.memory') IS 'text'
            AND json_type(row, '$.hash') IS 'text' AND json_type(row, '$.search_text') IS 'text'
            THEN NULL
        WHEN row IS NULL OR NOT json_valid(row) THEN 'its row is not valid JSON'
        WHEN json_type(row) != 'object' THEN 'its row is not a JSON object'
        WHEN json_type(row, '$.id') IS NOT 'text' OR json_type(row, '$.memory') IS NOT 'text'
            OR json_type(row, '$.hash') IS NOT 'text' OR json_type(row, '$.search_text') IS NOT 'text'
            THEN 'its row lacks one of id, memory, hash, search_text'
        WHEN vector IS NULL OR length(vector) = 0 OR length(vector) % 4 != 0
            THEN 'its vector is not an array of float32'
        WHEN ?1 IS NOT NULL AND length(vector) != 4 * ?1
            THEN 'its vector has ' || (length(vector) / 4) || ' dimensions, the memory table ' || ?1
    END AS reason
    FROM pending_rows
"""


class HistoryStore:
    """``read_only``: open a database on a filesystem that cannot be written (nothing is created,
    migrated or written; every write raises StoreError)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        # What a journal read selects (a read-only database of an older schema has no op column).
        self._entry = _ENTRY
        if read_only:
            self._conn = connect_read_only(path, "the history database")
            if self.schema_version < len(MIGRATIONS):
                self._entry = _ENTRY.replace(", op", ", 'add'")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; BEGIN IMMEDIATE takes SQLite's write lock up front, so two
        processes never both start one from the same state (migrations, journal moves)."""
        if self.read_only:
            raise StoreError(f"the history database {self.path} is read-only: nothing was stored")
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    # SQLite may have rolled back already (a full disk): then ROLLBACK fails with
                    # "no transaction is active" and would hide the real error.
                    if self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(
                    f"the history database {self.path} could not be written: {exc}; nothing of this "
                    "change was stored" + (_DISK_FULL if "full" in str(exc) else "")
                ) from exc

    def _migrate(self) -> None:
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def add(
        self,
        entries: Iterable[Mapping[str, Any]],
        *,
        pending: Sequence[tuple[Mapping[str, Any], np.ndarray]] = (),
        now: str = "",
    ) -> dict[str, int]:
        """Record events; ``pending`` (row, vector) pairs join the journal in the same transaction.
        Returns memory id -> journal seq of each pending row (for the copy that stages them)."""
        entries = list(entries)
        journal = [
            (
                row["id"],
                row["hash"],
                json.dumps(row, separators=(",", ":")),
                np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
                now,
            )
            for row, vector in pending
        ]
        if not entries and not journal:
            return {}
        seqs: dict[str, int] = {}
        with self._transaction() as conn:
            for values in journal:
                # The seq is the row id of the insert: reading the entries again after the commit
                # cost an add ~0.03 ms (and parsed their rows and vectors).
                seq = conn.execute(
                    "INSERT INTO pending_rows (memory_id, hash, row, vector, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    values,
                ).lastrowid
                assert seq is not None  # seq is the table's INTEGER PRIMARY KEY: the row id
                seqs[values[0]] = seq
            self._insert_history(conn, entries)
        return seqs

    @staticmethod
    def _insert_history(conn: sqlite3.Connection, entries: Iterable[Mapping[str, Any]]) -> None:
        rows = [
            (
                *(e.get(c) if c != "is_deleted" else int(bool(e.get(c))) for c in COLUMNS),
                json.dumps(e[SNAPSHOT], separators=(",", ":"), default=str) if e.get(SNAPSHOT) else None,
            )
            for e in entries
        ]
        names = (*COLUMNS, SNAPSHOT)
        sql = f"INSERT INTO history ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        conn.executemany(sql, rows)

    def is_empty(self) -> bool:
        """No event recorded at all (a new store, or a history file deleted or emptied)."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM history LIMIT 1").fetchone() is None

    # --- write-behind journal
    def has_pending(self) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM pending_rows LIMIT 1").fetchone() is not None

    def pending(self, limit: int, *, changes: bool = True) -> list[PendingRow]:
        """The oldest journal entries, every process's (adds alone without ``changes``)."""
        only = "" if changes else "WHERE op = 'add' "
        with self._lock:
            found = self._conn.execute(
                f"SELECT {self._entry} FROM pending_rows {only}ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [_entry(*f) for f in found]

    def pending_ids(self) -> list[str]:
        """The ids of every journaled memory, every process's."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT memory_id FROM pending_rows").fetchall()]

    def pending_seqs(self) -> list[int]:
        """The seq of every journal entry, every process's."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT seq FROM pending_rows").fetchall()]

    def pending_of(self, ids: Sequence[str], *, changes: bool = False) -> list[PendingRow]:
        """The journaled rows of these ids that carry a vector (adds, updates of the text); every
        entry of them with ``changes``."""
        unique = sorted(set(ids))
        found = []
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                found += self._conn.execute(
                    f"SELECT {self._entry} FROM pending_rows WHERE memory_id IN ({marks})", chunk
                ).fetchall()
        entries = [_entry(*f) for f in found]
        return entries if changes else [e for e in entries if e.vector.size]

    def pending_entry(self, memory_id: str) -> PendingRow | None:
        """The journal entry of a memory (its add, update or delete still on the way)."""
        with self._lock:
            found = self._conn.execute(
                f"SELECT {self._entry} FROM pending_rows WHERE memory_id = ?", (memory_id,)
            ).fetchone()
        return _entry(*found) if found else None

    def pending_watermark(self) -> int | None:
        """The newest journaled row's sequence number (None when the journal is empty)."""
        with self._lock:
            found = self._conn.execute("SELECT MAX(seq) FROM pending_rows").fetchone()
        return int(found[0]) if found and found[0] is not None else None

    def has_pending_through(self, seq: int) -> bool:
        """Whether a change journaled at or before ``seq`` is still in the journal (also when a
        later change of the same memory replaced its entry since)."""
        with self._lock:
            found = self._conn.execute(
                "SELECT 1 FROM pending_rows WHERE COALESCE(first_seq, seq) <= ? LIMIT 1", (seq,)
            )
            return found.fetchone() is not None

    def pending_row(self, memory_id: str) -> dict[str, Any] | None:
        """The journaled row of a memory, when its add or update is still in the journal."""
        entry = self.pending_entry(memory_id)
        return entry.row if entry is not None and entry.op != "delete" else None

    def pending_with_hashes(self, hashes: Sequence[str]) -> list[dict[str, Any]]:
        """Journaled rows whose text hash is one of ``hashes`` (for duplicate checks)."""
        unique = sorted(set(hashes))
        if not unique:
            return []
        found: list[dict[str, Any]] = []
        with self._lock:
            # Chunks stay under SQLite's bound-parameter limit.
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                found += [
                    json.loads(r)
                    for (r,) in self._conn.execute(
                        f"SELECT row FROM pending_rows WHERE hash IN ({marks}) AND op != 'delete'", chunk
                    ).fetchall()
                ]
        return found

    def journal_changes(
        self, entries: Iterable[Mapping[str, Any]], changes: Sequence[JournalChange], now: str
    ) -> list[int | None]:
        """Journal updates and deletes with their history events, in one transaction; the seq of
        each change's entry (None: a delete of an add that never reached the table, dropped).

        A change of a journaled memory replaces its entry: an add not yet tried stays an add
        (with the new row), a tried one becomes an update (the mover checks the table for it).
        """
        seqs: list[int | None] = []
        with self._transaction() as conn:
            for change in changes:
                memory_id = change.row["id"]
                old = conn.execute(
                    "SELECT seq, op, attempts, vector, COALESCE(first_seq, seq) FROM pending_rows "
                    "WHERE memory_id = ?",
                    (memory_id,),
                ).fetchone()
                fresh_add = old is not None and old[1] == "add" and old[2] == 0
                if old is not None:
                    conn.execute("DELETE FROM pending_rows WHERE seq = ?", (old[0],))
                if change.op == "delete" and fresh_add:
                    seqs.append(None)
                    continue
                vector = b""
                if change.vector is not None:
                    vector = np.ascontiguousarray(change.vector, dtype=np.float32).tobytes()
                elif change.op == "update" and old is not None:
                    vector = old[3] or b""
                op = "add" if change.op == "update" and fresh_add else change.op
                cur = conn.execute(
                    "INSERT INTO pending_rows (memory_id, hash, row, vector, created_at, op, attempts, "
                    "first_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        memory_id,
                        change.row.get("hash") or "",
                        json.dumps(change.row, separators=(",", ":"), default=str),
                        vector,
                        now,
                        op,
                        old[2] if old is not None and op == "update" else 0,
                        old[4] if old is not None else None,
                    ),
                )
                seqs.append(cur.lastrowid)
            self._insert_history(conn, entries)
        return seqs

    def mark_attempt(self, seqs: Sequence[int]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE pending_rows SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs]
            )

    def drop_pending(self, seqs: Sequence[int]) -> None:
        with self._transaction() as conn:
            conn.executemany("DELETE FROM pending_rows WHERE seq = ?", [(s,) for s in seqs])

    def get(self, memory_id: str) -> list[HistoryEntry]:
        with self._lock:
            cur = self._conn.execute(
                f"SELECT id, {', '.join(COLUMNS)} FROM history WHERE memory_id = ? ORDER BY id", (memory_id,)
            )
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        return [HistoryEntry(**dict(zip(names, row, strict=True))) for row in rows]

    def events(self) -> list[tuple[HistoryEntry, dict[str, Any] | None]]:
        """Every event of every memory, oldest first, each with the row as it was before it
        (what an export carries: deleted memories live only here)."""
        with self._lock:
            cur = self._conn.execute(f"SELECT id, {', '.join(COLUMNS)}, {SNAPSHOT} FROM history ORDER BY id")
            names = [d[0] for d in cur.description]
            found = cur.fetchall()
        out = []
        for row in found:
            values = dict(zip(names, row, strict=True))
            snapshot = values.pop(SNAPSHOT)
            out.append((HistoryEntry(**values), json.loads(snapshot) if snapshot else None))
        return out

    def latest_deletes(self, scope: Mapping[str, str], limit: int) -> list[HistoryEntry]:
        """The DELETE events of a scope's memories whose latest event is that DELETE, newest
        first (a soft delete leaves the row in place: callers drop ids that still have one)."""
        ids = {k: v for k, v in scope.items() if k in ("user_id", "agent_id", "run_id") and v}
        clause = "".join(f" AND h.{k} = ?" for k in ids)
        with self._lock:
            cur = self._conn.execute(
                f"SELECT h.id, {', '.join('h.' + c for c in COLUMNS)} FROM history h "
                f"WHERE h.event = 'DELETE'{clause} AND h.id = "
                "(SELECT MAX(id) FROM history WHERE memory_id = h.memory_id) ORDER BY h.id DESC LIMIT ?",
                (*ids.values(), limit),
            )
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        return [HistoryEntry(**dict(zip(names, row, strict=True))) for row in rows]

    def latest_change(self, memory_id: str) -> tuple[HistoryEntry, dict[str, Any] | None] | None:
        """The newest event of a memory other than its ADD, and the row as it was before it
        (None when the event kept none: a restore that re-created a memory, or history written
        before snapshots were kept)."""
        with self._lock:
            cur = self._conn.execute(
                f"SELECT id, {', '.join(COLUMNS)}, {SNAPSHOT} FROM history "
                "WHERE memory_id = ? AND event != 'ADD' ORDER BY id DESC LIMIT 1",
                (memory_id,),
            )
            names = [d[0] for d in cur.description]
            found = cur.fetchone()
        if found is None:
            return None
        values = dict(zip(names, found, strict=True))
        snapshot = values.pop(SNAPSHOT)
        return HistoryEntry(**values), (json.loads(snapshot) if snapshot else None)

    # --- consistency checks and repairs (engine/checks.py)
    def latest_texts(self) -> dict[str, str | None]:
        """Every memory with history -> the text its newest event left it with (None when that
        event names none: a DELETE, a RESTORE of a delete)."""
        with self._lock:
            found = self._conn.execute(
                "SELECT memory_id, event, new_memory FROM history "
                "WHERE id IN (SELECT MAX(id) FROM history GROUP BY memory_id)"
            ).fetchall()
        telling = ("ADD", "UPDATE", "RESTORE")
        return {m: text if event in telling else None for m, event, text in found}

    def ids_without_history(self, ids: Sequence[str]) -> list[str]:
        """Which of ``ids`` have no event at all."""
        unique = sorted(set(ids))
        known: set[str] = set()
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                known.update(
                    r[0]
                    for r in self._conn.execute(
                        f"SELECT DISTINCT memory_id FROM history WHERE memory_id IN ({marks})", chunk
                    )
                )
        return [i for i in unique if i not in known]

    def unreplayable(self, dimension: int | None) -> list[JournalProblem]:
        """Journal rows that cannot be moved into a table of ``dimension`` (None: not known yet)."""
        query = _UNREPLAYABLE
        if self._entry != _ENTRY:  # an older schema, read-only: every entry is an add
            query = query.replace("FROM pending_rows", "FROM (SELECT *, 'add' AS op FROM pending_rows)")
        with self._lock:
            found = self._conn.execute(
                f"SELECT * FROM ({query}) WHERE reason IS NOT NULL ORDER BY seq", (dimension,)
            ).fetchall()
        return [JournalProblem(seq, memory_id, reason) for seq, memory_id, reason in found]

    def quarantine(self, problems: Sequence[JournalProblem], now: str) -> None:
        """Move journal rows into ``quarantined_rows`` (same database, one transaction), with why."""
        with self._transaction() as conn:
            for p in problems:
                conn.execute(
                    f"INSERT OR REPLACE INTO {QUARANTINE} (seq, memory_id, hash, row, vector, reason, "
                    "created_at, quarantined_at) SELECT seq, memory_id, hash, row, vector, ?, created_at, ? "
                    "FROM pending_rows WHERE seq = ?",
                    (p.reason, now, p.seq),
                )
                conn.execute("DELETE FROM pending_rows WHERE seq = ?", (p.seq,))

    def quarantined(self) -> list[QuarantinedRow]:
        """Every quarantined journal row, oldest first (none in a database of an older schema)."""
        if self.schema_version < 4:  # the migration that made the table
            return []
        with self._lock:
            found = self._conn.execute(
                f"SELECT seq, memory_id, row, vector, reason FROM {QUARANTINE} ORDER BY seq"
            ).fetchall()
        return [QuarantinedRow(*r) for r in found]

    def release_quarantined(self, seqs: Sequence[int]) -> None:
        """Forget quarantined rows the caller has put back or saved elsewhere."""
        with self._transaction() as conn:
            conn.executemany(f"DELETE FROM {QUARANTINE} WHERE seq = ?", [(s,) for s in seqs])

    def pending_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM pending_rows").fetchone()[0])

    def reset(self) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM pending_rows")
            conn.execute("DELETE FROM history")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_ENTRY = "seq, row, vector, attempts, op"


def _entry(seq: int, row: str, vector: bytes | None, attempts: int, op: str) -> PendingRow:
    return PendingRow(seq, json.loads(row), np.frombuffer(vector or b"", dtype=np.float32), attempts, op)
