"""Write-behind of verbatim adds, updates and deletes: the SQLite journal first, the LanceDB
table right after.

A LanceDB commit (an append, a rewrite by id, a delete) costs 7-10 ms for one row here, more
than the rest of an add together, and under load each waited for the others under the write lock
(16 HTTP clients: update p50 4.9x an add's). A verbatim add, an update and a delete therefore
commit their rows (and vectors) to the journal in the history database, in the same transaction
as their history events, and return; a background thread applies them to the table in batches.
Nothing is acknowledged before it is durable, and nothing is read before it is in the table
(or in this process's in-process copy, staged there by the write that journaled it):

- every read and every other write of the engine first moves whatever the journal holds (any
  process's) into the table, under the write lock, so a search right after an add finds it and a
  duplicate check sees every earlier row;
- a move marks its rows as attempted before the append and drops them after it, so a crash in
  between leaves rows that are checked against the table by id when moved again: never twice,
  never lost. A process that starts finds a crashed one's rows and moves them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np

from mem0_mcp.stores.filters import sql_str
from mem0_mcp.stores.history import PendingRow
from mem0_mcp.stores.history_api import History
from mem0_mcp.stores.locks import WriteLock
from mem0_mcp.stores.vectors import VectorStore

logger = logging.getLogger(__name__)

# Rows per LanceDB append when the journal is long (a batched ingest, or a restart after a crash).
MOVE_BATCH = 2000
# How long the background move waits for more adds to share one LanceDB commit. A commit costs
# 7-10 ms of CPU whatever its size, and adds arriving back to back would otherwise each pay it
# while the next add embeds on the same cores. Reads never wait for it: they move the journal
# themselves.
LINGER_SECONDS = 0.1


def move_journal(
    history: History,
    vectors: VectorStore,
    *,
    on_moved: Callable[[int], None] | None = None,
    on_batch: Callable[[dict[str, int]], None] | None = None,
    on_dropped: Callable[[list[int]], None] | None = None,
    journal_lock: WriteLock | None = None,
    through: int | None = None,
) -> int:
    """Apply every journal entry to the memory table; the caller holds the write lock.

    The journal holds one entry per memory (its state to reach), so a batch is applied in up to
    three commits whatever its order: the adds appended, the updates rewritten by id, the
    deletes deleted. ``journal_lock`` (when the caller does not hold it) is taken while a batch
    is read and marked as attempted, and let go while it is written: a change journaled
    meanwhile replaces its memory's entry by a newer one (an attempted add is then updated, not
    appended again), and the batch's own entries are dropped by seq. ``on_batch`` gets the
    batch's ids and seqs before it is written, ``on_dropped`` its seqs after. ``through``: a
    seq; the move ends once every change journaled up to it is in the table (changes keep coming
    while the journal lock is let go, and moving until the journal is empty could go on as long
    as they do, every reader waiting).

    Returns how many rows were written. Raises whatever the stores raise: entries not applied
    stay in the journal for the next attempt (applying one twice is harmless: an add tried
    before is checked against the table by id, updates and deletes by id are the same the
    second time).
    """
    moved = 0
    while True:
        with journal_lock.hold() if journal_lock is not None else nullcontext():
            done = through is not None and not history.has_pending_through(through)
            batch = [] if done else history.pending(MOVE_BATCH)
            if not batch:
                return moved
            history.mark_attempt([p.seq for p in batch])
        if on_batch is not None:
            on_batch({p.row["id"]: p.seq for p in batch})
        adds = [p for p in batch if p.op == "add"]
        updates = [p for p in batch if p.op == "update"]
        deletes = [p.row["id"] for p in batch if p.op == "delete"]
        # Tried before (a crash mid-move), or an add tried before and updated since.
        retried = [p.row["id"] for p in batch if p.attempts and p.op != "delete"]
        present = vectors.existing_ids(retried) if retried else set()
        todo = [p for p in adds if p.row["id"] not in present]
        # An update of an add that never reached the table: the updated row is the add.
        lost = [p for p in updates if p.attempts and p.row["id"] not in present]
        todo += [p for p in lost if p.vector.size]
        gone = {p.seq for p in lost}
        updates = [p for p in updates if p.seq not in gone]
        for count in (_append(vectors, todo), _rewrite(vectors, updates), _delete(vectors, deletes)):
            moved += count
            if on_moved is not None and count:
                on_moved(count)
        seqs = [p.seq for p in batch]
        history.drop_pending(seqs)
        if on_dropped is not None:
            on_dropped(seqs)


def _append(vectors: VectorStore, todo: list[PendingRow]) -> int:
    if todo:
        vectors.add([p.row for p in todo], np.stack([p.vector for p in todo]))
    return len(todo)


def _rewrite(vectors: VectorStore, updates: list[PendingRow]) -> int:
    if not updates:
        return 0
    keep = [p.row["id"] for p in updates if not p.vector.size]  # metadata-only: the stored vector
    stored: dict[str, np.ndarray] = {}
    if keep:
        in_list = ", ".join(sql_str(k) for k in keep)
        found = vectors.query(f"id IN ({in_list})", columns=("id", "vector"))
        stored = {r["id"]: np.asarray(r["vector"], dtype=np.float32) for r in found}
    # A row gone from the table meanwhile (deleted by a direct write) has nothing to update.
    rows = [p for p in updates if p.vector.size or p.row["id"] in stored]
    if rows:
        matrix = np.stack([p.vector if p.vector.size else stored[p.row["id"]] for p in rows])
        vectors.replace([p.row for p in rows], matrix)
    return len(rows)


def _delete(vectors: VectorStore, ids: list[str]) -> int:
    if ids:
        vectors.delete(f"id IN ({', '.join(sql_str(i) for i in ids)})", ids=ids)
    return len(ids)


class JournalMover:
    """One background thread that runs ``move`` whenever it is woken (after each journaled add)."""

    def __init__(self, move: Callable[[], None], *, linger: float = LINGER_SECONDS) -> None:
        self._move = move
        self._linger = linger
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        if self._stopping.is_set():
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mem0-journal", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Returns early when closing; adds made meanwhile join this move.
            if self._stopping.wait(self._linger):
                return
            self._wake.clear()
            try:
                self._move()
            except Exception as exc:
                # The rows are safe in the journal; the next read or write retries and raises.
                logger.warning("moving journaled memories into the table failed (will retry): %s", exc)

    def close(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
