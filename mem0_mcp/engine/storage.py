"""The engine's stores under one roof: the memory table, the history and its write-behind journal,
the locks every process takes around them, and background compaction."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from mem0_mcp.clock import now_iso
from mem0_mcp.config import Settings
from mem0_mcp.engine.checks import Finding, check_stores, journal_dimension, log_findings
from mem0_mcp.engine.cross_node import EarlierRows
from mem0_mcp.engine.rows import in_scope
from mem0_mcp.engine.validation import check_memory_id
from mem0_mcp.engine.write_behind import JournalMover, move_journal
from mem0_mcp.errors import NotFoundError, StoreError
from mem0_mcp.models import Scope
from mem0_mcp.stores.dense_cache import DenseCache
from mem0_mcp.stores.filters import compile_filters, scope_clause, sql_str
from mem0_mcp.stores.history import HistoryStore
from mem0_mcp.stores.history_api import History
from mem0_mcp.stores.lance_history import LanceHistory
from mem0_mcp.stores.locks import WriteLock
from mem0_mcp.stores.object_store import remote_store
from mem0_mcp.stores.vectors import VectorStore

logger = logging.getLogger(__name__)

# Table commits (moves, updates, deletes) between merges of their rows into the indexes.
INDEX_EVERY_COMMITS = 32
# What changes in a row whenever it is written (updated_at always): equal, the row is the same.
_STAMP = ("memory", "updated_at", "superseded_at", "superseded_by")


@dataclass(frozen=True)
class CopyTicket:
    """The in-process copy a read is served from, and its generation when the read began."""

    copy: DenseCache
    generation: int


class Storage:
    """The memory table (``vectors``) and the history database (``history``) of one data dir.

    Lock order: write lock, then journal lock. Every write takes both (``writing()``), except a
    journaled add (the journal lock only: it touches SQLite, not the table) and compaction (the
    write lock only), so adds go on while a large table is compacted.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # On object storage (store_uri): the table and the history there, no file locks, no
        # journal (settings.write_behind is off), no checks of local files.
        remote = remote_store(settings)
        # Why writes are refused (a read-only data dir, or a table served at an earlier version);
        # None when they are not. Reads never write, so they work either way.
        self.read_only = read_only_reason(settings) if remote is None else None
        unwritable = self.read_only is not None
        self.vectors = VectorStore(
            remote or settings.lance_dir,
            read_consistency_seconds=settings.read_consistency_seconds,
            dense_cache_rows=settings.dense_cache_rows,
            ann_threshold=settings.ann_index_threshold,
            ann_nprobe=settings.ann_nprobe,
            read_only=unwritable,
        )
        fb = self.vectors.fallback
        if fb is not None and self.read_only is None:
            self.read_only = (
                f"the memory table of {settings.data_dir} is served at version {fb.serving} because "
                "a newer version is unreadable: writes are refused until `mem0-mcp doctor --repair` "
                "makes it the newest again"
            )
        # A table served at an earlier version leaves the history writable (the doctor repairs it).
        self.history: History = (
            LanceHistory(remote) if remote else HistoryStore(settings.history_path, read_only=unwritable)
        )
        # On object storage, an add looks there for the same text committed by another node first.
        self.earlier = EarlierRows(remote) if remote else None
        # Threads of this process only on object storage: LanceDB's commits keep nodes apart.
        locks = None if remote else settings.data_dir
        self.write_lock = WriteLock(locks and locks / "write.lock", refuse=self.read_only)
        self.journal_lock = WriteLock(locks and locks / "journal.lock", refuse=self.read_only)
        self._writes_since_optimize = 0
        self._commits_since_index = 0
        self._optimizing = threading.Lock()
        self._move_gate = threading.Lock()
        self._dimension: tuple[Any, int] | None = None  # (table object, its vector dimension)
        self.mover = JournalMover(self.move_journal)
        # The stores checked against each other, one warning line per problem (`mem0-mcp doctor`
        # prints the same and repairs what it can).
        self.findings: list[Finding] = (
            [] if remote else check_stores(settings, self.vectors, self.history, self.read_only)
        )
        log_findings(self.findings)
        if self.read_only is None and self.history.has_pending():
            # A process that stopped before moving its journaled adds into the table.
            self.mover.wake()

    def refuse_writes(self) -> None:
        """Raise the StoreError that says why writes are refused, if they are."""
        if self.read_only is not None:
            raise StoreError(self.read_only)

    # ------------------------------------------------------------------ locks and the journal
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Both locks, for writes that touch the table (in the order every holder takes them)."""
        with self.write_lock.hold(), self.journal_lock.hold():
            yield

    def move_journal(self) -> None:
        """Move journaled adds (write-behind, any process's) into the table before it is read.

        What must be in the table is what was journaled before this call. Threads of this
        process wanting that queue here, not for the write lock: one moves the journal and the
        ones behind it find their rows moved and return without the lock (under load, every
        search and list otherwise waited its own turn of the write lock behind each update and
        delete, only to find the journal already moved).
        """
        if self.read_only is not None:
            return
        mark = self.history.pending_watermark()
        if mark is None:
            return
        with self._move_gate:
            if not self.history.has_pending_through(mark):
                return
            # The journal lock only while a batch is taken from the journal, not while it is
            # written to the table: adds, updates and deletes journal meanwhile (they waited for
            # each LanceDB commit of the move before, 81 % of an add's time under load).
            with self.write_lock.hold():
                self.move_journal_locked(between=self.journal_lock, through=mark)
        # The move's commits changed the table's version stamp. The copy followed them; it is
        # confirmed current here (in the mover's thread) instead of by the next add or search,
        # which would ask LanceDB for the table's version first (~0.05 ms of an add at 10k).
        self.vectors.current_copy()

    def move_journal_locked(self, between: WriteLock | None = None, through: int | None = None) -> None:
        """The same, for a caller that holds both locks (or the write lock, and gives the
        journal lock as ``between`` to take around each batch's read, and the newest seq it
        must see moved as ``through``)."""
        with between.hold() if between is not None else nullcontext():
            if not self.history.has_pending():
                return
            self.quarantine_unreplayable()
        copy = self.vectors.copy
        try:
            move_journal(
                self.history,
                self.vectors,
                on_moved=self.after_write,
                on_batch=copy.moving if copy is not None else None,
                on_dropped=self._forget,
                journal_lock=between,
                through=through,
            )
        except Exception as exc:
            raise StoreError(
                f"memories saved in the journal of {self.settings.history_path} could not be "
                f"written to the memory table: {exc}. They stay in the journal and are retried "
                "on every call; check the disk space and permissions of the data dir"
            ) from exc
        finally:
            if copy is not None:
                copy.moving({})

    def quarantine_unreplayable(self) -> None:
        """Set journal rows that cannot enter the table aside (kept, never dropped): otherwise
        one bad row would fail every read and write after it. The caller holds both locks."""
        bad = self.history.unreplayable(self.table_dimension())
        if not bad:
            return
        self.history.quarantine(bad, now_iso())
        for problem in bad:
            logger.warning(
                "journal row %d (memory %s) cannot be moved into the memory table: %s; it is set "
                "aside in table quarantined_rows of %s (`mem0-mcp doctor --repair` puts it back)",
                problem.seq,
                problem.memory_id,
                problem.reason,
                self.settings.history_path,
            )

    def table_dimension(self) -> int | None:
        """``journal_dimension``, read once per table (it reads the table's schema: 3-7 ms
        under load, on every move, under both locks)."""
        tbl = self.vectors.table
        known = self._dimension
        if tbl is not None and known is not None and known[0] is tbl:
            return known[1]
        dimension = journal_dimension(self.settings, self.vectors)
        self._dimension = (tbl, dimension) if tbl is not None and dimension is not None else None
        return dimension

    # ------------------------------------------------------------------ reads beside the journal
    def stage(self, rows: Sequence[Mapping[str, Any]], vectors: np.ndarray, seqs: Mapping[str, int]) -> None:
        """Show rows this process just journaled to reads served by the in-process copy, before
        they reach the table (the caller holds the journal lock and has committed them; ``seqs``:
        id -> journal entry, as ``history.add`` returned them)."""
        copy = self.vectors.copy
        if copy is not None:
            copy.stage(rows, vectors, seqs)

    def stage_change(
        self, memory_id: str, row: Mapping[str, Any] | None, vector: np.ndarray | None, seq: int | None
    ) -> None:
        """Show an update (``row``) or delete (None) this process just journaled to reads served
        by the in-process copy (the caller holds the journal lock and has committed it).

        When the copy cannot take the change, it is dropped: reads load it again or move the
        journal (it must not serve the row as it was)."""
        copy = self.vectors.copy
        if copy is not None and not copy.stage_change(memory_id, row, vector, seq):
            copy.invalidate()

    def _forget(self, seqs: list[int]) -> None:
        copy = self.vectors.copy
        if copy is not None:
            copy.forget(seqs)

    def copy_with_journal(self) -> CopyTicket | None:
        """The in-process copy, when it holds every journal entry (this process stages its own
        adds, updates and deletes there): a plain read served by it needs no journal move, so
        it never waits for the write lock. None when it lacks one (another process's change, a
        reload since): the reader moves the journal and reads as before. After reading,
        ``copy_unchanged`` must hold, or the copy was reloaded meanwhile (staged rows dropped)
        and the read is repeated so.

        Scope, superseded rows and the rows' current state are the copy's: a staged row is
        updated and deleted there as in the journal, superseded as in the table (a supersede
        moves the journal first).
        """
        if not self.settings.write_behind:
            return None
        pending = self.history.pending_seqs()  # before the copy: what it must hold by now
        copy = self.vectors.current_copy()
        if copy is None:
            return None
        ticket = CopyTicket(copy, copy.generation)
        if copy.holds(pending):
            return ticket
        if self.read_only is not None:
            return None
        # A write of this process may have committed its entry and not staged it yet (it holds
        # the journal lock from before the one until after the other): waiting for that is
        # cheaper than moving the journal (under load, 1 read in 10 went there for it).
        with self.journal_lock.hold():
            pending = self.history.pending_seqs()
        return ticket if copy.holds(pending) else None

    def copy_unchanged(self, ticket: CopyTicket) -> bool:
        """Whether reads since ``ticket`` were served by its copy, not a reloaded one."""
        copy = ticket.copy
        return self.vectors.copy is copy and copy.version is not None and copy.generation == ticket.generation

    # ------------------------------------------------------------------ compaction
    def after_write(self, count: int) -> None:
        """Count writes (each call is one table commit); start a background compaction when
        enough rows have gathered, or an index merge when enough commits have."""
        self._writes_since_optimize += count
        self._commits_since_index += 1
        # Compaction and index merges cost CPU that ingest needs (a fifth of a 10k batched
        # ingest at every 500 writes): a large table is compacted once per tenth it grows.
        every = max(self.settings.optimize_every, self.vectors.rows_at_optimize // 10)
        full = self._writes_since_optimize >= every
        # Each commit leaves a fragment the id index does not cover, and every lookup by id (an
        # update, a delete, a supersede) scans them all under the write lock: 300 of them made
        # each lookup 30 ms instead of 4. Merging them into the indexes is cheap and often.
        if not full and self._commits_since_index < INDEX_EVERY_COMMITS:
            return
        if not self._optimizing.acquire(blocking=False):
            return
        self._commits_since_index = 0
        if full:
            self._writes_since_optimize = 0

        def run() -> None:
            try:
                with self.write_lock.hold():
                    self.vectors.optimize(
                        ann_threshold=self.settings.ann_index_threshold, indices_only=not full
                    )
            finally:
                self._optimizing.release()

        threading.Thread(target=run, name="mem0-optimize", daemon=True).start()

    def optimize(self) -> None:
        """Move the journal and merge pending rows into the indexes now."""
        with self.write_lock.hold():
            with self.journal_lock.hold():
                self.move_journal_locked()
            self.vectors.optimize(ann_threshold=self.settings.ann_index_threshold)

    # ------------------------------------------------------------------ reads the writers share
    def row(self, memory_id: Any, scope: Scope | None) -> dict[str, Any]:
        """The row of a memory of ``scope``; NotFoundError when absent or someone else's."""
        key = check_memory_id(memory_id)
        self.move_journal()
        row = self.vectors.get(key)
        if row is None or not in_scope(row, scope):
            raise NotFoundError(memory_id)
        return row

    def peek_row(self, memory_id: Any, scope: Scope | None) -> dict[str, Any] | None:
        """The row of a memory of ``scope`` as journaled or stored, without moving the journal or
        taking a lock (None when absent, or deleted in the journal): for ``get`` and for work
        done before a write takes the locks."""
        key = check_memory_id(memory_id)
        entry = self.history.pending_entry(key)
        row = entry.row if entry is not None else self.vectors.get(key)
        if entry is not None and entry.op == "delete":
            return None
        return row if row is not None and in_scope(row, scope) else None

    def journaled_row(
        self, memory_id: Any, scope: Scope | None, seen: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The row of a memory as a journaled change finds it: its journal entry's, else the
        table's. The caller holds the journal lock, so neither changes meanwhile (every writer
        of the table holds it too). ``seen``: see ``row_for_write``. Raises NotFoundError."""
        key = check_memory_id(memory_id)
        entry = self.history.pending_entry(key)
        if entry is not None:
            if entry.op == "delete" or not in_scope(entry.row, scope):
                raise NotFoundError(memory_id)
            return entry.row
        return self._table_row(key, memory_id, scope, seen)

    def row_for_write(
        self, memory_id: Any, scope: Scope | None, seen: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``row`` for a caller holding the write lock that changes this one row in the table.

        Moves the journal only when this memory has an entry in it: a row already in the table
        is changed by id, so the other journaled adds can wait for the mover (each move is a
        LanceDB commit, and every caller of the write lock queues behind it). ``seen``: the row
        as ``peek_row`` read it before the locks; it is returned when the in-process copy shows
        the row unchanged since (every write of a row sets its updated_at), which spares a
        LanceDB lookup under the write lock (each scans the fragments written since the last
        index merge).
        """
        key = check_memory_id(memory_id)
        if self.history.pending_entry(key) is not None:
            with self.journal_lock.hold():  # held already by a caller of writing()
                self.move_journal_locked()
            seen = None  # read as journaled: its table row is the one to change
        return self._table_row(key, memory_id, scope, seen)

    def _table_row(
        self, key: str, memory_id: Any, scope: Scope | None, seen: dict[str, Any] | None
    ) -> dict[str, Any]:
        if seen is not None and seen.get("id") == key:
            now = self.vectors.current_row(key)
            if now is not None and all(now.get(c) == seen.get(c) for c in _STAMP):
                return seen
        row = self.vectors.get(key)
        if row is None or not in_scope(row, scope):
            raise NotFoundError(memory_id)
        return row

    def nearest(self, scope: Scope, vector: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The k nearest live memories of a scope (the in-process copy when it can serve)."""
        hits = self.vectors.dense_search(vector, k, scope.model_dump(), include_superseded=False)
        return hits if hits is not None else self.vectors.vector_search(vector, where(scope), k)

    def near_duplicate(self, scope: Scope, vector: np.ndarray) -> str | None:
        """The id of a live memory of the scope at least dedup_threshold close, if any."""
        hits = self.nearest(scope, vector, 1)
        if hits and 1.0 - float(hits[0]["_distance"]) >= self.settings.dedup_threshold:
            return str(hits[0]["id"])
        return None

    def known_hashes(
        self,
        hashes: list[str],
        scope: Scope,
        event_at: str | None,
        *,
        any_time: bool = False,
        ticket: CopyTicket | None = None,
    ) -> dict[str, str]:
        """hash -> id of live memories of the scope with the same text and time (any time with
        ``any_time``), in the table or the journal; the caller holds the journal lock.
        ``ticket``: a copy found holding every journal entry under that lock (copy_with_journal),
        which then answers alone (its rows are the table's with the journal applied).

        A row of the table whose journal entry changed its text or deleted it is not one."""
        if ticket is not None:
            return ticket.copy.find_hashes(hashes, scope.model_dump(), event_at, any_time=any_time)
        found = self.vectors.existing_hashes(hashes, scope.model_dump(), event_at, any_time=any_time)
        if found:
            changed = {e.row["id"]: e for e in self.history.pending_of(list(found.values()), changes=True)}
            found = {
                h: i
                for h, i in found.items()
                if i not in changed or (changed[i].op != "delete" and changed[i].row.get("hash") == h)
            }
        found.update(self.journaled_hashes(hashes, scope, event_at, any_time=any_time))
        return found

    def journaled_hashes(
        self, hashes: list[str], scope: Scope, event_at: str | None, *, any_time: bool = False
    ) -> dict[str, str]:
        """hash -> id of journaled (not yet in the table) rows with the same text, scope and time
        (any time with ``any_time``)."""
        values = scope.model_dump()
        return {
            row["hash"]: row["id"]
            for row in self.history.pending_with_hashes(hashes)
            if all(row.get(k) == v for k, v in values.items())
            and (any_time or row.get("event_at") == event_at)
            and not row.get("superseded_at")
        }

    def close(self) -> None:
        """Stop the mover, move what is journaled (or leave it for the next process), close."""
        self.mover.close()
        try:
            self.move_journal()
        except StoreError as exc:
            # Still durable in the journal: the next process to open the data dir moves them.
            logger.warning("%s", exc)
        self.history.close()
        self.vectors.close()


def read_only_reason(settings: Settings) -> str | None:
    """Why the data dir cannot be written (a read-only filesystem, no permission), or None."""
    data_dir = settings.data_dir
    targets = [data_dir, *(p for p in (settings.history_path, settings.lance_dir) if p.exists())]
    if all(os.access(p, os.W_OK) for p in targets if p.exists()):
        return None
    return (
        f"the data dir {data_dir} is read-only: memories can be searched and read, writes are "
        "refused; make it writable (remount it read-write or fix its permissions) and restart "
        "to change memories"
    )


def where(
    scope: Scope | None,
    *,
    actor_id: str | None = None,
    filters: Mapping[str, Any] | None = None,
    include_superseded: bool = False,
) -> str:
    """The SQL predicate of a scope, an actor, metadata filters and liveness."""
    parts = []
    if scope is not None:
        parts.append(scope_clause(**scope.model_dump()))
    if actor_id:
        parts.append(f"actor_id = {sql_str(actor_id)}")
    if filters:
        parts.append(compile_filters(filters))
    if not include_superseded:
        parts.append("superseded_at IS NULL")
    return " AND ".join(p for p in parts if p)
