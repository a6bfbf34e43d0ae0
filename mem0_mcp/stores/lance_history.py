"""The history of every change as an append-only Lance table, for a store on object storage.

Every node appends its events (LanceDB commits concurrent appends safely); nothing is updated,
only ``reset`` deletes. Events are ordered by ``seq``: the microsecond of the event shifted left
10 bits plus 10 random bits, increasing within a node, across nodes as their clocks are (a
history is read per memory, whose changes are seconds apart). There is no write-behind journal
here: the engine writes the memory table directly on object storage, so every journal question
is answered "nothing pending".
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from mem0_mcp.errors import StoreError
from mem0_mcp.models import HistoryEntry
from mem0_mcp.stores.filters import sql_str
from mem0_mcp.stores.history import (
    COLUMNS,
    SNAPSHOT,
    JournalChange,
    JournalProblem,
    PendingRow,
    QuarantinedRow,
)
from mem0_mcp.stores.object_store import RemoteStore, create_table_shared, retry_conflicts

TABLE = "history"
# Appends of this node between compactions of the table (each append is a small file of its own,
# and every history read lists them all).
COMPACT_EVERY = 256
_TEXT = [c for c in COLUMNS if c != "is_deleted"]
SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        *(pa.field(c, pa.string(), nullable=c not in ("memory_id", "event", "created_at")) for c in _TEXT),
        pa.field("is_deleted", pa.bool_(), nullable=False),
        pa.field(SNAPSHOT, pa.string(), nullable=True),
    ]
)
_ENTRY_COLUMNS = ["seq", *COLUMNS]
logger = logging.getLogger(__name__)


class NoJournal:
    """The journal questions of ``History``, for a store that writes the table directly."""

    def has_pending(self) -> bool:
        return False

    def pending(self, limit: int, *, changes: bool = True) -> list[PendingRow]:
        return []

    def pending_ids(self) -> list[str]:
        return []

    def pending_seqs(self) -> list[int]:
        return []

    def pending_of(self, ids: Sequence[str], *, changes: bool = False) -> list[PendingRow]:
        return []

    def pending_entry(self, memory_id: str) -> PendingRow | None:
        return None

    def pending_watermark(self) -> int | None:
        return None

    def has_pending_through(self, seq: int) -> bool:
        return False

    def pending_with_hashes(self, hashes: Sequence[str]) -> list[dict[str, Any]]:
        return []

    def pending_count(self) -> int:
        return 0

    def journal_changes(
        self, entries: Iterable[Mapping[str, Any]], changes: Sequence[JournalChange], now: str
    ) -> list[int | None]:
        raise StoreError("this store has no write-behind journal: changes are written to the table")

    def mark_attempt(self, seqs: Sequence[int]) -> None:
        return None

    def drop_pending(self, seqs: Sequence[int]) -> None:
        return None

    def unreplayable(self, dimension: int | None) -> list[JournalProblem]:
        return []

    def quarantine(self, problems: Sequence[JournalProblem], now: str) -> None:
        return None

    def quarantined(self) -> list[QuarantinedRow]:
        return []

    def release_quarantined(self, seqs: Sequence[int]) -> None:
        return None


class LanceHistory(NoJournal):
    """History events in the Lance table ``history`` of a store on object storage (reads see
    other nodes' appends within the store's refresh bound)."""

    def __init__(self, store: RemoteStore) -> None:
        self.shown = shown = store.shown
        self._db = store.connect()
        self._lock = threading.Lock()
        self._last_seq = 0
        self._appends = 0
        self._compacting: threading.Thread | None = None
        try:
            # Nodes starting together on a new store create it at the same moment.
            self._table: Any = create_table_shared(self._db, TABLE, SCHEMA, what="history table")
        except Exception as exc:
            raise StoreError(f"cannot open the history table of {shown}: {exc}") from exc

    def _next_seq(self) -> int:
        with self._lock:
            stamp = (time.time_ns() // 1000) << 10 | random.getrandbits(10)
            self._last_seq = max(stamp, self._last_seq + 1)
            return self._last_seq

    # --- events
    def add(
        self,
        entries: Iterable[Mapping[str, Any]],
        *,
        pending: Sequence[tuple[Mapping[str, Any], np.ndarray]] = (),
        now: str = "",
    ) -> dict[str, int]:
        """Append events (one commit). ``pending`` must be empty: there is no journal here, so
        no journal seqs are returned."""
        if pending:
            raise StoreError("this store has no write-behind journal: rows are written to the table")
        rows = [self._row(e) for e in entries]
        if not rows:
            return {}
        data = pa.Table.from_pylist(rows, schema=SCHEMA)
        try:
            retry_conflicts(lambda: self._table.add(data), what="history append")
        except Exception as exc:
            raise StoreError(
                f"the history table of {self.shown} could not be written: {exc}; nothing of this "
                "change's history was stored"
            ) from exc
        self._appends += 1
        if self._appends >= COMPACT_EVERY:
            self.compact_in_background()
        return {}

    def compact_in_background(self) -> threading.Thread:
        """Merge the table's small files in a thread of its own (never in a caller's write);
        the thread (the one already running, if any). A failure is logged: the next due append
        tries again."""
        with self._lock:
            if self._compacting is not None and self._compacting.is_alive():
                return self._compacting
            self._appends = 0

            def run() -> None:
                try:
                    retry_conflicts(self._table.optimize, what="history compaction")
                except Exception:
                    logger.exception("history compaction on %s failed", self.shown)

            self._compacting = threading.Thread(target=run, name="mem0-history-compact", daemon=True)
            self._compacting.start()
            return self._compacting

    def _row(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {c: entry.get(c) for c in _TEXT}
        row["seq"] = self._next_seq()
        row["is_deleted"] = bool(entry.get("is_deleted"))
        snapshot = entry.get(SNAPSHOT)
        row[SNAPSHOT] = json.dumps(snapshot, separators=(",", ":"), default=str) if snapshot else None
        return row

    def _select(
        self, where: str | None, columns: Sequence[str], limit: int | None = None, *, fresh: bool = False
    ) -> list[dict]:
        """Rows by ``seq``; ``fresh``: from the newest version, not the one read within the
        refresh bound (a read that decides something about a memory another node just wrote:
        its row may already be visible here, through the memory table, before its history is)."""
        if fresh:
            self._table.checkout_latest()
        q = self._table.search().select(list(columns))
        if where:
            q = q.where(where)
        rows = q.limit(None).to_list()
        rows.sort(key=lambda r: r["seq"])
        return rows if limit is None else rows[:limit]

    @staticmethod
    def _entry(row: Mapping[str, Any]) -> HistoryEntry:
        values = {c: row.get(c) for c in COLUMNS}
        return HistoryEntry(id=int(row["seq"]), **values)

    def is_empty(self) -> bool:
        return int(self._table.count_rows()) == 0

    def get(self, memory_id: str) -> list[HistoryEntry]:
        where = f"memory_id = {sql_str(memory_id)}"
        return [self._entry(r) for r in self._select(where, _ENTRY_COLUMNS, fresh=True)]

    def events(self) -> list[tuple[HistoryEntry, dict[str, Any] | None]]:
        """Every event of every memory, oldest first, each with the row as it was before it."""
        return [
            (self._entry(r), json.loads(r[SNAPSHOT]) if r[SNAPSHOT] else None)
            for r in self._select(None, [*_ENTRY_COLUMNS, SNAPSHOT])
        ]

    def latest_deletes(self, scope: Mapping[str, str], limit: int) -> list[HistoryEntry]:
        """The DELETE events of a scope's memories whose latest event is that DELETE, newest first."""
        ids = {k: v for k, v in scope.items() if k in ("user_id", "agent_id", "run_id") and v}
        where = " AND ".join(f"{k} = {sql_str(v)}" for k, v in ids.items())
        clause = "event = 'DELETE'" + (f" AND {where}" if where else "")
        deleted = {r["memory_id"] for r in self._select(clause, ["seq", "memory_id"], fresh=True)}
        if not deleted:
            return []
        latest: dict[str, dict] = {}
        for row in self._select(_in_ids(deleted), _ENTRY_COLUMNS):
            latest[row["memory_id"]] = row  # sorted by seq: the last one wins
        # A memory's scope never changes: its latest event is of the scope too.
        found = [r for r in latest.values() if r["event"] == "DELETE"]
        found.sort(key=lambda r: r["seq"], reverse=True)
        return [self._entry(r) for r in found[:limit]]

    def latest_change(self, memory_id: str) -> tuple[HistoryEntry, dict[str, Any] | None] | None:
        """The newest event of a memory other than its ADD, and the row as it was before it."""
        rows = self._select(
            f"memory_id = {sql_str(memory_id)} AND event != 'ADD'", [*_ENTRY_COLUMNS, SNAPSHOT], fresh=True
        )
        if not rows:
            return None
        newest = rows[-1]
        return self._entry(newest), (json.loads(newest[SNAPSHOT]) if newest[SNAPSHOT] else None)

    def latest_texts(self) -> dict[str, str | None]:
        """Every memory with history -> the text its newest event left it with."""
        latest: dict[str, dict] = {}
        for row in self._select(None, ["seq", "memory_id", "event", "new_memory"]):
            latest[row["memory_id"]] = row
        telling = ("ADD", "UPDATE", "RESTORE")
        return {m: r["new_memory"] if r["event"] in telling else None for m, r in latest.items()}

    def ids_without_history(self, ids: Sequence[str]) -> list[str]:
        """Which of ``ids`` have no event at all."""
        unique = sorted(set(ids))
        known: set[str] = set()
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            known.update(r["memory_id"] for r in self._select(_in_ids(chunk), ["seq", "memory_id"]))
        return [i for i in unique if i not in known]

    def reset(self) -> None:
        retry_conflicts(lambda: self._table.delete("true"), what="history reset")

    def close(self) -> None:
        return None


def _in_ids(ids: Iterable[str]) -> str:
    return f"memory_id IN ({', '.join(sql_str(i) for i in ids)})"
